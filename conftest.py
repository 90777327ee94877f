"""pytest's hooks for the whole repository: nbval's run of each solution tries every check's wrong answers and
the other correct answers registered for it.

At the root, so that they apply to any run that collects solutions/:
`make test`, or `pytest solutions --nbval-lax`.
The machinery is in tests/harness.py, the answers in tests/wrong_answers.py (tests/ is on pytest's
pythonpath: pyproject.toml).
"""

from __future__ import annotations

import pytest

from harness import add_answer_trials, allow_slow_output, check_printed_tick
from wrong_answers import RIGHT, WRONG

# `make test` hands whole test modules and notebooks to its workers in collection order: the longest first,
# so that no worker is left alone with a long one at the end. Each worker holds its current unit and the next
# one, which waits: with four workers the eight longest go first (durations in seconds, measured at ca06d81).
LONGEST_FIRST = (
    "tests/test_grading.py::TestAClassOfBadSubmissions",  # 503
    "tests/test_grading.py::TestACompleteSet",  # 477
    "tests/test_grading.py::TestACompleteSetOfTheLaterParts",  # 429
    "tests/test_cluster.py",  # 365
    "tests/test_lab.py",
    "solutions/08_transfer_learning/",  # 105 (its feature extraction)
    "tests/test_binder.py",  # a fresh install of the learner's lock (5 GB), mostly disk: about 60 s of CPU
    "tests/test_exercises.py",
    "tests/test_hosts.py",  # a cloud notebook's kernel: Parts 1, 2 and 7, the course installed from loopback
    "solutions/05_inference_and_validation/",
    "tests/test_downloads.py",  # 65
    "solutions/07_loading_image_data/",
    "solutions/04_fashion_mnist/",
    "solutions/03_training/",
    "solutions/06_saving_and_loading/",
    "tests/test_gpu_bundle.py",
    "tests/test_checks.py",
    "tests/test_project.py",
)


def _rank(item: pytest.Item) -> int:
    return next(
        (i for i, prefix in enumerate(LONGEST_FIRST) if item.nodeid.startswith(prefix)), len(LONGEST_FIRST)
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    add_answer_trials(
        items, {part: WRONG.get(part, []) + RIGHT.get(part, []) for part in WRONG.keys() | RIGHT}
    )
    allow_slow_output(items)
    items.sort(key=_rank)  # a stable sort: the cells of a notebook keep their order


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item):
    result = yield
    check_printed_tick(item)
    return result
