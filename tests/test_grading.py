"""End-to-end grading (`python -m grader`, nbgrader underneath) of a class of synthetic submissions.

The corpus is built here from the solutions and the exercises. One class: a complete learner set of
every part, and a learner in the original course's style (Part 4 without nn.Flatten, Part 6 saving an
untrained model); graded again with one check changed in a copy of the sources (`--source`), only that part
runs again. Another class, on Part 1 (fast): every kind of bad submission, all graded in one run, so a bad
submission must not disturb anybody else's grade; a second run into the same output adds a late learner and
an infinite loop: it must execute only those two notebooks.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
import torch

import course
import exploits
from grader import sandbox
from grader.escape import csv_cell, printable
from grader.intake import student_id
from grader.sources import checks_points

PART = course.PARTS[0].name
SOLUTION = course.PARTS[0].solution
REPO = course.ROOT
SANDBOX = shutil.which("bwrap") is not None  # `make sandbox` installs it where it can
FULL = sum(checks_points(PART).values())  # Part 1's points, from its source
# The course's drawings in Part 1's markdown (PNG attachments), which every feedback page shows
DRAWINGS = sum(
    len(encoded)
    for cell in nbformat.read(SOLUTION, as_version=4).cells
    for attachment in cell.get("attachments", {}).values()
    for encoded in attachment.values()
)
HINT_COST = 0.25  # the class of bad submissions is graded with --hint-cost 0.25
# A learner's folder name: a formula, a terminal's title and bell, not UTF-8, and a forged summary line.
HOSTILE_NAME = b'=HYPERLINK("x") Jos\xe9 \x1b]0;pwned\x07\nGraded 0 learner(s)'


def _solution() -> nbformat.NotebookNode:
    return nbformat.read(SOLUTION, as_version=4)


def _cell(nb, grade_id):
    return next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id)


def _with(grade_id: str, source: str) -> nbformat.NotebookNode:
    nb = _solution()
    _cell(nb, grade_id).source = source
    return nb


def _answer(grade_id: str) -> str:
    return _cell(_solution(), grade_id).source


# Runs for two minutes after the kernel is gone: every notebook it can reach gets a ✓ in every output.
FORGER = """
import json, os, time
end = time.time() + 120
while time.time() < end:
    for top in ('/', os.path.expanduser('~')):
        for folder, _, files in os.walk(top):
            for name in files:
                if name.endswith('.ipynb'):
                    path = os.path.join(folder, name)
                    try:
                        nb = json.load(open(path))
                        for cell in nb['cells']:
                            forged = {'output_type': 'stream', 'name': 'stdout', 'text': '✓ forged'}
                            cell['outputs'] = [forged]
                        json.dump(nb, open(path, 'w'))
                    except Exception:
                        pass
    time.sleep(1)
"""

# Tries to reach the internet: NETWORK REACHED if it could.
NETWORK = """
import urllib.request
try:
    urllib.request.urlopen('https://pypi.org', timeout=5)
    print('NETWORK REACHED')
except Exception as error:
    print('network blocked:', type(error).__name__)
"""

# Looks for what a learner must never see and tries the escapes open to root: FOUND/ESCAPED if any works.
# Under /home, /root and /tmp only the allow-list may show: the environment, the course's modules, the data,
# the weights cache and the sandbox's own scratch (the folders above them are there, empty, to hold them).
SNOOP = """
import os, subprocess, sys
for path in ['{repo}/.git/HEAD', '{repo}/solutions', '{repo}/tests/wrong_answers.py', '{repo}/grader',
             '{root}', '/etc/shadow']:
    try:
        seen = os.listdir(path) if os.path.isdir(path) else open(path).read(20)
        print('FOUND' if seen else 'empty', path)
    except OSError as error:
        print('absent', path, type(error).__name__)
allowed = [sys.prefix, sys.base_prefix, os.environ['PYTORCH_COURSE_DATA'], os.environ['TORCH_HOME'],
           os.path.dirname(os.getcwd())] + ['{repo}/' + name for name in {modules} + ('checks',)]
allowed = tuple(os.path.realpath(path) for path in allowed)
# /tmp holds the scratch, and the folders above what is allowed (a checkout under /tmp: its environment)
scratch = os.path.realpath(os.path.dirname(os.getcwd()))
above = set(path.split('/')[2] for path in allowed if path.startswith('/tmp/') and path != scratch)
for top in ('/home', '/root', '/tmp'):
    for folder, folders, files in os.walk(top):
        if os.path.realpath(folder).startswith(allowed):
            folders.clear()
            continue
        for name in files:
            if not os.path.realpath(os.path.join(folder, name)).startswith(allowed):
                print('FOUND', os.path.join(folder, name))
print('tmp holds', sorted(set(os.listdir('/tmp')) - above))
for command in ['umount /usr', 'mount -o remount,rw /usr', 'touch /usr/escaped', 'touch {repo}/escaped']:
    result = subprocess.run(command, shell=True, capture_output=True)
    print('ESCAPED' if result.returncode == 0 else 'refused', command)
"""


# Resources the limits must contain, all in one answer cell: 256 MB printed in a loop (the grader keeps a few
# MB of it, as it arrives), /dev/shm filled up (a tmpfs of the sandbox's own, 1 GiB), and where the machine
# gives the sandbox cgroups of its own, a memory hog spread over 16 processes (6.4 GB, over the class's 5 GiB
# limit).
HOGS = """
import multiprocessing, os, subprocess, time
filled = subprocess.run(['dd', 'if=/dev/zero', 'of=/dev/shm/fill', 'bs=1M'], capture_output=True, text=True)
print('SHM', os.path.getsize('/dev/shm/fill') // 2**20, 'MiB:', filled.stderr.strip().splitlines()[0])
os.remove('/dev/shm/fill')
"""
FLOOD = """
chunk = 'x' * 2**20
for _ in range(2**8):  # last: the cell's output past 8 MB is dropped
    print(chunk, flush=True)
"""
SPREAD_HOG = """
def hog():
    block = bytearray(400 * 2**20)
    for i in range(0, len(block), 4096):
        block[i] = 1
    time.sleep(5)

hogs = [multiprocessing.get_context('fork').Process(target=hog) for _ in range(16)]
for h in hogs:
    h.start()
for h in hogs:
    h.join()
print('HOGS KILLED', sum(h.exitcode == -9 for h in hogs), 'of', len(hogs))
"""


def _build_corpus(root: Path, out: Path) -> dict[str, tuple[int | None, str]]:
    """Write the submissions; return learner → (expected Part 1 score or None, expected status)."""

    def put(learner: str, nb_or_bytes, name: str = f"{PART}.ipynb", nested: bool = False) -> None:
        folder = root / learner / (PART if nested else "")
        folder.mkdir(parents=True, exist_ok=True)
        data = nb_or_bytes if isinstance(nb_or_bytes, bytes) else nbformat.writes(nb_or_bytes).encode()
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)

    expected: dict[str, tuple[int | None, str]] = {}
    put("correct", _solution())
    expected["correct"] = (FULL, "graded")
    put("untouched", nbformat.read(course.PARTS[0].exercise, as_version=4), nested=True)
    expected["untouched"] = (0, "graded")
    # An exception in one answer, a memory hog in another: each costs its own check's points.
    exception = _with("two_layer", "print('a lone surrogate: \\ud800')\nraise ValueError('oops \\udcff')")
    _cell(exception, "numpy_bridge").source = "hog = bytearray(64 * 2**30)"
    put("exception and memory hog", exception)
    expected["exception and memory hog"] = (FULL - 3, "graded")
    put("kernel death", _with("two_layer", "import os\nos._exit(1)"))
    expected["kernel death"] = (3, "graded")  # the three checks before it keep their points
    # A wrong answer, its check cell edited to pass.
    edited = _with("numpy_bridge", 'changes = {"A", "B"}')
    _cell(edited, "test_numpy_bridge").source = "print('all good, trust me')"
    put("edited test cell", edited)
    expected["edited test cell"] = (FULL - 1, "graded")
    put("invalid json", b'{"cells": [ this is not json')
    expected["invalid json"] = (0, "invalid")
    put("empty file", b"")
    expected["empty file"] = (0, "invalid")
    put("renamed", _solution(), name="my_tensors.ipynb")
    expected["renamed"] = (0, "missing")
    other = nbformat.read(course.PARTS[1].solution, as_version=4)
    put("another part", other)
    expected["another part"] = (0, "invalid")
    # The learner's own answer cell carries nbgrader's marker words (feedback must still be made), and starts
    # DataLoader worker processes (they need a short TMPDIR for their sockets).
    workers = (
        "from torch.utils.data import DataLoader, TensorDataset\n"
        "batches = list(DataLoader(TensorDataset(torch.arange(8.0)), batch_size=2, num_workers=2))\n"
        "print('workers gave', len(batches), 'batches')\n"
    )
    marker = f"# {'### BEGIN HIDDEN TESTS'}\n"
    # And hostile markup in outputs, and 50 MiB printed on one line: the feedback page stays safe and small.
    markup = (
        "from IPython.display import HTML, Javascript, display\n"
        'display(HTML(\'<b>bold</b><script>alert("SCRIPT")</script><img src=x onerror="alert(1)">\'))\n'
        "display(Javascript('alert(\"JAVASCRIPT\")'))\n"
        "print('x' * (50 * 2**20))\n"
    )
    # In the same notebook, a check cell pasted from Part 2, nbgrader metadata and all (it becomes the
    # learner's own cell), and that answer's check cell deleted (put back, judged on the learner's answers).
    marked = _with("numpy_bridge", marker + workers + markup + _answer("numpy_bridge"))
    marked.cells = [
        c for c in marked.cells if c.metadata.get("nbgrader", {}).get("grade_id") != "test_numpy_bridge"
    ]
    marked.cells.append(
        next(c for c in other.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "test_softmax")
    )
    put("markup, pasted and deleted cells", marked)
    expected["markup, pasted and deleted cells"] = (FULL, "graded")
    for learner, forged in exploits.forgeries().items():  # the exploit bank: nothing earns a point
        put(learner, forged)
        expected[learner] = (0, "graded")
    # A name with accents and spaces, harmless habits, and every request printed into the learner's own cells.
    put("Zoë Ångström", exploits.habits(exploits.LEAK_READER))
    expected["Zoë Ångström"] = (FULL, "graded")
    # The intake's edges (issue 32): what a learner's folder may hold, and names a person must see escaped.
    (root / "copier").mkdir()
    (root / "copier" / f"{PART}.ipynb").symlink_to(root / "correct" / f"{PART}.ipynb")  # a classmate's work
    expected["copier"] = (0, "invalid")
    (root / "leaker").mkdir()
    (root / "leaker" / f"{PART}.ipynb").symlink_to(out / "secret.key")  # made by the run, read by no one
    expected["leaker"] = (0, "invalid")
    (root / "solution thief").mkdir()
    (root / "solution thief" / PART).symlink_to(SOLUTION.parent)  # the instructor's own solution
    expected["solution thief"] = (0, "missing")
    put("submitted", _solution(), name=f"correct/{PART}/{PART}.ipynb")  # nbgrader's layout, planted
    expected["submitted"] = (0, "missing")
    put("Points Possible", _solution())  # a row of Canvas's file
    expected["Points Possible"] = (None, "refused")
    for renee in ("Ren\u00e9e", "Rene\u0301e"):  # one name to a person, two to the file system: both graded,
        put(renee, _solution())  # each shown by its bytes
        expected[ascii(renee)[1:-1]] = (FULL, "graded")
    wrong_type = json.loads(nbformat.writes(_solution()))
    wrong_type["cells"][0]["source"] = 42
    put("source of the wrong type", json.dumps(wrong_type).encode())
    expected["source of the wrong type"] = (0, "invalid")
    put("deeply nested", b"[" * 200_000 + b"]" * 200_000)
    expected["deeply nested"] = (0, "invalid")
    # A name a terminal obeys, a spreadsheet runs, not UTF-8 (a zip made on Windows), forging a summary line;
    # its notebook's checks with forged flags and points (reset from the source); below it a very deep tree.
    hostile = os.fsdecode(HOSTILE_NAME)
    forged = json.loads(nbformat.writes(_solution()))
    graded_cells = [c for c in forged["cells"] if c["metadata"].get("nbgrader", {}).get("grade")]
    graded_cells[0]["metadata"]["nbgrader"] = "not a dict"
    graded_cells[1]["metadata"]["nbgrader"].update(points=1000, grade=False, solution=True)
    put(hostile, json.dumps(forged).encode())
    deep = root / hostile
    for _ in range(60):
        deep = deep / "d"
    deep.mkdir(parents=True)
    expected[printable(hostile)] = (FULL, "graded")
    put("took hints", _took_hints())
    expected["took hints"] = (FULL - 2 * HINT_COST, "graded")
    if not SANDBOX:  # without the sandbox these would really reach the network and damage files
        return expected
    hogs = HOGS + (SPREAD_HOG if sandbox.confinement() else "") + FLOOD  # without cgroups: 6.4 GB taken
    put("resource hog", _with("numpy_bridge", hogs + _answer("numpy_bridge")))
    expected["resource hog"] = (None, "graded")  # whatever the OOM killer picks: the rest of the class counts
    # A detached process that outlives the kernel and rewrites every notebook it can find with ✓ lines (in the
    # vandal's notebook, below).
    forger = (
        "import subprocess, sys\n"
        "subprocess.Popen([sys.executable, '-c', " + repr(FORGER) + "], start_new_session=True,\n"
        "                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)\n"
    )
    snoop = SNOOP.format(repo=str(REPO), root=str(root), modules=repr(course.MODULES))
    put("snoop", _with("numpy_bridge", snoop + NETWORK + _answer("numpy_bridge")))
    expected["snoop"] = (FULL, "graded")
    targets = [
        out / "course" / "gradebook.db",
        root / "correct" / f"{PART}.ipynb",
        SOLUTION,
        REPO / "helper.py",
        out / "work",
    ]
    vandal = f"from pathlib import Path\nfor target in {[str(t) for t in targets]!r}:\n" + (
        "    try:\n"
        "        p = Path(target)\n"
        "        (p / 'x' if p.is_dir() else p).write_text('vandalised')\n"
        "        print('WROTE', target)\n"
        "    except Exception as error:\n"
        "        print('refused:', target, type(error).__name__)\n"
        'changes = {"A", "D", "F"}'
    )
    vandalised = _with("numpy_bridge", vandal)
    _cell(vandalised, "neuron_sum").source = forger + _answer("neuron_sum")
    put("vandal", vandalised)
    expected["vandal"] = (FULL, "graded")
    return expected


def _took_hints() -> nbformat.NotebookNode:
    """A learner's Part 1 as they saved it: Exercise 2 answered wrong (the bias added to every product), its
    check failed, two hints asked for (check.hint(), run in a real kernel: the outputs it leaves are what the
    grader counts), then the answer corrected. Graded, the answer passes, less two hints' cost."""
    from nbclient import NotebookClient

    nb = _solution()
    answer = _cell(nb, "neuron_sum")
    right = answer.source
    answer.source = "y = activation(torch.sum(features * weights + bias)).view(1, 1)"
    after = nb.cells.index(_cell(nb, "test_neuron_sum")) + 1
    nb.cells[after:after] = [nbformat.v4.new_code_cell("check.hint()") for _ in range(2)]
    NotebookClient(
        nb,
        timeout=120,
        kernel_name=course.KERNEL,
        allow_errors=True,
        resources={"metadata": {"path": str(SOLUTION.parent)}},
    ).execute()
    answer.source = right
    return nb


def _grade(
    root: Path, out: Path, cell_timeout: int, *options: str, memory_gb: int = 10, jobs: int = 2
) -> str:
    result = subprocess.run(
        [
            sys.executable,
            str(REPO / "grader" / "grade.py"),
            str(root),
            "--out",
            str(out),
            "--jobs",
            str(jobs),
            "--cell-timeout",
            str(cell_timeout),
            "--notebook-timeout",
            "900",
            "--memory-gb",
            str(memory_gb),
            *([] if SANDBOX else ["--no-sandbox"]),  # the grader fails closed without bubblewrap
            *options,
        ],
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout


def out_of(graded) -> Path:
    return graded[1]


def _rows(out: Path) -> dict[tuple[str, str], dict]:
    with open(out / "grades.csv", newline="") as f:
        return {(r["learner"], r["part"]): r for r in csv.DictReader(f)}


def _printed(path: Path) -> str:
    """What the cells of an executed notebook printed (not their source)."""
    nb = nbformat.read(path, as_version=4)
    return "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))


@pytest.fixture(scope="class")
def graded(tmp_path_factory):
    """The Part 1 corpus graded in one run, then a second run into the same output."""
    root = tmp_path_factory.mktemp("submissions")
    out = tmp_path_factory.mktemp("grades")
    expected = _build_corpus(root, out)
    protected = {
        p: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in [root / "correct" / f"{PART}.ipynb", SOLUTION, REPO / "helper.py"]
    }
    # The same limits in both runs (a change of limits regrades); 45 s per cell: a kernel's first imports take
    # 20 s on a loaded 2-core machine.
    hint_cost = ("--hint-cost", str(HINT_COST))  # the same in both runs: a change regrades every notebook
    summary = _grade(root, out, 45, *hint_cost, memory_gb=5)  # the spread hog goes over 5 GiB
    before = _rows(out)
    # A second run into the same output: a late learner, and an infinite loop (a short cell limit for it).
    (root / "late learner").mkdir()
    (root / "late learner" / f"{PART}.ipynb").write_bytes(SOLUTION.read_bytes())
    (root / "infinite loop").mkdir()
    loop = _with("numpy_bridge", "while True:\n    pass")
    (root / "infinite loop" / f"{PART}.ipynb").write_text(nbformat.writes(loop))
    expected["late learner"] = (FULL, "graded")
    expected["infinite loop"] = (FULL - 1, "graded")
    # A learner who left the course (their folder removed): out of the outputs, and said so.
    shutil.rmtree(root / "edited test cell")
    del expected["edited test cell"]
    # The correct learner's record as a run that lost its worker leaves it (the grader's failure, not a
    # grade): graded again.
    record = out / "records" / student_id("correct") / PART / "record.json"
    failed = {**json.loads(record.read_text()), "status": "error", "reason": "the worker was lost"}
    record.write_text(json.dumps(failed))
    # A report's option (it regrades nothing); one worker for the three notebooks to grade.
    second = _grade(root, out, 45, "--lms-checks", *hint_cost, memory_gb=5, jobs=1)
    yield root, out, expected, summary, protected, before, second
    for folder in (root, out):  # graded copies hold the checks' hidden tests: none left behind
        shutil.rmtree(folder, ignore_errors=True)


# The original course's style: no nn.Flatten in the network, the images flattened in the loop instead.
NO_FLATTEN = {
    "network": """
torch.manual_seed(7)
model = nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 128), nn.ReLU(),
                      nn.Linear(128, 64), nn.ReLU(), nn.Linear(64, 10), nn.LogSoftmax(dim=1))
""",
    "train": """
train_losses = []
torch.manual_seed(7)
criterion = nn.NLLLoss()
optimizer = optim.Adam(model.parameters(), lr=0.001)
for e in range(6):
    running_loss = 0
    for images, labels in trainloader:
        images = images.view(images.shape[0], -1)
        optimizer.zero_grad()
        loss = criterion(model(images), labels)
        loss.backward()
        optimizer.step()
        running_loss += loss.item()
    train_losses.append(running_loss / len(trainloader))
""",
    "predict": """
images, labels = next(iter(testloader))
model.eval()
with torch.inference_mode():
    ps = torch.exp(model(images.view(images.shape[0], -1)))
""",
}
# Part 6: a fresh model created and saved in place of the trained one (the round trip itself works).
UNTRAINED_SAVED = "model = helper.MLP(784, 10, [256, 128], drop_p=0.2)\n"


def _part(name: str, changes: dict[str, str]) -> nbformat.NotebookNode:
    nb = nbformat.read(course.part(name).solution, as_version=4)
    for grade_id, source in changes.items():
        _cell(nb, grade_id).source = source
    return nb


# Harmless habits of a complete learner: the console's tqdm (stderr) inside the functions the checks call, a
# warning while training; every notebook saved by a front end that writes no cell ids.
HABITS = {
    "05_inference_and_validation": (
        "validate",
        "    ### BEGIN SOLUTION\n",
        "    from tqdm import tqdm\n\n    loader = tqdm(loader, desc='validating')\n",
    ),
    "08_transfer_learning": (
        "extract_features",
        "    ### BEGIN SOLUTION\n",
        "    from tqdm import tqdm\n\n    print('features…', file=__import__('sys').stderr)\n",
    ),
    "03_training": (
        "training_loop",
        "### BEGIN SOLUTION\n",
        "import warnings\n\nwarnings.warn('training on a CPU: this takes a minute')\n",
    ),
}


def _with_habits(part: course.Part) -> nbformat.NotebookNode:
    """The solution as a learner who stops after the last exercise hands it in (what follows, predictions and
    extras, checks nothing), with the part's harmless habits, saved without cell ids."""
    nb = nbformat.read(part.solution, as_version=4)
    last = max(i for i, c in enumerate(nb.cells) if c.metadata.get("nbgrader", {}).get("grade"))
    nb.cells = nb.cells[: last + 1]
    if part.name in HABITS:
        grade_id, marker, habit = HABITS[part.name]
        cell = _cell(nb, grade_id)
        assert marker in cell.source
        cell.source = cell.source.replace(marker, marker + habit, 1)
    for cell in nb.cells:
        cell.pop("id", None)
    nb.nbformat_minor = 4
    return nb


EARLIER, LATER = course.PARTS[:4], course.PARTS[4:]  # two units of work, graded side by side


def _complete_set(tmp_path_factory, parts: tuple[course.Part, ...], style: dict[str, nbformat.NotebookNode]):
    """The complete learner's notebooks of `parts` (the solutions, with harmless habits, as another front end
    saves them) and an original-course-style learner's, graded."""
    root = tmp_path_factory.mktemp("complete-submissions")
    out = tmp_path_factory.mktemp("complete-grades")
    for part in parts:
        (root / "complete" / part.name).mkdir(parents=True)
        nbformat.write(_with_habits(part), root / "complete" / part.name / f"{part.name}.ipynb")
    (root / "original style").mkdir()
    for name, nb in style.items():
        nbformat.write(nb, root / "original style" / f"{name}.ipynb")
    _grade(root, out, cell_timeout=600)
    return root, out


@pytest.fixture(scope="class")
def complete(tmp_path_factory):
    """Parts 1–4, complete and in the original course's style (Part 4 without nn.Flatten); then graded again
    with one of Part 1's checks worth more in a copy of the sources."""
    root, out = _complete_set(
        tmp_path_factory, EARLIER, {"04_fashion_mnist": _part("04_fashion_mnist", NO_FLATTEN)}
    )
    first = _rows(out)
    # The instructor makes one of Part 1's checks worth 3 points, in a copy of the sources: the next run must
    # grade Part 1 again with it (and nothing else), although no submission changed.
    sources = tmp_path_factory.mktemp("sources")
    for part in course.PARTS:
        (sources / part.name).mkdir()
        shutil.copyfile(part.solution, sources / part.name / part.solution.name)
    heavier = nbformat.read(sources / PART / f"{PART}.ipynb", as_version=4)
    _cell(heavier, "test_numpy_bridge").metadata["nbgrader"]["points"] = 3
    nbformat.write(heavier, sources / PART / f"{PART}.ipynb")
    second = _grade(root, out, 600, "--source", str(sources), jobs=1)  # one notebook to grade
    yield out, first, second
    for folder in (root, out, sources):
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="class")
def complete_later(tmp_path_factory):
    """Parts 5–8, complete and in the original course's style (Part 6 saving an untrained model)."""
    checkpoint = _cell(_part("06_saving_and_loading", {}), "checkpoint").source
    saving = 'save_checkpoint(model, "'
    untrained = {"checkpoint": checkpoint.replace(saving, UNTRAINED_SAVED + saving)}
    assert untrained["checkpoint"] != checkpoint
    root, out = _complete_set(
        tmp_path_factory, LATER, {"06_saving_and_loading": _part("06_saving_and_loading", untrained)}
    )
    yield out, _rows(out)
    for folder in (root, out):
        shutil.rmtree(folder, ignore_errors=True)


def _full_marks(rows: dict, parts: tuple[course.Part, ...]) -> None:
    for part in parts:
        row = rows[("complete", part.name)]
        assert row["status"] == "graded" and float(row["score"]) == float(row["max_score"]) > 0, (part, row)


def _feedback_of(out: Path, parts: tuple[course.Part, ...]) -> None:
    pages = sorted((out / "feedback" / "complete").glob("*.html"))
    assert [page.stem for page in pages] == [part.name for part in parts]
    for page in pages:
        assert "HIDDEN TESTS" not in page.read_text() and "✓" in page.read_text(), page


# Three classes: three units of work for `make test`'s workers (--dist loadscope), graded side by side.
class TestACompleteSet:
    def test_the_complete_set_gets_full_marks_in_parts_1_to_4(self, complete):
        _full_marks(complete[1], EARLIER)

    def test_its_feedback_shows_the_verdicts(self, complete):
        _feedback_of(complete[0], EARLIER)

    def test_a_missing_flatten_costs_only_the_network_check(self, complete):
        _, rows, _ = complete
        row = rows[("original style", "04_fashion_mnist")]
        assert (row["status"], float(row["score"]), float(row["max_score"])) == ("graded", 6, 8), row

    def test_a_check_worth_more_regrades_its_part_and_nothing_else(self, complete):
        out, first, second = complete
        assert "this run executed 1 notebook(s)" in second, second
        after = _rows(out)
        row = after[("complete", PART)]
        assert (float(row["score"]), float(row["max_score"])) == (FULL + 2, FULL + 2), row
        changed = {key for key in first if first[key]["score"] != after[key]["score"]}
        assert changed == {("complete", PART), ("complete", "TOTAL")}, changed
        assert {after[key]["max_score"] for key in after if key[1] == PART} == {f"{FULL + 2:g}"}


class TestACompleteSetOfTheLaterParts:
    def test_the_complete_set_gets_full_marks_in_parts_5_to_8(self, complete_later):
        _full_marks(complete_later[1], LATER)

    def test_its_feedback_shows_the_verdicts(self, complete_later):
        _feedback_of(complete_later[0], LATER)

    def test_an_untrained_model_saved_fails_the_round_trip(self, complete_later):
        _, rows = complete_later
        row = rows[("original style", "06_saving_and_loading")]
        assert (row["status"], float(row["score"]), float(row["max_score"])) == ("graded", 3, 6), row


class TestAClassOfBadSubmissions:
    def test_every_learner_gets_the_score_their_working_cells_earn(self, graded):
        _, out, expected, *_ = graded
        rows = _rows(out)
        wrong = {}
        for learner, (score, status) in expected.items():
            if status == "refused":  # not graded at all: in no row, named in the summary
                assert not any(name == csv_cell(learner) for name, _ in rows), learner
                continue
            row = rows[(csv_cell(learner), PART)]
            if score is not None and (float(row["score"]) != score or row["status"] != status):
                wrong[learner] = (
                    f"got {row['score']} ({row['status']}: {row['reason']}), expected {score} ({status})"
                )
        assert not wrong, wrong

    def test_bad_cases_are_named_in_the_summary(self, graded):
        _, out, _, summary, *_ = graded
        assert "not a notebook: not JSON" in summary and "not a valid notebook" in summary
        assert "my_tensors.ipynb" in summary, "the renamed notebook is not reported"
        if SANDBOX:
            assert "sandbox: on" in summary and "network: off" in summary
        else:
            assert "sandbox: OFF" in summary
        assert "Protections" in (out / "summary.txt").read_text()
        assert "this is Part 2 (02_neural_networks), expected Part 1 (01_tensors.ipynb)" in summary
        assert "the kernel died in cell" in summary

    def test_the_intake_took_in_no_link_no_forged_name_and_every_output_is_safe_to_read(self, graded):
        out = out_of(graded)
        text = (out / "summary.txt").read_text()
        for line in (
            "Layout: a folder per learner. A learner's folder is named 'submitted'",
            "Folders not graded: 1",
        ):
            assert line in text, line
        assert "'Points Possible' is a name the LMS files keep" in text
        assert (
            "Folders whose names look alike, graded, each shown by its bytes" in text
            and "Rene\\u0301e" in text
        )
        assert f"{PART}.ipynb is a symbolic link: hand in the notebook itself" in text
        assert "a symbolic link, not followed" in text and "deeper than 8 folders" in text
        assert f"correct/{PART}/{PART}.ipynb: a notebook named like no part" in text
        secret = (out / "secret.key").read_text().strip()
        outputs = [
            out / "summary.txt",
            out / "grades.csv",
            out / "lms" / "canvas.csv",
            out / "lms" / "moodle.csv",
        ]
        for path in outputs:
            written = path.read_text()
            assert secret not in written and secret[:16] not in written, path
            assert not any(c in written for c in "\x1b\x07\r"), path
            assert not any(line.startswith("Graded 0") for line in written.splitlines()), path
        for path in outputs[1:]:
            with open(path, newline="") as f:
                cells = [cell for row in csv.reader(f) for cell in row]
            assert not [c for c in cells if c[:1] in ("=", "+", "-", "@", "\t", "\r")], path
        with open(out / "lms" / "canvas.csv", newline="") as f:
            assert [row[0] for row in csv.reader(f)].count("Points Possible") == 1
        assert (out / "feedback" / printable(os.fsdecode(HOSTILE_NAME)) / f"{PART}.html").exists()
        for learner in ("copier", "leaker", "solution thief", "submitted"):
            assert not (out / "feedback" / learner).exists(), (
                learner
            )  # nothing of anyone's was graded as theirs

    @pytest.mark.skipif(not SANDBOX, reason="bubblewrap is not installed: `make sandbox`")
    def test_the_sandbox_held(self, graded):
        _, out, _, _, protected, *_ = graded
        for path, digest in protected.items():
            assert hashlib.sha256(path.read_bytes()).hexdigest() == digest, (
                f"{path} was changed by a submission"
            )
        vandal = student_id("vandal")
        printed = _printed(out / "course" / "autograded" / vandal / PART / f"{PART}.ipynb")
        assert "WROTE" not in printed and printed.count("refused:") == 5, printed
        snoop = student_id("snoop")
        printed = _printed(out / "course" / "autograded" / snoop / PART / f"{PART}.ipynb")
        assert "network blocked" in printed and "NETWORK REACHED" not in printed, printed
        assert "FOUND" not in printed and "ESCAPED" not in printed, printed
        assert printed.count("refused ") == 4 and "tmp holds ['pytorch-grade-" in printed, printed
        assert not (REPO / "escaped").exists()

    @pytest.mark.skipif(not SANDBOX, reason="bubblewrap is not installed: `make sandbox`")
    def test_the_limits_contain_a_print_flood_a_shm_filler_and_a_spread_memory_hog(self, graded):
        _, out, _, summary, *_ = graded
        record = json.loads((out / "records" / student_id("resource hog") / PART / "record.json").read_text())
        assert record["status"] == "graded", record
        assert record["grading_process_mb"] < 250, record  # 256 MB printed through it (alone: 100-130 MB)
        page = (out / "feedback" / "resource hog" / f"{PART}.html").read_text()
        if "kernel died" not in record["reason"]:  # the OOM killer may take the kernel before its flood
            assert "output is over 8 MB; the rest of it was dropped as it came" in page, "no note of the cut"
        assert len(page.encode()) < 1_000_000 + DRAWINGS  # the flood's shown part, cut
        printed = _printed(
            out / "course" / "autograded" / student_id("resource hog") / PART / f"{PART}.ipynb"
        )
        assert "SHM 1024 MiB: dd: error writing '/dev/shm/fill': No space left on device" in printed, printed
        if sandbox.confinement():
            assert "for the whole sandbox" in summary
            # how many hogs the OOM killer took depends on how many held their memory at once (the machine's
            # load): the kernel either died of it or went on to say so
            ran = any(line.startswith("HOGS KILLED") for line in printed.splitlines())
            assert "kernel died" in record["reason"] or ran, record["reason"]

    @pytest.mark.skipif(not SANDBOX, reason="bubblewrap is not installed: `make sandbox`")
    def test_a_daemon_cannot_forge_its_outputs(self, graded):
        _, out, *_ = graded
        forger = student_id("vandal")
        printed = _printed(out / "course" / "autograded" / forger / PART / f"{PART}.ipynb")
        assert "forged" not in printed, printed

    def test_timed_out_cells_and_feedback_failures_are_reported(self, graded):
        _, out, _, _, _, _, second = graded
        assert "Cells stopped at the time limit: 1" in second, second
        page = (out / "feedback" / "infinite loop" / f"{PART}.html").read_text()
        assert "ran longer than the limit of 45 s" in page
        assert (out / "feedback" / "markup, pasted and deleted cells" / f"{PART}.html").exists()

    def test_feedback_is_safe_to_open(self, graded):
        _, out, *_ = graded
        page = (out / "feedback" / "markup, pasted and deleted cells" / f"{PART}.html").read_text()
        assert len(page.encode()) < 1_000_000 + DRAWINGS, len(page.encode())
        assert "truncated by the grader" in page
        # the learner's source is shown escaped; what must not survive is live markup in the outputs
        for unsafe in (
            '<script>alert("SCRIPT")',
            '<img src="x" onerror',
            "<img src=x onerror",
            'alert("JAVASCRIPT")</script',
        ):
            assert unsafe not in page, unsafe
        assert "<b>bold</b>" in page  # harmless markup stays

    def test_feedback_reveals_no_hidden_test(self, graded):
        _, out, *_ = graded
        pages = list((out / "feedback").rglob("*.html"))
        assert len(pages) >= 10
        assert (out / "feedback" / "Zoë Ångström" / f"{PART}.html").exists()
        for page in pages:
            assert "HIDDEN TESTS" not in page.read_text(), page
        untouched = (out / "feedback" / "untouched" / f"{PART}.html").read_text()
        assert "BEGIN SOLUTION" not in untouched, "the instructor's solution leaked into feedback"
        assert "your answer cell raised NotImplementedError" in untouched
        assert "replace raise NotImplementedError() with your answer" in untouched

    def test_no_hidden_reference_value_is_shown_anywhere(self, graded):
        """The checks' reference values on the grader's hidden inputs (recomputed here from the run's secret)
        appear in no feedback page, grades.csv or summary.txt: not in the judges' messages (4 decimals, as a
        message would show them), nowhere at all in full precision; although the leak reader printed every
        request it received into its own feedback."""
        from checks import part1
        from grader.verdicts import seed

        secret = (out_of(graded) / "secret.key").read_text().strip()
        references = []
        for check, compute in [
            (part1.neuron_sum, lambda i: torch.sigmoid((i["features"] * i["weights"]).sum() + i["bias"])),
            (part1.neuron_mm, lambda i: torch.sigmoid(i["features"] @ i["weights"].T + i["bias"])),
            (
                part1.two_layer,
                lambda i: torch.sigmoid(torch.sigmoid(i["features"] @ i["W1"] + i["B1"]) @ i["W2"] + i["B2"]),
            ),
        ]:
            inputs = check.hidden(torch.Generator().manual_seed(seed(secret, PART, check.grade_id))).all()
            references.append(compute(inputs).item())
        out = out_of(graded)
        texts = [p.read_text() for p in (out / "feedback").rglob("*.html")]
        texts += [(out / "grades.csv").read_text(), (out / "summary.txt").read_text()]
        leaked = (out / "feedback" / "Zoë Ångström" / f"{PART}.html").read_text()
        assert "LEAKED" in leaked and "HISTORY" in leaked, "the leak reader printed nothing"
        for value in references:
            for text in texts:
                assert f"{value:.6f}"[:8] not in text, value
                assert f"expected [{value:.4f}" not in text and f"expected [{round(value, 4)}" not in text

    def test_grades_the_summary_and_the_class_report_agree_on_every_check(self, graded):
        """grades.csv's score of each learner is the sum of the points of the checks whose verdict passed in
        their graded notebook, and the class report counts exactly those verdicts."""
        out = out_of(graded)
        source = nbformat.read(SOLUTION, as_version=4)
        points = {
            c.metadata["nbgrader"]["grade_id"]: c.metadata["nbgrader"]["points"]
            for c in source.cells
            if c.metadata.get("nbgrader", {}).get("grade") and not c.metadata["nbgrader"].get("solution")
        }
        rows, counts = _rows(out), {grade_id: [0, 0, 0, 0] for grade_id in points}
        for (learner, part), row in rows.items():
            if part != PART:
                continue
            executed = out / "course" / "autograded" / row["student_id"] / PART / f"{PART}.ipynb"
            if row["status"] in ("missing", "invalid"):  # the report counts it as not handed in
                for tally in counts.values():
                    tally[3] += 1
                continue
            assert row["status"] == "graded" and executed.exists(), row
            nb = nbformat.read(executed, as_version=4)
            earned = 0
            for cell in nb.cells:
                grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
                if grade_id not in points:
                    continue
                kinds = [o.output_type for o in cell.outputs]
                passed = kinds[:1] == ["stream"] and cell.outputs[0].text.startswith("✓")
                charged = kinds == ["stream", "execute_result"]  # what is left after the hints' cost
                assert (passed and kinds == ["stream"]) or (passed and charged) or kinds == ["error"], (
                    learner,
                    grade_id,
                    cell.outputs,
                )  # a verdict, and only that
                left = float(cell.outputs[1].data["text/plain"]) if charged else points[grade_id]
                earned += left if passed else 0
                never = not passed and cell.outputs[0].ename == "CheckNotRun"
                counts[grade_id][0 if passed else 2 if never else 1] += 1
            assert float(row["score"]) == earned, (learner, row, earned)
        summary = (out / "summary.txt").read_text()
        for grade_id, (passed, failed, never, absent) in counts.items():
            assert f"P1 {grade_id}" in summary
            line = next(line for line in summary.splitlines() if line.strip().startswith(f"P1 {grade_id} "))
            expected = [str(passed), "/", str(failed), "/", str(never), "/", str(absent)]
            assert line.split()[2:9] == expected, line

    def test_hints_taken_are_counted_and_charged_and_misconceptions_ranked(self, graded):
        """The learner who took two hints (in a real kernel) and then answered right: grades.csv says 2 hints
        used, the check's points less 2 × --hint-cost, its ✓ line says so (nbgrader scored the partial credit
        the grader wrote, its gradebook agrees); nobody else used any. The class report ranks the
        misconceptions the judges recognised, with what to teach again."""
        from nbgrader.api import Gradebook

        _, out, _, summary, *_ = graded
        rows = _rows(out)
        took = rows[("took hints", PART)]
        assert (took["hints_used"], float(took["score"])) == ("2", FULL - 2 * HINT_COST), took
        assert rows[("took hints", "TOTAL")]["hints_used"] == "2"
        others = {
            k: r["hints_used"] for k, r in rows.items() if k[0] != "took hints" and r["hints_used"] != "0"
        }
        assert not others, others
        executed = out / "course" / "autograded" / took["student_id"] / PART / f"{PART}.ipynb"
        check = _cell(nbformat.read(executed, as_version=4), "test_neuron_sum")
        assert "2 hints taken: 0.5 of its 1 points" in check.outputs[0].text, check.outputs
        with Gradebook(f"sqlite:///{out / 'course' / 'gradebook.db'}", course.COURSE_ID) as gb:
            grade = gb.find_grade("test_neuron_sum", PART, PART, took["student_id"])
            assert grade.auto_score == 1 - 2 * HINT_COST, grade.auto_score
        assert "Misconceptions the checks recognised, the most learners first" in summary
        edited = "P1 test_numpy_bridge · torch.tensor taken to share the array's memory → Part 1, section"
        assert edited in summary, summary[-3000:]  # the learner who edited the check cell: changes = {A, B}

    def test_a_second_run_grades_only_newcomers_and_failures_and_loses_nothing(self, graded):
        _, out, _, _, _, before, second = graded
        assert "this run executed 3 notebook(s)" in second, second  # the newcomers and the lost one
        after = _rows(out)
        assert after[("late learner", PART)]["score"] == f"{FULL:g}"
        assert after[("correct", PART)]["status"] == "graded"
        assert {k: v for k, v in after.items() if k in before} == {
            k: v for k, v in before.items() if k[0] != "edited test cell"
        }

    def test_a_learner_who_left_is_out_of_every_output_and_named(self, graded):
        _, out, _, _, _, before, second = graded
        from nbgrader.api import Gradebook, MissingEntry

        gone = "edited test cell"
        assert before[(gone, PART)]["status"] == "graded" and not any(k[0] == gone for k in _rows(out))
        assert "Left out, no longer in the submissions" in second and gone in second
        for lms in ("canvas.csv", "moodle.csv", "canvas_checks.csv", "moodle_checks.csv"):
            assert gone not in (out / "lms" / lms).read_text()
        canvas, checks = {}, {}
        for name, table in (
            ("canvas.csv", canvas),
            ("canvas_checks.csv", checks),
        ):  # --lms-checks: a file apart
            with open(out / "lms" / name, newline="") as f:
                table |= {row["Student"]: row for row in csv.DictReader(f)}
        points = [checks["Points Possible"][f"Part 1: {g}"] for g in ("test_neuron_sum", "test_two_layer")]
        assert points == ["1", "2"], points
        assert not any(key.startswith("Part 1: test_") for key in canvas["Points Possible"])
        # its kernel died in two_layer: the checks before it count
        before_two_layer = list(checks_points(PART))[: list(checks_points(PART)).index("test_two_layer")]
        died = sum(checks_points(PART)[check] for check in before_two_layer)
        assert canvas["kernel death"]["Part 1: Tensors"] == f"{died:g}"
        assert canvas["correct"]["Part 1: Tensors"] == f"{FULL:g}"
        assert checks["kernel death"]["Part 1: test_two_layer"] == "0"
        assert checks["kernel death"]["Part 1: test_neuron_sum"] == "1"
        assert not (out / "feedback" / gone).exists() and not (out / "logs" / gone).exists()
        with Gradebook(f"sqlite:///{out / 'course' / 'gradebook.db'}", course.COURSE_ID) as gb:
            assert gb.find_submission(PART, student_id("correct")).score == FULL
            with pytest.raises(MissingEntry):
                gb.find_submission(PART, student_id(gone))
