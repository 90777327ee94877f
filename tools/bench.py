"""Benchmark: execute every solution notebook and print its wall time and final metrics.

Metrics are read from the notebook's own output: lines of the form "✓ <what> <number>" that the
graded checks print (test accuracy, loss). Usage: python tools/bench.py [PART ...]
"""

from __future__ import annotations

import re
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

REPO = Path(__file__).resolve().parent.parent
METRIC = re.compile(r"✓ (.*?)(?::)? ([0-9.]+%?)\s*$")


def bench(part: str) -> tuple[float, list[str]]:
    path = REPO / "solutions" / part / f"{part}.ipynb"
    nb = nbformat.read(path, as_version=4)
    start = time.perf_counter()
    NotebookClient(nb, timeout=900, kernel_name="intro-pytorch",
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    seconds = time.perf_counter() - start
    metrics = []
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            for line in output.get("text", "").splitlines():
                match = METRIC.search(line)
                if match and ("accuracy" in line or "loss" in line):
                    metrics.append(f"{match.group(1)} {match.group(2)}")
    return seconds, metrics


def main() -> None:
    parts = sys.argv[1:] or sorted(p.name for p in (REPO / "solutions").iterdir() if p.name[:2].isdigit())
    print(f"{'notebook':<32}{'seconds':>9}  final metrics")
    for part in parts:
        seconds, metrics = bench(part)
        print(f"{part:<32}{seconds:>9.1f}  {'; '.join(metrics) or '-'}", flush=True)


if __name__ == "__main__":
    main()
