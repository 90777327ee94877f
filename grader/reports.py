"""What the instructor gets: grades.csv, feedback/, summary.txt, and a table on the terminal."""

from __future__ import annotations

import csv
import functools
import os
import shutil
from pathlib import Path

import nbformat

import course
from grader.sandbox import Limits


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
    lines.append("Protections: " + "; ".join(f"{k}: {v}" for k, v in shields.items()))
    lines.append(f"Grades: {out / 'grades.csv'}   Feedback: {out / 'feedback'}   Logs: {out / 'logs'}")
    summary = "\n".join(lines)
    (out / "summary.txt").write_text(summary + "\n")
    header = ["learner", *(f"P{p.number}" for p in course.PARTS), "total"]
    widths = [max(len(str(r[i])) for r in [header, *table]) for i in range(len(header))]
    rendered = "\n".join(
        "  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)) for r in [header, *table]
    )
    return summary + "\n\n" + rendered
