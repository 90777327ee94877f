"""`python -m grader SUBMISSIONS --out OUT`: see grader/cli.py."""

import sys

from grader.cli import main

sys.exit(main())
