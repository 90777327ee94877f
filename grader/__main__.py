"""`python -m grader SUBMISSIONS --out OUT`: see grader/cli.py."""

import sys

from grader.cli import main

if __name__ == "__main__":  # not when Dask's worker processes (spawned) import this module again
    sys.exit(main())
