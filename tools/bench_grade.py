"""Benchmark of grading: a generated class graded with 1 and 2 workers, on the embedded cluster and through a
Dask scheduler on loopback (separate `dask scheduler` and `dask worker` processes); prints, for each, the time
spent grading on the workers and the time of the merge on the instructor's side, notebooks per minute and the
speed-ups. Then the merge alone of a synthetic class of RECORDS records (the real records of the first run,
copied to as many learners as it takes): seconds in all and per record.

    python tools/bench_grade.py [--learners 4] [--parts 2] [--records 16000]

Every learner hands in the solutions of the first PARTS parts (the work a correct learner's notebook does).
"""

from __future__ import annotations

import argparse
import os
import re
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


def _grade(submissions: Path, out: Path, *options: str) -> tuple[float, float, float]:
    """The run's seconds in all, grading on the workers, and merging (as the grader reports them)."""
    start = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "grader", str(submissions), "--out", str(out), *options],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    seconds = time.perf_counter() - start
    found = re.search(r"graded in (\d+) s, merged in ([\d.]+) s", result.stderr)
    assert found, result.stderr[-2000:]
    return seconds, float(found[1]), float(found[2])


def _merge_bench(graded: Path, folder: Path, count: int) -> tuple[float, int]:
    """The merge alone of ``count`` records: those of the graded run ``graded``, copied to new learners (their
    files hard-linked), merged into a fresh output as `python -m grader` merges; its seconds."""
    from grader import intake, records
    from grader.merge import Merge

    # nbgrader runs alembic from PATH, as grader/cli.py arranges
    os.environ["PATH"] = f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"
    by_part: dict[str, list] = {}
    for record in records.stored(graded):
        by_part.setdefault(record.part, []).append(record)
    out = folder / "synthetic"
    learners, tasks = [], []  # intake.Learner, intake.Submission
    for n in range(-(-count // len(by_part))):
        name = f"learner {n:05d}"
        sid = intake.student_id(name)
        learners.append(intake.Learner(name.encode(), name, sid))
        for part, real in sorted(by_part.items())[: count - len(tasks)]:
            record = real[n % len(real)]
            copy = records.Record(**{**vars(record), "learner": name, "student_id": sid})
            records.save(out, copy)
            for file in records.FILES:
                source = records.path(graded, record, file)
                if source is not None:
                    records.link(source, records.folder(out, sid, part) / file)
            tasks.append(intake.Submission(name, sid, part, b"{}", digest=record.digest))
    start = time.perf_counter()
    with Merge(out, course.SOLUTIONS, {t.part for t in tasks}) as merging:  # as a run's end merges
        merging.finish(intake.Intake("flat", learners, tasks), 0)
    return time.perf_counter() - start, len(tasks)


def _through_scheduler(
    submissions: Path, out: Path, workers: int, folder: Path
) -> tuple[float, float, float]:
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
    parser.add_argument("--records", type=int, default=16_000, help="records merged alone (16000)")
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
            seconds, grading, merging = run(folder / label.replace(", ", "-").replace(" ", "-"))
            runs[label] = seconds
            print(
                f"  {label:<22} {seconds:6.0f} s (grading {grading:4.0f} s, merge {merging:5.1f} s = "
                f"{merging / seconds:4.1%})   {notebooks / seconds * 60:5.1f} notebooks/min",
                flush=True,
            )
        for kind in ("embedded", "scheduler"):
            ratio = runs[f"{kind}, 1 worker"] / runs[f"{kind}, 2 workers"]
            print(f"  speed-up, 2 workers over 1 ({kind}): {ratio:.2f}×")
        print(f"  on this machine: {os.cpu_count()} cores")
        seconds, merged = _merge_bench(folder / "embedded-1-worker", folder, options.records)
        print(
            f"  the merge alone, {merged:,} records: {seconds:.1f} s, "
            f"{seconds / merged * 1000:.1f} ms per record",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
