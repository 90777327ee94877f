"""`python grader/grade.py …` is `python -m grader …` (grader/cli.py), kept for the commands people know."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from grader.cli import main

sys.exit(main())
