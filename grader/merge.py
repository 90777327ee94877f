"""The merge, on the instructor's side: the class's records into nbgrader's gradebook and its folders
(OUT/course, which formgrader opens), feedback/ and logs/ per learner, and the reports
(:mod:`grader.reports`).

Every step that touches one learner's record or files is that learner's alone: one that fails is named in the
summary and the run goes on, so that it always ends with grades.csv, the LMS files and the summary for
everyone else.
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import json
import shutil
import time
from pathlib import Path

import nbformat
from nbgrader.apps import NbGraderAPI

import course
from grader import intake, records, reports, scoring, sources
from grader.intake import Intake, Submission, output_folder


class Merge:
    """The records of this class into the outputs: into nbgrader's gradebook and its folders in OUT/course as
    they arrive (:meth:`add`), then (:meth:`finish`) whatever is left, feedback/ and logs/ per learner,
    grades.csv, the LMS gradebooks, summary.txt and the class report. Records of learners or notebooks no
    longer in SUBMISSIONS are left out, and said so. ``course/merged.json`` says which record is in the
    gradebook and the folders."""

    def __init__(
        self,
        out: Path,
        part_sources: Path,
        parts: set[str],
        timestamps: dict[str, float] | None = None,
        drop_hand: bool = False,
        roster: dict[str, dict[str, str]] | None = None,
    ) -> None:
        self.out, self.sources, self.root = out, part_sources, out / "course"
        self.merged_file = self.root / "merged.json"
        self.trouble: list[str] = []  # what could not be merged, learner by learner, for the summary
        self.timestamps = (
            timestamps or {}
        )  # STUDENT_ID/PART → when the notebook was last changed (its file's)
        self.drop_hand = drop_hand  # a hand grade over a notebook graded again: dropped (or kept, and said)
        self.over_hand: list[str] = []  # learner / part whose new record met a hand grade
        self.roster = roster  # the instructor's: learner → LMS login, e-mail, name (grader.cli.read_roster)
        fresh = not (self.root / "gradebook.db").exists()
        if fresh:
            self.root.mkdir(parents=True, exist_ok=True)
            scoring.empty_gradebook(self.root / "gradebook.db")
        self.merged = (
            {} if fresh or not self.merged_file.exists() else json.loads(self.merged_file.read_text())
        )
        self.links = self.merged.setdefault("records", {})
        changed = []  # each part's source into the gradebook, when it is new or changed
        for part in sorted(parts):
            exercise = sources.exercise_bytes(part, part_sources)
            digest = hashlib.sha256(exercise).hexdigest()
            if self.merged.setdefault("sources", {}).get(part) != digest:
                (self.root / "source" / part).mkdir(parents=True, exist_ok=True)
                (self.root / "source" / part / f"{part}.ipynb").write_bytes(exercise)
                changed.append(part)
                self.merged["sources"][part] = digest
        if changed and not fresh:  # nbgrader changes no part that has submissions: they go, to come back
            with scoring.ClassGradebook(self.root) as book:
                for part in changed:
                    for key in [k for k in self.links if k.endswith(f"/{part}")]:
                        self._remove(key, book)
        scoring.generate(self.root, changed)

    def __enter__(self) -> Merge:
        self.book = scoring.ClassGradebook(self.root).__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self.book.__exit__(*exc)
        self.merged_file.parent.mkdir(parents=True, exist_ok=True)
        records.replace_file(self.merged_file, json.dumps(self.merged, indent=1, ensure_ascii=False).encode())

    def add(self, record: records.Record, arrived: bool = False) -> None:
        """One record into the gradebook and nbgrader's folders (a graded one; the others have no notebook)
        and out of them when it is no longer graded; ``arrived``: graded by this run (its files are new, even
        when it is the same submission: --force). A record that cannot be merged is named in the summary."""
        try:
            self._add(record, arrived)
        except Exception as error:  # this learner's trouble, never the class's
            self.book.gb.db.rollback()
            self.trouble.append(f"{record.learner} / {record.part}: not merged ({type(error).__name__})")

    def _add(self, record: records.Record, arrived: bool) -> None:
        if record.status != "graded":
            if record.key in self.links:
                self._remove(record.key, self.book)
            return
        digest, _, learner = self.links.get(record.key, "").partition(":")
        if digest == record.digest and not arrived:
            if learner != record.learner:  # only the name shown changed: the files move, nothing is scored
                self.book.name(record.student_id, record.learner)
                self._place(record, learner)
            return
        resubmitted = bool(digest) and digest != record.digest
        stamp = _stamp(self.timestamps.get(record.key, 0.0))
        had_hand = self.book.add(record, stamp.replace(tzinfo=None), self.drop_hand and resubmitted)
        kept = self.merged.setdefault("kept_hand", {}).pop(record.key, None)
        if kept:  # hand grades of a submission that was out of the gradebook for a while: back in
            resubmitted |= kept.get("digest") != record.digest
            if not (self.drop_hand and resubmitted):
                self.book.restore_hand(record.student_id, record.part, kept)
            had_hand = True
        if had_hand and resubmitted:
            self.over_hand.append(f"{record.learner} / {record.part}")
        self._place(record, learner)

    def _place(self, record: records.Record, learner: str) -> None:
        """The record's files where nbgrader, formgrader and the learner find them (links to the record's
        own), none left of an earlier submission or of the folder of an earlier name."""
        folder = output_folder(record.learner, record.student_id)
        if learner and output_folder(learner, record.student_id) != folder:
            old = output_folder(learner, record.student_id)
            for path in (
                self.out / "feedback" / old / f"{record.part}.html",
                self.out / "logs" / old / f"{record.part}.log",
            ):
                path.unlink(missing_ok=True)
        stamp = _stamp(self.timestamps.get(record.key, 0.0))
        for name, target in (
            # formgrader lists the submissions in submitted/ (each with a timestamp.txt), as graded when
            # autograded/ holds the same timestamp: the graded notebook, verdicts and all, in both
            ("notebook.ipynb", scoring.path(self.root, "submitted", record.student_id, record.part)),
            ("notebook.ipynb", scoring.path(self.root, "autograded", record.student_id, record.part)),
            ("feedback.html", scoring.path(self.root, "feedback", record.student_id, record.part, ".html")),
            ("feedback.html", self.out / "feedback" / folder / f"{record.part}.html"),
        ):
            found = records.path(self.out, record, name)
            if found is not None:
                records.link(found, target)
            else:  # none for this record (its page could not be made): not an earlier submission's either
                target.unlink(missing_ok=True)
        for step in ("submitted", "autograded"):
            timestamp = scoring.path(self.root, step, record.student_id, record.part).with_name(
                "timestamp.txt"
            )
            if timestamp.parent.is_dir():  # a new file (nbgrader leaves its own read-only)
                records.replace_file(timestamp, (stamp.isoformat(sep=" ") + "\n").encode())
        self.links[record.key] = f"{record.digest}:{record.learner}"

    def _remove(self, key: str, book: scoring.ClassGradebook) -> None:
        """A submission out of the gradebook and nbgrader's folders; its hand grades kept aside (merged.json),
        to come back with it."""
        sid, part = key.split("/")
        digest, _, learner = self.links[key].partition(":")
        given = book.hand_grades_of(sid, part)
        if given:
            self.merged.setdefault("kept_hand", {})[key] = {**given, "digest": digest}
        book.remove(sid, part)
        folder = output_folder(learner, sid)
        for path in (
            scoring.path(self.root, "submitted", sid, part),
            scoring.path(self.root, "submitted", sid, part).with_name("timestamp.txt"),
            scoring.path(self.root, "autograded", sid, part),
            scoring.path(self.root, "autograded", sid, part).with_name("timestamp.txt"),
            scoring.path(self.root, "feedback", sid, part, ".html"),
            self.out / "feedback" / folder / f"{part}.html",
            self.out / "logs" / folder / f"{part}.log",
        ):
            path.unlink(missing_ok=True)
        for step in ("submitted", "autograded", "feedback"):  # no empty folder for formgrader to count
            with contextlib.suppress(OSError):
                scoring.path(self.root, step, sid, part).parent.rmdir()
        del self.links[key]

    def finish(self, intake: Intake, executed: int, per_check: bool = False) -> str:
        """Every record of the class merged, the others taken out; the reports. Returns the summary and the
        table."""
        out = self.out
        current = {}
        for task in intake.submissions:
            record = records.load(out, task.student_id, task.part)
            if record is None or record.digest != task.digest:  # lost on the way (an interrupted run)
                points = sources.checks_points(task.part, self.sources)
                why = "no record of it came back from the workers"
                record = records.unjudged(
                    task.learner, task.student_id, task.part, task.digest, "error", why, points
                )
            record.learner = task.learner
            current[record.key] = record
            self.add(record)
        for key in [k for k in self.links if k not in current]:
            try:
                self._remove(key, self.book)
            except Exception as error:
                self.trouble.append(f"{key}: not taken out of the gradebook ({type(error).__name__})")
        for learner in intake.graded:  # every learner in formgrader's list, those with nothing graded too
            try:
                self.book.name(learner.student_id, learner.name)
            except Exception as error:
                self.trouble.append(f"{learner.name}: not in the gradebook ({type(error).__name__})")
        hand = self._hand_grades(current)
        for record in current.values():  # every log, the failures' too
            found = records.path(out, record, "log.txt")
            if found is not None:
                folder = output_folder(record.learner, record.student_id)
                records.link(found, out / "logs" / folder / f"{record.part}.log")
        kept = {output_folder(learner.name, learner.student_id) for learner in intake.graded}
        for top in (out / "feedback", out / "logs"):  # learners no longer in SUBMISSIONS: out of the outputs
            for folder in top.glob("*/"):
                if folder.name not in kept:
                    shutil.rmtree(folder)
        names = {t.student_id for t in intake.submissions}
        dropped = sorted(
            {r.learner for r in records.stored(out) if r.key not in current and r.student_id not in names}
        )
        ids = {learner.name: learner.student_id for learner in intake.graded}
        points = {part: sources.checks_points(part, self.sources) for part in course.PART_NAMES}
        answers = answer_code(intake.submissions, self.sources, self.trouble)
        unrecognised = {learner.name: learner.ignored for learner in intake.graded if learner.ignored}
        notes = [*intake.notes]
        refused = [learner for learner in intake.learners if learner.refused]
        notes.append(f"Folders not graded: {len(refused)}")
        notes += [f"  {learner.name}: {learner.refused}" for learner in refused]
        notes.append(
            f"Hand grades and comments given in formgrader: {len(hand)} notebook(s), in grades.csv and the "
            "LMS files, and in the feedback page (unless named below, under what could not be merged)"
        )
        aside = self.merged.get("kept_hand", {})
        if aside:
            notes.append(
                f"Hand grades kept aside, of notebooks not graded now (they come back with them): "
                f"{len(aside)}"
            )
            notes += [f"  {key}" for key in sorted(aside)]
        notes += [f"  {current[key].learner} / {current[key].part}" for key in sorted(hand) if key in current]
        what = "dropped (--hand-grades drop)" if self.drop_hand else "kept (--hand-grades drop drops them)"
        notes.append(
            f"Hand grades over a notebook graded again (a resubmission): {len(self.over_hand)}, {what}"
        )
        notes += [f"  {line}" for line in self.over_hand]
        notes.append(f"Records that could not be merged: {len(self.trouble)}")
        notes += [f"  {line}" for line in self.trouble]
        return reports.write(
            out, ids, current, unrecognised, points, executed, dropped, per_check, answers, notes, self.roster
        )

    def _hand_grades(self, current: dict[str, records.Record]) -> dict[str, dict]:
        """The hand grades and comments of the gradebook into the records the reports are made from (each
        check given a hand grade scores it; the part's score is the checks' sum, as nbgrader's), and each such
        learner's feedback page made again by nbgrader from the gradebook (the hand grade and the comment on
        it); a page whose hand grades were taken away is the record's own again."""
        hand = self.book.hand_grades()
        made = self.merged.setdefault("hand", {})
        for key, given in hand.items():
            record = current.get(key)
            if record is None or record.status != "graded":
                continue
            for grade_id, points in given["grades"].items():
                if grade_id in record.checks:
                    record.checks[grade_id].points = points
                    record.checks[grade_id].hand = True
            record.score = sum(c.points for c in record.checks.values())
            record.comments = {**record.comments, **given["comments"]}
            fingerprint = json.dumps([record.digest, record.learner, given], sort_keys=True)
            if made.get(key) != fingerprint:
                try:
                    self._feedback_again(record)
                    made[key] = fingerprint
                except Exception as error:
                    self._place(record, record.learner)  # the record's own page, without the hand grades
                    self.trouble.append(
                        f"{record.learner} / {record.part}: feedback with the hand grades not made "
                        f"({type(error).__name__})"
                    )
        for key in [k for k in made if k not in hand]:  # hand grades taken away: the record's own page again
            del made[key]
            record = current.get(key)
            found = records.path(self.out, record, "feedback.html") if record else None
            if found is not None:
                folder = output_folder(record.learner, record.student_id)
                for target in (
                    scoring.path(self.root, "feedback", record.student_id, record.part, ".html"),
                    self.out / "feedback" / folder / f"{record.part}.html",
                ):
                    records.link(found, target)
        return {k: v for k, v in hand.items() if k in current}

    def _feedback_again(self, record: records.Record) -> None:
        """The learner's feedback page made by nbgrader in OUT/course from the gradebook (hand grades and
        comments in it), cleaned as it is written, and put where the learner's pages are."""
        if not scoring.path(self.root, "autograded", record.student_id, record.part).is_file():
            raise FileNotFoundError("no graded notebook to make the page from")
        page = scoring.path(self.root, "feedback", record.student_id, record.part, ".html")
        page.unlink(missing_ok=True)  # a hard link to the record's own page: never written through
        self.book.gb.db.commit()
        result = NbGraderAPI(config=scoring.config(self.root)).generate_feedback(
            record.part, record.student_id, force=True
        )
        if not result["success"] or not page.exists():
            raise RuntimeError(scoring.last_line(result.get("error", "")))
        folder = output_folder(record.learner, record.student_id)
        records.link(page, self.out / "feedback" / folder / f"{record.part}.html")


def _stamp(modified: float) -> datetime.datetime:
    """A submission's time for the gradebook: its file's (the learner's to set: not proof of when it came in),
    never later than now; now when the file's is not a time."""
    try:
        return datetime.datetime.fromtimestamp(min(float(modified), time.time()), datetime.UTC)
    except (OverflowError, OSError, ValueError):
        return datetime.datetime.now(datetime.UTC)


def answer_code(
    tasks: list[Submission], part_sources: Path, trouble: list[str] | None = None
) -> dict[str, dict[str, str]]:
    """Each learner's own code in the answer cells of each part they handed in (for the similarity report):
    learner → part → code. A notebook that cannot be read has none."""
    from grader import similarity

    exercises = {part: sources.exercise_source(part, part_sources) for part in {t.part for t in tasks}}
    code: dict[str, dict[str, str]] = {}
    for task in tasks:
        if task.refused:
            continue
        try:  # the notebook as the intake admits it: within its limits, or not at all
            admitted, reason = intake.admit(task, part_sources)
            if reason:
                continue
            nb = nbformat.reads(admitted.decode(), as_version=4)
            code.setdefault(task.learner, {})[task.part] = similarity.answer_code(nb, exercises[task.part])
        except Exception:  # not a notebook (its record says so), or one the similarity report cannot read
            continue
    return code
