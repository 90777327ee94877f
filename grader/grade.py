"""`python grader/grade.py …` is `python -m grader …` (grader/cli.py), kept for the commands people know."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from grader.cli import main

if __name__ == "__main__":  # not when Dask's worker processes (spawned) import this module again
    sys.exit(main())
