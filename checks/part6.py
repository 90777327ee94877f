"""Part 6 — Saving and loading: the checks of ``06_saving_and_loading.ipynb``.

The learner's ``save_checkpoint`` and ``load_checkpoint`` take a model of the check's own (at grading: sizes
and weights drawn by the grader) through a file and back; the judge rebuilds ``helper.MLP`` itself from what
came back and compares its outputs with the original's. The checkpoint saved by the notebook is rebuilt the
same way and measured on the test images by the judge. ``load_checkpoint`` of two files that are not
checkpoints (a bare state_dict, and a pickle that would run code of the check's) must raise a ValueError that
names the file, and must not run the pickle's code (``weights_only=True``).
"""

from __future__ import annotations

from itertools import pairwise

import torch

from checks import data
from checks.core import (
    Check,
    Inputs,
    Misconception,
    attempt,
    expect_close,
    fail,
    hidden,
    kind,
    lookup,
    need,
    notebook_device,
    state_of,
    value,
)
from checks.kernel import hint as hint  # check.hint(): the next hint after a failed check
from checks.wire import Raised

# ------------------------------------------------------------------------------------------ misconceptions
_CHECKPOINTS = "Checkpoints"
_SAVE_SKELETON = (
    "def save_checkpoint(model, path):\n    torch.save({'sizes': ..., 'drop_p': model.drop_p, "
    "'state_dict': model.state_dict()}, path)"
)
_LOAD_SKELETON = (
    "checkpoint = torch.load(path, weights_only=True, map_location='cpu')\n"
    "model = helper.MLP(784, 10, checkpoint[...], checkpoint[...])\nmodel.load_state_dict(checkpoint[...])"
)
ONLY_WEIGHTS = Misconception(
    "weights-enough-to-rebuild",
    "the weights taken to be enough to rebuild the model",
    6,
    _CHECKPOINTS,
    "A state_dict holds tensors only: nothing in it says which architecture to build (the hidden layers' "
    "sizes, drop_p). A checkpoint stores those too.",
    _SAVE_SKELETON,
    "checkpoint",
)
PICKLED_MODEL = Misconception(
    "model-object-saved",
    "the model object saved whole, which weights_only=True refuses to load",
    6,
    _CHECKPOINTS,
    "torch.save(model) pickles the object, class and all; torch.load(..., weights_only=True) reads only "
    "plain data. Save the sizes and the state_dict.",
    _SAVE_SKELETON,
    "checkpoint",
)
SIZES_NOT_STORED = Misconception(
    "sizes-written-into-the-loader",
    "the layer sizes written into load_checkpoint instead of read from the file",
    6,
    _CHECKPOINTS,
    "load_checkpoint must rebuild any model that was saved: its sizes come from the checkpoint, not from the "
    "code.",
    _LOAD_SKELETON,
    "checkpoint",
)
DROP_P_NOT_STORED = Misconception(
    "drop-p-not-stored",
    "drop_p taken to be no part of the architecture, since it has no weights",
    6,
    _CHECKPOINTS,
    "Dropout has no weights, but its p is one of the arguments that built the model: a model rebuilt "
    "without it gets helper.MLP's default, and trains differently when training resumes.",
    _SAVE_SKELETON,
    "checkpoint",
)
WEIGHTS_NOT_LOADED = Misconception(
    "weights-not-loaded",
    "a rebuilt model taken to hold the saved weights",
    6,
    _CHECKPOINTS,
    "helper.MLP(...) makes a model with new random weights; model.load_state_dict(the saved state_dict) puts "
    "the trained ones in.",
    _LOAD_SKELETON,
    "state-dict",
)
ANOTHER_MODEL_SAVED = Misconception(
    "another-model-saved",
    "a model other than the trained one saved or restored",
    6,
    "A trained model to keep",
    "The point of saving is to keep the trained `model`: save that one, and restore from the file it was "
    "saved to.",
    "save_checkpoint(model, 'checkpoint.pth')\nrestored = load_checkpoint('checkpoint.pth')",
    "checkpoint",
)
RAW_LOAD_ERRORS = Misconception(
    "load-errors-left-raw",
    "the errors of loading a file that is not a checkpoint taken for clear errors",
    6,
    _CHECKPOINTS,
    "For a file that is not a checkpoint, torch.load and load_state_dict raise UnpicklingError, KeyError or "
    "RuntimeError. None of them says 'this is not a checkpoint': catch them and raise a ValueError that "
    "names the file.",
    "try:\n    ...\nexcept Exception as error:\n    raise ValueError(f'{path} is not a valid checkpoint') "
    "from error",
    "checkpoint",
)
ERROR_NOT_RAISED = Misconception(
    "error-printed-not-raised",
    "an error printed and None returned, taken for an error raised",
    6,
    _CHECKPOINTS,
    "A function that prints and returns None leaves its caller with no model and no exception to catch: "
    "the failure shows up later, somewhere else. raise stops the caller where the problem is.",
    "except Exception as error:\n    raise ValueError(f'{path} is not a valid checkpoint') from error",
    "checkpoint",
)
ERROR_OF_ANOTHER_TYPE = Misconception(
    "error-of-another-type",
    "a clear error of another type than the ValueError asked for",
    6,
    _CHECKPOINTS,
    "Callers catch errors by type: `except ValueError` is how they handle a bad file. A RuntimeError or a "
    "plain Exception with the same message slips past it.",
    "raise ValueError(f'{path} is not a valid checkpoint') from error",
    "checkpoint",
)
PICKLE_LOADED = Misconception(
    "pickles-loaded",
    "a file loaded with weights_only=False, which runs the code a pickle holds",
    6,
    _CHECKPOINTS,
    "torch.load(path, weights_only=False) unpickles any object, and unpickling can run code hidden in the "
    "file. weights_only=True reads plain data only and refuses the rest.",
    "checkpoint = torch.load(path, weights_only=True, map_location='cpu')",
    "checkpoint",
)
_RESUMING = "Resuming training"
OPTIMIZER_NOT_RESTORED = Misconception(
    "optimizer-not-restored",
    "the weights taken for the whole training state",
    6,
    _RESUMING,
    "Adam keeps running averages for every weight; a fresh optimizer starts them from zero, so the run does "
    "not go on as it would have. Save optimizer.state_dict() and load it into the optimizer you are given.",
    "torch.save({'model': model.state_dict(), 'optimizer': optimizer.state_dict(), 'epoch': epoch}, path)\n"
    "...\noptimizer.load_state_dict(state[...])",
    "checkpoint",
)
EPOCH_NOT_RETURNED = Misconception(
    "epoch-not-returned",
    "a resumed run taken to know where it stopped",
    6,
    _RESUMING,
    "The loop that resumes needs the epoch to start from: save it with the state and return it.",
    "return state[...]  # the saved epoch",
    "epoch",
)


MAX_PARAMETERS = 4_000_000  # of a model the judge rebuilds (the notebook's has 235,146)


def _mlp(config: object) -> object:
    """``helper.MLP`` rebuilt on the judge's side from sizes and weights the kernel sent (checked first: a
    model of at most MAX_PARAMETERS, whose state_dict must fit it)."""
    import helper

    need(isinstance(config, dict), f"expected a helper.MLP, got {kind(config)}")
    layers, drop_p = config.get("hidden_layers"), config.get("drop_p")
    need(
        isinstance(layers, list)
        and 0 < len(layers) <= 8
        and all(isinstance(n, int) and not isinstance(n, bool) and 0 < n <= 4096 for n in layers),
        f"hidden_layers should be a short list of layer sizes, got {layers!r}"[:300],
    )
    sizes = [784, *layers, 10]
    parameters = sum((n_in + 1) * n_out for n_in, n_out in pairwise(sizes))
    need(
        parameters <= MAX_PARAMETERS,
        f"hidden_layers={layers} makes {parameters:,} parameters, more than this check rebuilds "
        f"({MAX_PARAMETERS:,})",
    )
    need(
        isinstance(drop_p, float | int) and 0 <= drop_p < 1, f"drop_p should be a probability, got {drop_p!r}"
    )
    need(
        (config.get("input_size"), config.get("output_size")) == (784, 10),
        "the model should be helper.MLP(784, 10, ...)",
    )
    weights = config.get("state")
    need(isinstance(weights, dict), f"its state_dict did not come back: {kind(weights)}")
    model = helper.MLP(784, 10, layers, float(drop_p))
    result = attempt(model.load_state_dict, weights)
    if isinstance(result, Raised):
        fail(f"its state_dict does not fit helper.MLP(784, 10, {layers}): {result.message[:300]}")
    return model.eval()


def _config(model: object) -> object:
    """In the kernel: what makes a helper.MLP, as data."""
    if isinstance(model, Raised):
        return model
    import helper

    return {
        "is MLP": isinstance(model, helper.MLP),
        "type": type(model).__name__,
        **{k: getattr(model, k, None) for k in ("input_size", "output_size", "hidden_layers", "drop_p")},
        "state": state_of(model),
    }


# ------------------------------------------------------------------------------------------ round trip
def _round_trip_inputs(g: torch.Generator | None) -> Inputs:
    import helper

    if g is None:
        layers, drop_p, seed = [64, 32], 0.3, 3
    else:
        layers = [int(torch.randint(16, 97, (1,), generator=g)), int(torch.randint(8, 49, (1,), generator=g))]
        drop_p, seed = (
            round(float(torch.rand(1, generator=g)) * 0.5, 2),
            int(torch.randint(0, 2**31, (1,), generator=g)),
        )
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        original = helper.MLP(784, 10, layers, drop_p=drop_p)
        for parameter in original.parameters():  # weights that differ from any fresh initialisation
            parameter.data.add_(0.05)
    pixels, labels = data.mnist(train=False, fashion=True)
    if g is not None:
        pixels, labels = data.perturbed(pixels, labels, g)
    return Inputs(
        {"layers": layers, "drop_p": drop_p, "state": state_of(original), "pixels": pixels},
        {"labels": labels},
    )


def _ask_round_trip(ns: dict, sent: dict) -> dict:
    import tempfile
    from pathlib import Path

    import helper

    save, load = lookup(ns, "save_checkpoint"), lookup(ns, "load_checkpoint")
    if isinstance(save, Raised) or isinstance(load, Raised):
        return {"$problem": save if isinstance(save, Raised) else load}
    original = helper.MLP(784, 10, sent["layers"], drop_p=sent["drop_p"])
    original.load_state_dict(sent["state"])
    answers: dict = {}
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "round_trip.pth"
        saved = attempt(save, original, path)
        if isinstance(saved, Raised):
            return {"$problem": Raised(f"save_checkpoint raised {saved.message}")}
        checkpoint = attempt(torch.load, path, weights_only=True)
        answers["file"] = (
            checkpoint
            if isinstance(checkpoint, Raised)
            else {
                "kind": kind(checkpoint),
                "only tensors": isinstance(checkpoint, dict)
                and bool(checkpoint)
                and all(isinstance(v, torch.Tensor) for v in checkpoint.values()),
            }
        )
        answers["rebuilt"] = _config(attempt(load, path))
    answers["restored"] = _config(lookup(ns, "restored"))
    answers["model"] = _config(lookup(ns, "model"))
    restored = lookup(ns, "restored")
    answers["restored scores"] = data.scores(restored, sent["pixels"]) if callable(restored) else restored
    return answers


def _scores(model: object, pixels: torch.Tensor) -> torch.Tensor:
    """A rebuilt model's scores for MNIST-like pixels, normalised as the course's loaders do, in batches."""
    with torch.no_grad():
        return torch.cat(
            [
                model(pixels[start : start + data.BATCH].float().div(255).sub(0.5).div(0.5).unsqueeze(1))
                for start in range(0, len(pixels), data.BATCH)
            ]
        )


def _judge_round_trip(i: dict, a: dict) -> str:
    file = a.get("file", Raised("no answer came back for it"))
    if isinstance(file, Raised):
        fail(
            f"the file save_checkpoint wrote does not load with torch.load(path, weights_only=True): "
            f"{file.message[:300]} — save plain data (the sizes and the state_dict), not the model object "
            "itself",
            PICKLED_MODEL,
        )
    need(isinstance(file, dict) and "only tensors" in file, f"what the file holds: got {kind(file)}")
    only_weights = (
        " — the file holds only the state_dict (its tensors): the layer sizes and drop_p are not in it, so "
        "nothing can rebuild the model; store them too"
        if file["only tensors"]
        else ""
    )
    rebuilt = a.get("rebuilt", Raised("no answer came back for it"))
    need(isinstance(rebuilt, Raised | dict), f"load_checkpoint(path): expected a model, got {kind(rebuilt)}")
    if isinstance(rebuilt, Raised) or isinstance(rebuilt.get("state"), Raised):
        raised = rebuilt if isinstance(rebuilt, Raised) else rebuilt["state"]
        shown = (
            ONLY_WEIGHTS
            if file["only tensors"]
            else SIZES_NOT_STORED
            if "size mismatch" in raised.message
            else None
        )
        fail(f"load_checkpoint(path) raised {raised.message[:500]}{only_weights}", shown)
    need(rebuilt["is MLP"], f"load_checkpoint should return a helper.MLP, got {rebuilt['type']}")
    need(
        rebuilt["hidden_layers"] != i["layers"] or rebuilt["drop_p"] == i["drop_p"] or file["only tensors"],
        f"rebuilt with drop_p={rebuilt['drop_p']}"
        + ("" if hidden() else f"; the saved model has drop_p={i['drop_p']}")
        + " — store drop_p in the checkpoint too, and pass it to helper.MLP (else it takes its default)",
        DROP_P_NOT_STORED,
    )
    need(
        rebuilt["hidden_layers"] == i["layers"] and rebuilt["drop_p"] == i["drop_p"],
        f"rebuilt with hidden_layers={rebuilt['hidden_layers']}, drop_p={rebuilt['drop_p']}; expected the "
        "saved model's sizes — store them in the checkpoint and build the model from them" + only_weights,
        ONLY_WEIGHTS if file["only tensors"] else SIZES_NOT_STORED,
    )
    images = i["pixels"][:64].float().div(255).sub(0.5).div(0.5).unsqueeze(1)
    original = _mlp(
        {
            "input_size": 784,
            "output_size": 10,
            "hidden_layers": i["layers"],
            "drop_p": i["drop_p"],
            "state": i["state"],
        }
    )
    with torch.no_grad():
        hint = "load the saved state_dict into the rebuilt model"
        # the sizes are the saved model's by now: outputs that differ are of weights not loaded
        label = "the reloaded model's outputs"
        shown = WEIGHTS_NOT_LOADED
        expect_close(
            _mlp(rebuilt)(images), original(images), label, atol=1e-6, hint=hint, misconception=shown
        )
    restored, model = value(a, "restored"), value(a, "model")
    need(
        isinstance(restored, dict) and restored.get("is MLP"),
        "restored should be the helper.MLP that load_checkpoint('checkpoint.pth') returned",
    )
    with torch.no_grad():
        hint = "save the trained model, then load it back"
        expect_close(
            _mlp(restored)(images),
            _mlp(model)(images),
            "restored (from checkpoint.pth) outputs",
            atol=1e-6,
            hint=hint,
            misconception=ANOTHER_MODEL_SAVED,
        )
    restored_accuracy = data.accuracy(_scores(_mlp(restored), i["pixels"]), i["labels"])
    need(
        restored_accuracy >= 0.75,
        f"restored (from checkpoint.pth) classifies {restored_accuracy:.1%} of the test images, less than "
        "the 75% expected of the trained model — save the trained `model` of this notebook, not a new one",
        ANOTHER_MODEL_SAVED,
    )
    return f"save → load round trip (restored: {restored_accuracy:.1%} test accuracy)"


round_trip = Check(
    "test_round_trip",
    after="checkpoint",
    judge=_judge_round_trip,
    ask=_ask_round_trip,
    given=lambda ns: _round_trip_inputs(None),
    hidden=_round_trip_inputs,
)


# ------------------------------------------------------------------------------------------ bad files
_TRIPPED: list[str] = []  # in the kernel: what the check's pickle ran when a loader unpickled it


def _tripwire() -> dict:
    """What the check's pickle runs when unpickled (a stranger's could run anything): it only records."""
    _TRIPPED.append("ran")
    return {}


class _Pickled:
    """An object whose pickle calls :func:`_tripwire` when loaded; ``weights_only=True`` refuses it."""

    def __reduce__(self) -> tuple:
        return (_tripwire, ())


def _bad_inputs(g: torch.Generator | None) -> Inputs:
    tag = "" if g is None else f"-{int(torch.randint(0, 16**6, (1,), generator=g)):06x}"
    return Inputs({"names": {kind: f"{kind}{tag}.pth" for kind in ("state_dict", "pickle")}})


def _ask_bad(ns: dict, sent: dict) -> dict:
    import tempfile
    from pathlib import Path

    import helper

    load = lookup(ns, "load_checkpoint")
    if isinstance(load, Raised):
        return {"$problem": load}
    names = sent["names"]

    def outcome(path: Path) -> list:
        try:
            load(path)
        except Exception as error:
            return [type(error).__name__, [c.__name__ for c in type(error).__mro__], str(error)[:500]]
        return ["", [], ""]

    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        torch.save(helper.MLP(784, 10, [8]).state_dict(), folder / names["state_dict"])
        torch.save(_Pickled(), folder / names["pickle"])
        _TRIPPED.clear()
        answers = {kind: outcome(folder / name) for kind, name in names.items()}
        answers["pickle's code ran"] = bool(_TRIPPED)
        return answers


def _outcome(a: dict, label: str) -> tuple[str, list[str], str]:
    """What load_checkpoint of the ``label`` file raised: its type's name, its classes' names, its message."""
    got = value(a, label)
    need(
        isinstance(got, list)
        and len(got) == 3
        and isinstance(got[0], str)
        and isinstance(got[1], list)
        and all(isinstance(c, str) for c in got[1])
        and isinstance(got[2], str),
        f"load_checkpoint of a {label} file: the check could not tell what it raised (got {kind(got)})",
    )
    return got[0], got[1], got[2]


def _judge_bad(i: dict, a: dict) -> str:
    names = i["names"]
    need(
        value(a, "pickle's code ran") is False,
        "load_checkpoint ran the code hidden in a pickle file (the check's own, harmless): load with "
        "torch.load(path, weights_only=True), which refuses pickled objects",
        PICKLE_LOADED,
    )
    for label, what in (("state_dict", "a bare state_dict (no sizes)"), ("pickle", "a pickled object")):
        error, bases, message = _outcome(a, label)
        need(
            error,
            f"load_checkpoint of a file holding {what} raised no error: it returned — expected a ValueError "
            "that names the file, so that the caller knows why there is no model",
            ERROR_NOT_RAISED,
        )
        first = message.strip().splitlines()[0][:200] if message.strip() else ""
        own = names[label] in message  # the learner's own error, of another type
        need(
            "ValueError" in bases,
            f"load_checkpoint of a file holding {what} raised {error} ({first}), expected a ValueError"
            + (
                ": raise ValueError(...) from the error, with this message"
                if own
                else " that names the file: catch the loading errors and raise one from them"
            ),
            ERROR_OF_ANOTHER_TYPE if own else RAW_LOAD_ERRORS,
        )
        need(
            names[label] in message,
            f"the ValueError for a file holding {what} should name the file, it says: {message}",
        )
    return (
        "a ValueError naming the file for a bare state_dict and for a pickled object, whose code did not run"
    )


bad_files = Check(
    "test_bad_files",
    after="checkpoint",
    judge=_judge_bad,
    ask=_ask_bad,
    given=lambda ns: _bad_inputs(None),
    hidden=_bad_inputs,
)

# ------------------------------------------------------------------------------------------ resume training
_RESUME = {"input_size": 12, "output_size": 3, "hidden_layers": [8]}


def _resume_inputs(g: torch.Generator | None) -> Inputs:
    """A small helper.MLP's first weights, three batches to train on, and the epoch to save with them."""
    import helper

    g = g or torch.Generator().manual_seed(5)
    with torch.random.fork_rng():
        torch.manual_seed(int(torch.randint(0, 2**31, (1,), generator=g)))
        init = state_of(helper.MLP(**_RESUME, drop_p=0.0))
    batches = [(torch.randn(16, 12, generator=g), torch.randint(0, 3, (16,), generator=g)) for _ in range(3)]
    return Inputs({"init": init, "batches": batches, "epoch": int(torch.randint(2, 30, (1,), generator=g))})


def _adam_steps(model: object, optimizer: object, batches: list) -> None:
    for x, y in batches:
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()


def _ask_resume(ns: dict, sent: dict) -> dict:
    import tempfile

    import helper

    save, resume = lookup(ns, "save_training_state"), lookup(ns, "resume_training")
    for f, name in ((save, "save_training_state"), (resume, "resume_training")):
        if isinstance(f, Raised) or not callable(f):
            return {"$problem": f if isinstance(f, Raised) else Raised(f"{name} is not a function")}
    device = notebook_device(ns)
    batches = [(x.to(device), y.to(device)) for x, y in sent["batches"]]
    model = helper.MLP(**_RESUME, drop_p=0.0).to(device)
    model.load_state_dict(sent["init"])
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    _adam_steps(model, optimizer, batches[:2])
    with tempfile.TemporaryDirectory() as folder:
        path = f"{folder}/training_state.pth"
        saved = attempt(save, path, model, optimizer, sent["epoch"])
        if isinstance(saved, Raised):
            return {"$problem": Raised(f"save_training_state(...) raised {saved.message}")}
        with torch.random.fork_rng():
            torch.manual_seed(0)
            fresh = helper.MLP(**_RESUME, drop_p=0.0).to(device)  # other weights than the saved ones
        fresh_optimizer = torch.optim.Adam(fresh.parameters(), lr=0.01)
        start = attempt(resume, path, fresh, fresh_optimizer)
    if isinstance(start, Raised):
        return {"$problem": Raised(f"resume_training(...) raised {start.message}")}
    resumed = state_of(fresh)
    _adam_steps(fresh, fresh_optimizer, batches[2:])  # training goes on from where it stopped
    return {
        "start": start if isinstance(start, int) else kind(start),
        "resumed": resumed,
        "after": state_of(fresh),
    }


def _judge_resume(i: dict, a: dict) -> str:
    import helper

    model = helper.MLP(**_RESUME, drop_p=0.0)
    model.load_state_dict(i["init"])
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    _adam_steps(model, optimizer, i["batches"][:2])
    keys = sorted(model.state_dict())
    resumed = value(a, "resumed", "the resumed model's state_dict")
    need(
        isinstance(resumed, dict) and sorted(resumed) == keys,
        "resume_training should load the saved weights into the model it is given",
    )
    for key in keys:
        expect_close(
            resumed[key],
            model.state_dict()[key],
            f"the resumed model's {key}",
            hint="load the saved state_dict into the model passed to resume_training (model.load_state_dict)",
        )
    restarted = helper.MLP(**_RESUME, drop_p=0.0)  # the typical mistake: the weights, with a fresh Adam
    restarted.load_state_dict(model.state_dict())
    _adam_steps(restarted, torch.optim.Adam(restarted.parameters(), lr=0.01), i["batches"][2:])
    _adam_steps(model, optimizer, i["batches"][2:])
    after = value(a, "after", "the model one step after resuming")
    need(
        isinstance(after, dict) and sorted(after) == keys,
        f"the model one step after resuming: expected its state_dict, got {kind(after)}",
    )
    for key in keys:
        expect_close(
            after[key],
            model.state_dict()[key],
            f"the weights one Adam step after resuming ({key})",
            like=[(restarted.state_dict()[key], OPTIMIZER_NOT_RESTORED)],
            hint="the optimizer was not restored: Adam keeps running averages of each weight's gradients, "
            "and a fresh optimizer starts them from zero — save optimizer.state_dict() too, and load it into "
            "the optimizer passed to resume_training (optimizer.load_state_dict)",
        )
    start = value(a, "start", "what resume_training returned")
    need(
        start == i["epoch"],
        f"resume_training returned {start!r}, expected the epoch saved with the state"
        + ("" if hidden() else f" ({i['epoch']})"),
        EPOCH_NOT_RETURNED,
    )
    return (
        "resume_training restores the weights and the optimizer's state (the next Adam step is the one the "
        "run would have taken) and returns the saved epoch"
    )


resume = Check(
    "test_resume",
    after="resume",
    judge=_judge_resume,
    ask=_ask_resume,
    given=lambda ns: _resume_inputs(None),
    hidden=_resume_inputs,
)

CHECKS = [round_trip, bad_files, resume]
