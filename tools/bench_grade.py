"""Benchmark of grading: a generated class graded with 1 and 2 workers, on the embedded cluster and through a
Dask scheduler on loopback (separate `dask scheduler` and `dask worker` processes); prints notebooks per
minute and the speed-ups.

    python tools/bench_grade.py [--learners 4] [--parts 2]

Every learner hands in the solutions of the first PARTS parts (the work a correct learner's notebook does).
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import course

BIN = Path(sys.executable).parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _grade(submissions: Path, out: Path, *options: str) -> float:
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "grader", str(submissions), "--out", str(out), *options],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return time.perf_counter() - start


def _through_scheduler(submissions: Path, out: Path, workers: int, folder: Path) -> float:
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    started = [
        subprocess.Popen(
            [str(BIN / "dask"), "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
    ]
    try:
        for n in range(workers):
            local = folder / f"worker-{workers}-{n}"
            local.mkdir(parents=True)
            started.append(
                subprocess.Popen(
                    [
                        str(BIN / "dask"),
                        "worker",
                        address,
                        "--nthreads",
                        "1",
                        "--no-dashboard",
                        "--local-directory",
                        str(local),
                    ],
                    cwd=local,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    start_new_session=True,
                )
            )
        time.sleep(5)  # the workers join
        return _grade(submissions, out, "--scheduler", address)
    finally:
        for process in started:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--learners", type=int, default=4)
    parser.add_argument("--parts", type=int, default=2, help="the first N parts (default 2)")
    options = parser.parse_args()
    parts = course.PARTS[: options.parts]
    notebooks = options.learners * len(parts)
    with tempfile.TemporaryDirectory(prefix="bench-grade-") as tmp:
        folder = Path(tmp)
        submissions = folder / "class"
        for n in range(options.learners):
            (submissions / f"learner {n + 1}").mkdir(parents=True)
            for part in parts:
                shutil.copy(part.solution, submissions / f"learner {n + 1}" / part.solution.name)
        print(f"{options.learners} learners × Parts 1–{len(parts)}: {notebooks} notebooks", flush=True)
        runs = {}
        for label, run in [
            ("embedded, 1 worker", lambda out: _grade(submissions, out, "--jobs", "1")),
            ("embedded, 2 workers", lambda out: _grade(submissions, out, "--jobs", "2")),
            ("scheduler, 1 worker", lambda out: _through_scheduler(submissions, out, 1, folder)),
            ("scheduler, 2 workers", lambda out: _through_scheduler(submissions, out, 2, folder)),
        ]:
            seconds = run(folder / label.replace(", ", "-").replace(" ", "-"))
            runs[label] = seconds
            print(
                f"  {label:<22} {seconds:6.0f} s   {notebooks / seconds * 60:5.1f} notebooks/min", flush=True
            )
        for kind in ("embedded", "scheduler"):
            ratio = runs[f"{kind}, 1 worker"] / runs[f"{kind}, 2 workers"]
            print(f"  speed-up, 2 workers over 1 ({kind}): {ratio:.2f}×")
        print(f"  on this machine: {os.cpu_count()} cores")
    return 0


if __name__ == "__main__":
    sys.exit(main())
