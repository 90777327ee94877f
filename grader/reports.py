"""What the instructor gets, merged from the class's records: grades.csv, the LMS gradebooks, summary.txt,
the class report (what the class missed, check by check) and a table on the terminal.

Every cell of the CSV files goes through :func:`grader.escape.csv_cell` (no cell a spreadsheet runs as a
formula; numbers stay numbers), and every piece of text a learner could have written that reaches summary.txt
or the terminal (names, reasons, the failure messages their code raised, file names) through
:func:`grader.escape.printable` (no control character, no line of its own)."""

from __future__ import annotations

import csv
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import course
from grader.escape import csv_cell, printable
from grader.records import Record

NOT_HANDED_IN = ("missing", "invalid")
MISSING_NAMED = 12  # learners named per part missing in the summary (the rest counted)


@dataclass
class CheckTally:
    """How a class did on one check."""

    part: str
    grade_id: str
    passed: int = 0
    failed: int = 0
    never_reached: int = 0  # the kernel did not get to it (it died, or the notebook stopped or was not run)
    not_handed_in: int = 0  # no notebook of the part, or none that is a notebook of the part
    messages: Counter = field(default_factory=Counter)  # failure message, numbers blanked → how many
    example: dict[str, str] = field(default_factory=dict)  # blanked message → the first one seen
    misconceptions: Counter = field(default_factory=Counter)  # misconception id → learners who showed it
    named: dict[str, dict] = field(default_factory=dict)  # misconception id → {"name", "where"}

    @property
    def label(self) -> str:
        return f"P{course.part(self.part).number} {self.grade_id}"


def class_report(
    learners: dict[str, str], current: dict[str, Record], checks: dict[str, dict]
) -> list[CheckTally]:
    """For every check of every part handed in, how many learners passed it, failed it (and with which
    messages), never reached it, or did not hand the part in."""
    handed_in = {r.part for r in current.values() if r.status not in NOT_HANDED_IN}
    tallies = [CheckTally(p, g) for p in course.PART_NAMES if p in handed_in for g in checks[p]]
    for sid in learners.values():
        for tally in tallies:
            record = current.get(f"{sid}/{tally.part}")
            verdict = record.checks.get(tally.grade_id) if record else None
            if record is None or record.status in NOT_HANDED_IN:
                tally.not_handed_in += 1
            elif verdict is None or not verdict.reached:
                tally.never_reached += 1
            elif verdict.passed:
                tally.passed += 1
            else:
                tally.failed += 1
                first = (verdict.message.strip().splitlines() or [""])[0][:160]
                blanked = re.sub(r"\d+(\.\d+)?", "#", first)
                tally.messages[blanked] += 1
                tally.example.setdefault(blanked, first)
                shown = verdict.misconception or {}
                if isinstance(shown, dict) and shown.get("id"):
                    tally.misconceptions[shown["id"]] += 1
                    tally.named.setdefault(shown["id"], shown)
    return tallies


def ranked_misconceptions(tallies: list[CheckTally]) -> list[tuple[int, CheckTally, dict]]:
    """Every (check, misconception) the class showed, the most learners first: (learners, check's tally, the
    misconception's id, name and where the course teaches it)."""
    found = [(n, t, {"id": m, **t.named[m]}) for t in tallies for m, n in t.misconceptions.items()]
    return sorted(found, key=lambda x: (-x[0], x[1].label, x[2]["id"]))


def class_report_lines(tallies: list[CheckTally]) -> list[str]:
    width = max((len(t.label) for t in tallies), default=10)
    lines = [
        "What the class missed, check by check (passed / failed / never reached / not handed in; "
        "commonest failures):"
    ]
    for t in tallies:
        counts = f"{t.passed:>3} / {t.failed:>3} / {t.never_reached:>3} / {t.not_handed_in:>3}"
        lines.append(f"  {t.label:<{width}}  {counts}")
        for blanked, n in t.messages.most_common(3):
            lines.append(f"  {'':<{width}}      {n} × {printable(t.example[blanked])}")
    ranked = ranked_misconceptions(tallies)
    lines.append(
        "Misconceptions the checks recognised, the most learners first (learners · check · what it looks "
        "like → what to teach again):"
        if ranked
        else "Misconceptions the checks recognised: none"
    )
    for n, t, m in ranked:
        lines.append(f"  {n:>3} · {t.label} · {printable(m['name'])} → {printable(m['where'])}")
    return lines


def class_report_chart(tallies: list[CheckTally], path: Path) -> None:
    """A horizontal bar per check: passed, failed, never reached, not handed in; below, the misconceptions the
    checks recognised, a bar each (learners), the commonest first."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    ranked = ranked_misconceptions(tallies)[:15]
    rows = [0.28 * len(tallies) + 1.4] + ([0.3 * len(ranked) + 1.2] if ranked else [])
    fig = Figure(figsize=(9, sum(rows)), layout="constrained")
    grid = fig.add_gridspec(len(rows), 1, height_ratios=rows)
    ax = fig.add_subplot(grid[0])
    labels = [t.label for t in reversed(tallies)]
    left = [0] * len(labels)
    for name, colour, values in [
        ("passed", "#4caf50", [t.passed for t in reversed(tallies)]),
        ("failed", "#e53935", [t.failed for t in reversed(tallies)]),
        ("never reached", "#9e9e9e", [t.never_reached for t in reversed(tallies)]),
        ("not handed in", "#e0e0e0", [t.not_handed_in for t in reversed(tallies)]),
    ]:
        ax.barh(labels, values, left=left, color=colour, label=name)
        left = [a + b for a, b in zip(left, values, strict=True)]
    ax.set_xlabel("learners")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_title("What the class missed")
    ax.tick_params(axis="y", labelsize=8)
    ax.legend(loc="lower right", fontsize=8)
    if ranked:
        below = fig.add_subplot(grid[1])
        names = [f"{t.label}: {printable(m['name'])[:70]}" for _, t, m in reversed(ranked)]
        below.barh(names, [n for n, _, _ in reversed(ranked)], color="#fb8c00")
        below.set_xlabel("learners")
        below.xaxis.set_major_locator(MaxNLocator(integer=True))
        below.set_title("Misconceptions the checks recognised")
        below.tick_params(axis="y", labelsize=7)
    fig.savefig(path, dpi=100)


# What Moodle's grade import matches a row to a user by: a username as Moodle keeps them (lower case), and one
# that no spreadsheet reads as a formula (a cell starting with - or @ would be written with an apostrophe).
MOODLE_USERNAME = re.compile(r"[a-z0-9_.][a-z0-9_.@-]*")


def lms_gradebooks(
    out: Path,
    table: list[tuple[str, dict[str, float | None]]],
    columns: dict[str, float],
    check_columns: dict[str, float] | None = None,
    roster: dict[str, dict[str, str]] | None = None,
) -> list[str]:
    """The gradebooks an LMS imports (docs/grading.md, "Grades into Canvas or Moodle"), a column per part
    (title → points possible), from ``table`` (learner → column → score, None for a part the grader could not
    grade yet) and the instructor's ``roster`` (learner → login, email, name), when given:

    - lms/canvas.csv, Canvas's gradebook import: its student columns (Student: the roster's name or the
      folder name; SIS Login ID: the roster's login or the folder name), a Points Possible row;
    - lms/moodle.csv, Moodle's "Import grades from CSV": an identifier column (the roster's login, or the
      folder name), to map onto Moodle's username, and a column per grade item;
    - with ``check_columns`` (--lms-checks), the per-check columns in files of their own
      (lms/canvas_checks.csv, lms/moodle_checks.csv): imported beside the parts, they would become graded
      items that count twice.

    A learner with a part not graded yet is left out of the files (an empty cell would clear a grade already
    in the LMS), and so, from Moodle's, is one whose identifier is not a Moodle username (one such row stops
    Moodle's whole import); returns the lines that say who was left out, for the summary."""
    folder = out / "lms"
    folder.mkdir(exist_ok=True)
    roster = roster or {}
    pending = [
        name
        for name, scores in table
        if any(scores.get(c) is None for c in (*columns, *(check_columns or {})))
    ]
    ready = [(name, scores) for name, scores in table if name not in pending]
    login = {name: roster.get(name, {}).get("login") or name for name, _ in ready}
    shown = {name: roster.get(name, {}).get("name") or name for name, _ in ready}
    moodle_ready = [(name, scores) for name, scores in ready if MOODLE_USERNAME.fullmatch(login[name])]
    not_moodle = [name for name, _ in ready if not MOODLE_USERNAME.fullmatch(login[name])]
    files = [("", columns)] + ([("_checks", check_columns)] if check_columns else [])
    for suffix, wanted in files:
        canvas = [
            ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", *wanted],
            ["Points Possible", "", "", "", "", *wanted.values()],
            *(
                [_student(shown[name]), "", "", login[name], "", *(scores[c] for c in wanted)]
                for name, scores in ready
            ),
        ]
        _write_csv(folder / f"canvas{suffix}.csv", canvas)
        moodle = [
            ["username", *wanted],
            *([login[name], *(scores[c] for c in wanted)] for name, scores in moodle_ready),
        ]
        _write_csv(folder / f"moodle{suffix}.csv", moodle)
    lines = [
        f"LMS files ({folder}): {len(ready)} learner(s) in canvas.csv, {len(moodle_ready)} in moodle.csv"
    ]
    if pending:
        lines.append(
            "  left out of both until every part of theirs is graded (an empty cell would clear a grade in "
            f"the LMS): {', '.join(map(printable, pending))}"
        )
    if not_moodle:
        lines.append(
            "  left out of moodle.csv, not a Moodle username (lower-case letters, digits, _ - . @; give a "
            f"roster, --roster): {', '.join(map(printable, not_moodle))}"
        )
    return lines


def _student(name: str) -> str:
    """A learner's name in Canvas's Student column, never the name of its Points Possible row."""
    return f"'{name}" if name.strip().casefold() == "points possible" else name


def _write_csv(path: Path, rows) -> None:
    """A CSV file whose every cell is :func:`grader.escape.csv_cell`'s (no formula, no control character), and
    quoted (a spreadsheet whose locale separates cells with ";" splits no cell at a ";" in a name)."""
    with open(path, "w", newline="") as f:  # every cell quoted: a ";" cannot start a cell where ";" separates
        csv.writer(f, quoting=csv.QUOTE_ALL).writerows([csv_cell(cell) for cell in row] for row in rows)


def _similarity(
    ids: dict[str, str], current: dict[str, Record], answers: dict[str, dict[str, str]]
) -> list[str]:
    """The similarity section of the summary (grader.similarity): pairs of learners sharing rare code, and
    rare mistakes shared, among the learners in SUBMISSIONS."""
    from grader import similarity

    names = {sid: printable(name) for name, sid in ids.items()}  # escaping keeps names apart: no two alike
    pairs = similarity.similar_pairs(
        {printable(k): v for k, v in answers.items() if k in ids}, similarity.course_shingles()
    )
    shown = [
        (
            names[r.student_id],
            r.part,
            grade_id,
            {**verdict.misconception, "name": printable(verdict.misconception.get("name", ""))},
        )
        for r in current.values()
        if r.student_id in names and r.status == "graded"
        for grade_id, verdict in r.checks.items()
        if not verdict.passed and (verdict.misconception or {}).get("id")
    ]
    return similarity.report_lines(pairs, similarity.rare_mistakes(shown, len(ids)))


def _cell(score: float | None) -> float | str:
    return "" if score is None else score


def write(
    out: Path,
    ids: dict[str, str],
    current: dict[str, Record],
    unrecognised: dict[str, list[str]],
    checks: dict[str, dict[str, float]],
    executed: int,
    dropped: list[str],
    per_check: bool = False,
    answers: dict[str, dict[str, str]] | None = None,
    notes: list[str] | None = None,
    roster: dict[str, dict[str, str]] | None = None,
) -> str:
    """grades.csv, lms/ (a column per part handed in, and with ``per_check`` per check too), summary.txt and
    class_report.png for the learners in SUBMISSIONS (learner → student id), from their records
    (STUDENT_ID/PART → record) and each part's checks (grade_id → points); returns the summary and the
    table."""
    learners = list(ids)
    maxima = {part: sum(points.values()) for part, points in checks.items()}
    handed_in = {r.part for r in current.values()}  # a part nobody handed in yet gets no column
    columns: dict[str, float] = {}
    check_columns: dict[str, float] = {}
    for p in course.PARTS:
        if p.name in handed_in:
            columns[f"Part {p.number}: {p.title}"] = maxima[p.name]
            if per_check:
                check_columns |= {f"Part {p.number}: {g}": points for g, points in checks[p.name].items()}
    rows, table, lms = [], [], []
    for name in sorted(learners):
        sid = ids[name]
        total = total_max = 0.0
        hints_total = 0
        line, scores = [printable(name)], {}
        for part in course.PART_NAMES:
            record = current.get(f"{sid}/{part}")
            status = record.status if record else "missing"
            score = float(record.score or 0) if record and status == "graded" else 0.0
            total, total_max = total + score, total_max + maxima[part]
            reason = record.reason if record else "no submission"
            hints = sum(record.hints.values()) if record and status == "graded" else 0
            hints_total += hints
            rows.append([name, sid, part, score, maxima[part], status, reason, hints])
            line.append(f"{score:g}" if record else "–")
            # an LMS gets a score for every part handed in; none for what the grader could not grade yet
            known = not record or record.status != "error"
            number = course.part(part).number
            scores[f"Part {number}: {course.part(part).title}"] = score if known else None
            for grade_id in checks[part]:
                verdict = record.checks.get(grade_id) if record and status == "graded" else None
                points = float(verdict.points) if verdict else 0.0
                scores[f"Part {number}: {grade_id}"] = points if known else None
        rows.append([name, sid, "TOTAL", total, total_max, "", "", hints_total])
        table.append([*line, f"{total:g}/{total_max:g}"])
        lms.append((name, scores))
    header = ["learner", "student_id", "part", "score", "max_score", "status", "reason", "hints_used"]
    _write_csv(out / "grades.csv", [header, *rows])
    lms_lines = lms_gradebooks(out, lms, columns, check_columns, roster)

    names = {sid: printable(name) for name, sid in ids.items()}
    kept = len(current) - executed
    lines = [
        f"Graded {len(learners)} learner(s); this run executed {executed} notebook(s) "
        f"({kept} unchanged, kept)."
    ]
    # the intake's notes (layout, folders not graded) and the merge's
    lines += [printable(note) for note in notes or []]
    if dropped:
        lines.append(
            f"Left out, no longer in the submissions (their records stay in {out / 'records'}): "
            + ", ".join(map(printable, dropped))
        )

    def who(record: Record) -> str:
        return f"{names.get(record.student_id, printable(record.student_id))} / {printable(record.part)}"

    ordered = [current[k] for k in sorted(current)]
    stopped = [r for r in ordered if r.timed_out_cells]
    lines.append(f"Cells stopped at the time limit: {sum(len(r.timed_out_cells) for r in stopped)}")
    for r in stopped:
        lines.append(f"  {who(r)}: cell(s) {', '.join(str(i + 1) for i in r.timed_out_cells)}")
    for label, statuses in [("timed out", {"timed out"}), ("were invalid", {"invalid"})]:
        bad = [r for r in ordered if r.status in statuses]
        lines.append(f"Parts that {label}: {len(bad)}")
        lines += [f"  {who(r)}: {printable(r.reason)}" for r in bad]
    failed = [r for r in ordered if r.status == "error"]
    lines.append(
        f"Not graded, the grader's or its machines' failure (graded again by the next run): {len(failed)}"
    )
    lines += [f"  {who(r)}: {printable(r.reason)}" for r in failed]
    noted = [r for r in ordered if r.status == "graded" and r.reason]
    lines.append(f"Graded with a note: {len(noted)}")
    lines += [f"  {who(r)}: {printable(r.reason)}" for r in noted]
    missing = {
        name: [p for p in course.PART_NAMES if f"{ids[name]}/{p}" not in current] for name in sorted(learners)
    }
    lines.append(
        f"Parts missing: {sum(map(len, missing.values()))} (by part: how many learners did not hand it in, "
        "and who; grades.csv has every row)"
    )
    for p in course.PARTS:
        who = [printable(name) for name, parts in missing.items() if p.name in parts]
        if who:
            shown = ", ".join(who[:MISSING_NAMED]) + (
                f", and {len(who) - MISSING_NAMED} more" if len(who) > MISSING_NAMED else ""
            )
            lines.append(f"  Part {p.number} ({p.name}): {len(who)} — {shown}")
    nothing = [printable(name) for name, parts in missing.items() if len(parts) == len(course.PARTS)]
    if nothing:
        lines.append(f"  Handed in nothing: {len(nothing)} — {', '.join(nothing)}")
    for name, files in sorted(unrecognised.items()):
        ignored = "; ".join(map(printable, files))
        lines.append(f"  {printable(name)}: left out of their folder: {ignored}")
    tallies = class_report(ids, current, checks)
    lines += class_report_lines(tallies)
    class_report_chart(tallies, out / "class_report.png")
    lines += _similarity(ids, current, answers or {})
    protections = Counter(tuple(r.protections.items()) for r in ordered if r.protections)
    for shields, n in protections.most_common():
        shown = "; ".join(f"{printable(str(k))}: {printable(str(v))}" for k, v in shields)
        lines.append(f"Protections ({n} notebook(s)): {shown}")
    lines += lms_lines
    lines.append(
        f"Grades: {out / 'grades.csv'}   LMS gradebooks: {out / 'lms'}   Feedback: {out / 'feedback'}   "
        f"Logs: {out / 'logs'}"
    )
    lines.append(f"What the class missed, as a chart: {out / 'class_report.png'}")
    summary = "\n".join(lines)
    (out / "summary.txt").write_text(summary + "\n")
    header = ["learner", *(f"P{p.number}" for p in course.PARTS), "total"]
    widths = [max(len(str(r[i])) for r in [header, *table]) for i in range(len(header))]
    rendered = "\n".join(
        "  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)) for r in [header, *table]
    )
    return summary + "\n\n" + rendered
