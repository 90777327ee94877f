"""What the instructor gets: grades.csv, feedback/, summary.txt, and a table on the terminal."""

from __future__ import annotations

import csv
import functools
import os
import re
import shutil
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

import course
from grader.sandbox import Limits


@dataclass
class CheckTally:
    """How a class did on one check."""

    part: str
    grade_id: str
    passed: int = 0
    failed: int = 0
    never_reached: int = 0
    messages: Counter = field(default_factory=Counter)  # failure message, numbers blanked → how many
    example: dict[str, str] = field(default_factory=dict)  # blanked message → the first one seen

    @property
    def label(self) -> str:
        return f"P{course.part(self.part).number} {self.grade_id}"


def executed_path(out: Path, student_id: str, part: str) -> Path:
    """Where phase 1 leaves a learner's executed notebook of a part (phase 2 and the class report read it)."""
    return out / "work" / student_id / part / "autograded" / student_id / part / f"{part}.ipynb"


def _checks(part: str, sources: Path) -> list[str]:
    nb = nbformat.read(sources / part / f"{part}.ipynb", as_version=4)
    return [
        c.metadata["nbgrader"]["grade_id"]
        for c in nb.cells
        if c.metadata.get("nbgrader", {}).get("grade") and not c.metadata["nbgrader"].get("solution")
    ]


def _outcomes(executed: Path) -> dict[str, str | None]:
    """Each check cell of an executed notebook: None if it passed, else its failure's first line, or ""
    when it never ran (the kernel died before it)."""
    nb = nbformat.read(executed, as_version=4)
    found: dict[str, str | None] = {}
    for cell in nb.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if not grade_id or cell.cell_type != "code":
            continue
        errors = [o for o in cell.get("outputs", []) if o.output_type == "error"]
        if not errors:
            found[grade_id] = None if cell.get("outputs") or cell.get("execution_count") else ""
        elif errors[0].ename == "CheckNotRun":
            found[grade_id] = ""
        else:
            first = (str(errors[0].evalue).strip().splitlines() or [""])[0]
            found[grade_id] = f"{errors[0].ename}: {first}"[:160]
    return found


def class_report(out: Path, state: dict, sources: Path) -> list[CheckTally]:
    """For every check of every part handed in, how many learners passed it, failed it (and with which
    messages) or never reached it (no notebook of that part, a notebook that could not run, or a kernel dead
    before it)."""
    handed_in = {key.split("/")[1] for key in state["results"]}  # parts nobody handed in are left out
    tallies = [
        CheckTally(part, grade_id)
        for part in course.PART_NAMES
        if part in handed_in
        for grade_id in _checks(part, sources)
    ]
    for info in state["learners"].values():
        sid = info["student_id"]
        for part in course.PART_NAMES:
            record = state["results"].get(f"{sid}/{part}", {})
            executed = executed_path(out, sid, part)
            ran = record.get("status") == "graded" and executed.exists()
            outcomes = _outcomes(executed) if ran else {}
            for tally in (t for t in tallies if t.part == part):
                message = outcomes.get(tally.grade_id, "")
                if message is None:
                    tally.passed += 1
                elif message == "":
                    tally.never_reached += 1
                else:
                    tally.failed += 1
                    blanked = re.sub(r"\d+(\.\d+)?", "#", message)
                    tally.messages[blanked] += 1
                    tally.example.setdefault(blanked, message)
    return tallies


def class_report_lines(tallies: list[CheckTally]) -> list[str]:
    width = max((len(t.label) for t in tallies), default=10)
    lines = ["What the class missed, check by check (passed / failed / never reached; commonest failures):"]
    for t in tallies:
        counts = f"{t.passed:>3} / {t.failed:>3} / {t.never_reached:>3}"
        lines.append(f"  {t.label:<{width}}  {counts}")
        for blanked, n in t.messages.most_common(3):
            lines.append(f"  {'':<{width}}      {n} × {t.example[blanked]}")
    return lines


def class_report_chart(tallies: list[CheckTally], path: Path) -> None:
    """A horizontal bar per check: passed, failed, never reached."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    fig = Figure(figsize=(9, 0.28 * len(tallies) + 1.4), layout="constrained")
    ax = fig.add_subplot()
    labels = [t.label for t in reversed(tallies)]
    left = [0] * len(labels)
    for name, colour, values in [
        ("passed", "#4caf50", [t.passed for t in reversed(tallies)]),
        ("failed", "#e53935", [t.failed for t in reversed(tallies)]),
        ("never reached", "#bdbdbd", [t.never_reached for t in reversed(tallies)]),
    ]:
        ax.barh(labels, values, left=left, color=colour, label=name)
        left = [a + b for a, b in zip(left, values, strict=True)]
    ax.set_xlabel("learners")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_title("What the class missed")
    ax.tick_params(axis="y", labelsize=8)
    ax.legend(loc="lower right", fontsize=8)
    fig.savefig(path, dpi=100)


@functools.cache
def max_points(part: str, sources: Path) -> float:
    nb = nbformat.read(sources / part / f"{part}.ipynb", as_version=4)
    return float(sum(c.metadata.get("nbgrader", {}).get("points", 0) for c in nb.cells))


def protections(limits: Limits, why_not: str) -> dict[str, str]:
    """The protections of this run, in words, for the summary."""
    on = not why_not
    who = (
        "a uid of its own, no capabilities"
        if os.geteuid() == 0
        else "your uid in a user namespace, no capabilities"
    )
    return {
        "time limits": f"{limits.cell_seconds} s per cell, {limits.notebook_seconds} s per notebook",
        "memory limit": f"{limits.memory_bytes / 2**30:g} GiB address space per notebook",
        "sandbox": f"on (bubblewrap: {who}; reads only the environment and the data)"
        if on
        else f"OFF ({why_not})",
        "network": "off (own network namespace)" if on else "NOT blocked (no sandbox)",
        "verdicts": "judged by the grader outside the kernel, on hidden inputs drawn from its secret",
    }


def write(
    out: Path, state: dict, tasks: list, unrecognised: dict[str, list[str]], shields: dict, sources: Path
) -> str:
    """grades.csv and feedback/ for every learner, summary.txt; returns the summary and the table."""
    results = state["results"]
    rows, table = [], []
    for name in sorted(state["learners"]):
        sid = state["learners"][name]["student_id"]
        total = total_max = 0.0
        line = [name]
        for part in course.PART_NAMES:
            record = results.get(f"{sid}/{part}", {"status": "missing", "reason": "no submission"})
            score = float(record.get("score") or 0) if record["status"] == "graded" else 0.0
            maximum = max_points(part, sources)
            total, total_max = total + score, total_max + maximum
            rows.append(
                [name, sid, part, f"{score:g}", f"{maximum:g}", record["status"], record.get("reason", "")]
            )
            line.append(f"{score:g}" if record["status"] != "missing" else "–")
            feedback = out / "course" / "feedback" / sid / part / f"{part}.html"
            if record["status"] == "graded" and feedback.exists():
                (out / "feedback" / name).mkdir(parents=True, exist_ok=True)
                shutil.copyfile(feedback, out / "feedback" / name / f"{part}.html")
        rows.append([name, sid, "TOTAL", f"{total:g}", f"{total_max:g}", "", ""])
        table.append([*line, f"{total:g}/{total_max:g}"])
    with open(out / "grades.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["learner", "student_id", "part", "score", "max_score", "status", "reason"])
        writer.writerows(rows)

    learners = {info["student_id"]: name for name, info in state["learners"].items()}
    executed = sum(t.status != "skipped" for t in tasks)
    lines = [
        f"Graded {len(learners)} learner(s); this run executed {executed} notebook(s) "
        f"({len(tasks) - executed} unchanged, kept)."
    ]

    def who(key: str) -> str:
        sid, part = key.split("/")
        return f"{learners.get(sid, sid)} / {part}"

    stopped = [(k, v) for k, v in sorted(results.items()) if v.get("timed_out_cells")]
    lines.append(f"Cells stopped at the time limit: {sum(len(v['timed_out_cells']) for _, v in stopped)}")
    for k, v in stopped:
        lines.append(f"  {who(k)}: cell(s) {', '.join(str(i + 1) for i in v['timed_out_cells'])}")
    for label, statuses in [("timed out", {"timed out"}), ("errored", {"error", "invalid"})]:
        bad = [(k, v) for k, v in sorted(results.items()) if v["status"] in statuses]
        lines.append(f"Parts that {label}: {len(bad)}")
        lines += [f"  {who(k)}: {v['reason']}" for k, v in bad]
    noted = [(k, v) for k, v in sorted(results.items()) if v["status"] == "graded" and v.get("reason")]
    lines.append(f"Graded with a note: {len(noted)}")
    lines += [f"  {who(k)}: {v['reason']}" for k, v in noted]
    missing = {
        name: [p for p in course.PART_NAMES if f"{info['student_id']}/{p}" not in results]
        for name, info in sorted(state["learners"].items())
    }
    lines.append(f"Parts missing: {sum(map(len, missing.values()))}")
    lines += [f"  {name}: {', '.join(parts)}" for name, parts in missing.items() if parts]
    for name, files in sorted(unrecognised.items()):
        lines.append(f"  {name}: ignored notebook(s) with names not in the course: {', '.join(files)}")
    tallies = class_report(out, state, sources)
    lines += class_report_lines(tallies)
    class_report_chart(tallies, out / "class_report.png")
    lines.append("Protections: " + "; ".join(f"{k}: {v}" for k, v in shields.items()))
    lines.append(f"Grades: {out / 'grades.csv'}   Feedback: {out / 'feedback'}   Logs: {out / 'logs'}")
    lines.append(f"What the class missed, as a chart: {out / 'class_report.png'}")
    summary = "\n".join(lines)
    (out / "summary.txt").write_text(summary + "\n")
    header = ["learner", *(f"P{p.number}" for p in course.PARTS), "total"]
    widths = [max(len(str(r[i])) for r in [header, *table]) for i in range(len(header))]
    rendered = "\n".join(
        "  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)) for r in [header, *table]
    )
    return summary + "\n\n" + rendered
