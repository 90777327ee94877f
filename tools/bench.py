"""Benchmark: execute every solution notebook and print its wall time and final metrics.

Metrics are read from the notebook's own output: the test and validation accuracies that the graded checks'
✓ lines state. Usage: python tools/bench.py [PART ...]
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

# What a ✓ line says of a model's quality: "test accuracy 97.6%", "validation accuracy 84.8%", "84.1% test
# accuracy", with the words before it that say of what ("Fashion-MNIST", "cat/dog")
METRIC = re.compile(
    r"((?:[\w/-]+ )?(?:test|validation) accuracy) ([0-9.]+%)|([0-9.]+%) ((?:test|validation) accuracy)"
)
# Part 8's feature extraction, as its notebook prints it: "2500 photos in 26 s; features: (2000, 1280)"
PHOTOS = re.compile(r"(\d+) photos in ([0-9.]+) s")
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
                extracted = PHOTOS.search(line)
                if extracted:
                    photos, seconds = int(extracted[1]), float(extracted[2])
                    metrics.append(f"features {seconds * 1000 / photos:.1f} ms a photo ({photos} photos)")
                if "✓" in line:
                    for words, value, value_first, words_after in METRIC.findall(line):
                        metrics.append(f"{words} {value}" if words else f"{words_after} {value_first}")
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
