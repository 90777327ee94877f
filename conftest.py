"""pytest's hooks for the whole repository: nbval's run of each solution tries every check's wrong answers.

At the root, so that they apply to any run that collects solutions/:
`make test`, or `pytest solutions --nbval-lax`.
The machinery is in tests/harness.py, the wrong answers in tests/wrong_answers.py (tests/ is on pytest's
pythonpath: pyproject.toml).
"""

from __future__ import annotations

import pytest

from harness import add_wrong_answer_trials, check_printed_tick
from wrong_answers import WRONG


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    add_wrong_answer_trials(items, WRONG)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item):
    result = yield
    check_printed_tick(item)
    return result
