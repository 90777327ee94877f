"""Benchmark: execute every solution notebook and print its wall time and final metrics.

Metrics are read from the notebook's own output: lines of the form "✓ <what> <number>" that the
graded checks print (test accuracy, loss). Usage: python tools/bench.py [PART ...]
"""

from __future__ import annotations

import json
import re
import sys
import time

import nbformat
from nbclient import NotebookClient
from traitlets.config import Config

import course

METRIC = re.compile(r"✓ (.*?)(?::)? ([0-9.]+%?)\s*$")
# The Jupyter settings `make env` gives every Jupyter program of the environment (encrypted kernel channels).
JUPYTER_CONFIG = Config(json.loads((course.ROOT / "jupyter" / "jupyter_config.json").read_text()))


def bench(part: course.Part) -> tuple[float, list[str]]:
    nb = nbformat.read(part.solution, as_version=4)
    start = time.perf_counter()
    NotebookClient(
        nb,
        timeout=900,
        kernel_name=course.KERNEL,
        resources={"metadata": {"path": str(part.solution.parent)}},
        config=JUPYTER_CONFIG,
    ).execute()
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
    parts = [course.part(name) for name in sys.argv[1:]] or list(course.PARTS)
    print(f"{'notebook':<32}{'seconds':>9}  final metrics")
    total = 0.0
    for part in parts:
        seconds, metrics = bench(part)
        total += seconds
        print(f"{part.name:<32}{seconds:>9.1f}  {'; '.join(metrics) or '-'}", flush=True)
    print(f"{'total':<32}{total:>9.1f}")


if __name__ == "__main__":
    main()
