"""Run every solution notebook of the GPU bundle here, cell by cell, with its checks and wrong answers.

Copied into ``artifacts/gpu-bundle/run.py`` by ``tools/gpu_bundle.py`` (read it for what the bundle holds).
Needs only Python with torch, torchvision, numpy, matplotlib and tqdm:

    python3 artifacts/gpu-bundle/run.py [PART ...]

Each part runs in a namespace of its own and a fresh working folder, as in a fresh kernel. Prints each
check's ✓ line or failure, each wrong answer the check caught (or did not), errors in other cells, and each
part's time; exits 1 when anything failed.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import sys
import tarfile
import tempfile
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
TICK = "✓"


class Tee(io.TextIOBase):
    """Keeps what a cell prints, and shows it only when asked to."""

    def __init__(self) -> None:
        self.text = io.StringIO()

    def write(self, s: str) -> int:
        return self.text.write(s)


def setup(scratch: Path) -> None:
    with tarfile.open(HERE / "payload.tar.xz") as tar:
        try:
            tar.extractall(scratch, filter="data")
        except TypeError:  # a Python without extraction filters (before 3.11.4): the bundle is our own
            tar.extractall(scratch)
    os.environ["PYTORCH_COURSE_DATA"] = str(scratch / "data")
    os.environ.pop("PYTORCH_COURSE_MIRROR", None)
    os.environ["TORCH_HOME"] = str(scratch / "torch")  # no torchvision weights: the offline backbone
    os.environ["MPLBACKEND"] = "Agg"
    sys.path[:0] = [str(HERE), str(scratch / "deps")]


def run_cell(source: str, namespace: dict, label: str) -> tuple[str, str | None]:
    """Execute one cell; what it printed and its error, if any."""
    out = Tee()
    try:
        with contextlib.redirect_stdout(out):
            exec(compile(source, label, "exec"), namespace)
    except Exception as error:
        return out.text.getvalue(), "".join(traceback.format_exception_only(type(error), error)).strip()
    return out.text.getvalue(), None


def run_part(part: dict, scratch: Path) -> int:
    import matplotlib.pyplot as plt
    import torch

    torch.manual_seed(67280421310721)  # PyTorch's seed in a fresh process, as in a fresh kernel
    work = scratch / "work" / part["name"]
    work.mkdir(parents=True)
    os.chdir(work)
    namespace: dict = {"__name__": "__main__"}
    failures = 0
    start = time.perf_counter()
    for index, cell in enumerate(part["cells"]):
        for trial in cell["trials"]:
            printed, error = run_cell(trial["code"], namespace, f"<{part['name']} trial>")
            if error:
                failures += 1
                what = f"{trial.get('kind', 'wrong answer')} {trial['name']!r}"
                print(f"  ✗ {cell['check']}: {what}: {error[:300]}")
            else:
                verdict = (
                    printed[printed.rfind("as it should: ") :].removeprefix("as it should: ").splitlines()[0]
                )
                how = "caught" if trial.get("kind", "wrong answer") == "wrong answer" else "passed"
                print(f"    {cell['check']} {how} {trial['name']!r}: {verdict.strip()[:120]}")
        printed, error = run_cell(cell["source"], namespace, f"<{part['name']} cell {index}>")
        plt.close("all")
        if cell["check"]:
            ticks = [line for line in printed.splitlines() if line.startswith(TICK)]
            if error or not ticks:
                failures += 1
                print(f"  ✗ {cell['check']}: {error or 'no ✓ line'}")
            else:
                print(f"  {cell['check']}: {ticks[-1]}")
        elif error:
            failures += 1
            print(f"  ✗ cell {index}: {error[:300]}")
        elif "this notebook will use:" in printed or "ms per image" in printed:
            print("  " + "\n  ".join(printed.strip().splitlines()))
    print(f"  {part['name']}: {time.perf_counter() - start:.1f} s, {failures} failure(s)", flush=True)
    return failures


def main() -> int:
    import torch

    wanted = set(sys.argv[1:])
    parts = json.loads((HERE / "notebooks.json").read_text())
    parts = [p for p in parts if not wanted or p["name"] in wanted]
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else "no GPU: cpu"
    print(f"torch {torch.__version__}, {device}; {len(parts)} part(s)", flush=True)
    failures = 0
    with tempfile.TemporaryDirectory(prefix="pytorch-gpu-") as folder:
        scratch = Path(folder)
        setup(scratch)
        for part in parts:
            print(part["name"], flush=True)
            failures += run_part(part, scratch)
        os.chdir(HERE)
    print(f"{'all passed' if not failures else f'{failures} failure(s)'}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
