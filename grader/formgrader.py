"""nbgrader's formgrader on a grading run's output: ``make formgrader OUT=grades`` (``python -m
grader.formgrader OUT [--port 8889]``).

formgrader is a Jupyter server extension: it reads nbgrader's configuration from the folder the server starts
in. This writes the course's configuration into OUT/course (``nbgrader_config.json``, from data:
:func:`grader.scoring.settings`) and starts JupyterLab there, on formgrader's page. With it, formgrader's own
buttons do what the grader does: *Autograde* scores the verdicts already in the graded notebooks again (it
executes nothing, never a learner's cell), *Generate Feedback* writes pages cleaned as they are written.
Hand grades and comments you give there reach grades.csv, the LMS files and the learners' feedback pages at
the next ``make grade`` (the merge reads them back from the gradebook).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from grader import scoring


def configure(out: Path) -> Path:
    """OUT/course made ready for formgrader: its nbgrader configuration written; the course folder."""
    root = out.resolve() / "course"
    if not (root / "gradebook.db").is_file():
        why = f"{root} holds no gradebook: grade first (make grade SUBMISSIONS=… OUT={out})"
        raise SystemExit(f"error: {why}")
    (root / "nbgrader_config.json").write_text(json.dumps(scoring.settings(root), indent=1) + "\n")
    return root


def command(root: Path, port: int, open_browser: bool = True) -> list[str]:
    """JupyterLab in the course folder, on formgrader's page."""
    return [
        sys.executable,
        "-m",
        "jupyter",
        "lab",
        f"--port={port}",
        f"--ServerApp.root_dir={root}",
        "--LabApp.default_url=/formgrader",
        f"--ServerApp.open_browser={open_browser}",
        *(["--allow-root"] if os.geteuid() == 0 else []),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m grader.formgrader", description=__doc__.split("\n\n")[0])
    parser.add_argument("out", nargs="?", default="grades", help="the grading run's output (default grades)")
    parser.add_argument("--port", type=int, default=8889)
    parser.add_argument("--no-browser", action="store_true")
    options, extra = parser.parse_known_args(argv)
    root = configure(Path(options.out))
    # the course environment's tools first on PATH (nbgrader runs alembic from it)
    os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    os.chdir(root)  # formgrader reads nbgrader_config.json from the folder the server starts in
    argv = [*command(root, options.port, not options.no_browser), *extra]
    os.execv(argv[0], argv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
