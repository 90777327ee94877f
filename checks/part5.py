"""Part 5 — Inference and validation: the checks of ``05_inference_and_validation.ipynb``.

``validate`` and ``train`` are the learner's functions: the judge calls them on small problems of its own
whose answers it knows (at grading: drawn by the grader), and measures what ``train`` returns (the history,
the best state) itself, on a model whose layers it knows. The trained models are measured by the judge on the
validation and test images: validation loss (the cross-entropy of the model's scores) and accuracy computed
from the model's outputs, never taken from the notebook. Precision and recall are judged from a confusion
matrix: the notebook's own, or one the grader draws."""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from checks import data
from checks.core import (
    Check,
    Inputs,
    Misconception,
    attempt,
    close,
    cpu,
    device_of,
    expect_shape,
    fail,
    kind,
    lookup,
    need,
    not_finite,
    notebook_device,
    pick,
    seen,
    state,
    state_of,
    tensor,
    value,
)
from checks.core import (
    hidden as at_grading,
)
from checks.kernel import hint as hint  # check.hint(): the next hint after a failed check
from checks.wire import Raised

# ------------------------------------------------------------------------------------------ misconceptions
NOT_FINITE = not_finite(5, "Training, validation and test sets")  # every check's answers: NaN or inf
_EVAL_SKELETON = "model.eval()\nwith torch.no_grad():\n    for images, labels in loader:\n        ..."
NO_EVAL_MODE = Misconception(
    "measured-in-training-mode",
    "a model measured in training mode, its dropout still on",
    5,
    "Dropout",
    "In training mode dropout zeroes random units, so the same data give other results each time: "
    "model.eval() turns it off for measuring (and model.train() back on for training).",
    _EVAL_SKELETON,
    "dropout",
)
PROBABILITIES_TO_LOSS = Misconception(
    "probabilities-given-to-cross-entropy",
    "softmax probabilities given to nn.CrossEntropyLoss, which applies softmax itself",
    5,
    "Accuracy on one batch",
    "nn.CrossEntropyLoss takes the model's scores and applies (log-)softmax itself. Given probabilities, it "
    "applies softmax a second time, and the loss is not the model's. torch.softmax is for reading "
    "probabilities, not for the loss.",
    "loss = criterion(model(images), labels)  # the scores, as they come",
    "cross-entropy",
)
BROADCAST_COMPARISON = Misconception(
    "broadcast-comparison",
    "a (128, 1) column compared with a (128,) row, which broadcasts to a (128, 128) table",
    5,
    "Accuracy on one batch",
    "Tensors of shapes (128, 1) and (128,) broadcast against each other: == compares every top class with "
    "every label. Give labels top_class's shape first.",
    "equals = top_class == labels.view(*top_class.shape)",
    "shape",
)
TENSOR_FOR_NUMBER = Misconception(
    "tensor-for-number",
    "a one-number tensor taken for a Python number",
    5,
    "Accuracy on one batch",
    "torch.mean gives a 0-dimensional tensor; .item() gives the Python float inside it.",
    "batch_accuracy = torch.mean(equals.type(torch.FloatTensor))....()",
    "tensor",
)
WRONG_DENOMINATOR = Misconception(
    "wrong-denominator",
    "the right predictions divided by another count than the number of images",
    5,
    "Accuracy on one batch",
    "Accuracy is the number right divided by the number of examples: the mean of equals as 0s and 1s.",
    "batch_accuracy = equals.float().mean().item()",
    "accuracy",
)
MEAN_OF_BATCH_MEANS = Misconception(
    "mean-of-batch-means",
    "the average of the batches' means (of the loss or the accuracy) taken for the average per example",
    5,
    "Training, validation and test sets",
    "A smaller last batch counts as much as a full one in an average of batch means: weight each batch's "
    "mean loss by its size, count the right predictions, and divide each total by the number of examples.",
    "total += criterion(scores, labels).item() * labels.shape[0]\n...\nreturn total / ..., correct / ...",
    "loss",
)
VALIDATED_ON_TRAINING_DATA = Misconception(
    "validated-on-training-data",
    "the training data taken for validation data",
    5,
    "Training with validation, keeping the best epoch",
    "The validation pass measures data the model does not train on — validloader; the training loss already "
    "says how it does on trainloader.",
    "valid_loss, valid_accuracy = validate(model, ..., criterion)",
    "overfitting",
)
VALIDATION_IN_TRAINING_MODE = Misconception(
    "validation-in-training-mode",
    "the validation pass run in training mode, dropout on",
    5,
    "Training with validation, keeping the best epoch",
    "validate must measure the model as it will be used: in evaluation mode. Each epoch switches: "
    "model.train() for its training pass, model.eval() for its validation pass.",
    "model.train()\nfor images, labels in trainloader:\n    ...\nmodel.eval()\nvalid_loss, valid_accuracy = "
    "...",
    "dropout",
)
STATE_WITHOUT_COPY = Misconception(
    "state-dict-without-copy",
    "model.state_dict() taken for a snapshot",
    5,
    "Training with validation, keeping the best epoch",
    "model.state_dict() holds references to the model's own tensors: they keep changing as it trains. "
    "copy.deepcopy(model.state_dict()) is a snapshot.",
    "best_loss, best_state = valid_loss, copy.deepcopy(...)",
    "state-dict",
)
NEVER_STOPS = Misconception(
    "early-stopping-never-counts",
    "early stopping that never counts the epochs without improvement",
    5,
    "Training with validation, keeping the best epoch",
    "Patience counts the epochs in a row without a new lowest validation loss: +1 after such an epoch, back "
    "to 0 at each new lowest; training stops when it reaches patience.",
    "if valid_loss < best_loss:\n    ...\n    epochs_without_improvement = 0\nelse:\n    "
    "epochs_without_improvement += ...",
    "early-stopping",
)
STOPS_TOO_SOON = Misconception(
    "early-stopping-too-soon",
    "training stopped too soon: at the first epoch without improvement, or after `patience` epochs of any "
    "kind",
    5,
    "Training with validation, keeping the best epoch",
    "Patience is how many epochs in a row may bring no new lowest validation loss before stopping: one bad "
    "epoch is noise, patience of them is a trend.",
    "if patience is not None and epochs_without_improvement >= ...:\n    break",
    "early-stopping",
)
NEVER_RESETS = Misconception(
    "early-stopping-never-resets",
    "the count of epochs without improvement never set back to 0 at a new lowest loss",
    5,
    "Training with validation, keeping the best epoch",
    "Patience counts the epochs in a row without a new lowest validation loss: a new lowest loss starts the "
    "count again from 0. A count that is never set back adds up every bad epoch of the run, and stops too "
    "soon.",
    "if valid_loss < best_loss:\n    ...\n    epochs_without_improvement = ...\nelse:\n    "
    "epochs_without_improvement += 1",
    "early-stopping",
)
PREVIOUS_FOR_LOWEST = Misconception(
    "early-stopping-against-previous-epoch",
    "each epoch's validation loss compared with the epoch before instead of the lowest so far",
    5,
    "Training with validation, keeping the best epoch",
    "Early stopping waits for a new lowest validation loss: an epoch that beats the one before it, but not "
    "the best epoch so far, is still an epoch without improvement.",
    "if valid_loss < best_loss:  # the lowest so far, not the previous epoch's\n    ...\n    "
    "epochs_without_improvement = 0\nelse:\n    epochs_without_improvement += 1",
    "early-stopping",
)
NO_DROPOUT = Misconception(
    "model-without-dropout",
    "a model without dropout layers",
    5,
    "Dropout",
    "Dropout is a layer: nn.Dropout(p) after the hidden layers' activations zeroes a random fraction p of "
    "their units in training mode.",
    "nn.Sequential(nn.Flatten(), nn.Linear(784, 256), nn.ReLU(), nn.Dropout(p=...), ...)",
    "dropout",
)
FUNCTIONAL_DROPOUT_ALWAYS_ON = Misconception(
    "functional-dropout-always-on",
    "F.dropout taken to follow the model's mode",
    5,
    "Dropout",
    "nn.Dropout follows model.train() and model.eval(); F.dropout does what its training argument says "
    "(True by default): pass training=self.training.",
    "x = F.dropout(x, p=0.2, training=self....)",
    "dropout",
)
DROPOUT_UNDERTRAINED = Misconception(
    "dropout-model-undertrained",
    "a dropout model trained too little to reach the goal",
    5,
    "Exercise 4 — train with dropout",
    "Dropout slows learning (each step trains a thinned network): it needs as many epochs as the model "
    "without it, or more.",
    "history_dropout, best_state = train(dropout_model, small_trainloader, validloader, epochs=..., "
    "patience=...)",
    "dropout",
)
BEST_NOT_LOADED = Misconception(
    "best-state-not-loaded",
    "the model after the last epoch taken for the best epoch's",
    5,
    "Keep the best epoch, test once",
    "Training went on after the best epoch: the model now holds the last epoch's weights. Load the saved "
    "best state into it before testing.",
    "dropout_model.load_state_dict(torch.load('best_model.pth', weights_only=True))",
    "early-stopping",
)
TESTED_ON_VALIDATION = Misconception(
    "validation-for-test",
    "the validation set taken for the test set",
    5,
    "Keep the best epoch, test once",
    "The validation set chose the epoch, so its score is optimistic; the test set, used once at the end, "
    "says how the model does on new data.",
    "test_loss, test_accuracy = validate(dropout_model, ..., criterion)",
    "training-set",
)
TRANSPOSED_MATRIX = Misconception(
    "confusion-transposed",
    "predicted classes on the rows and true classes on the columns",
    5,
    "Which classes does it confuse?",
    "By convention matrix[true class, predicted class]: row i says where the examples of class i went.",
    "matrix[labels, predicted] += ...",
    "confusion-matrix",
)
REPEATS_ONCE = Misconception(
    "indexed-add-counts-repeats-once",
    "matrix[labels, predicted] += 1 taken to count a pair as often as it occurs",
    5,
    "Which classes does it confuse?",
    "An indexed += writes each position once per call, however often the pair repeats in the batch: count "
    "with torch.bincount, or index_put_(..., accumulate=True).",
    "matrix += torch.bincount(labels * 10 + predicted, minlength=100).view(10, 10)",
    "confusion-matrix",
)
MATRIX_PER_BATCH = Misconception(
    "matrix-made-per-batch",
    "the matrix made anew for each batch, so only the last batch counts",
    5,
    "Which classes does it confuse?",
    "Create the matrix once, before the loop over batches; each batch adds its counts to it.",
    "matrix = torch.zeros(10, 10, dtype=torch.long)\nfor images, labels in loader:\n    ...",
    "confusion-matrix",
)
ENDS_IN_SOFTMAX = Misconception(
    "network-ends-in-softmax",
    "a network that ends in softmax, trained with CrossEntropyLoss",
    5,
    "Accuracy on one batch",
    "nn.CrossEntropyLoss applies log-softmax itself: it wants the scores of the last nn.Linear. Softmax "
    "before it squashes them and slows learning; torch.softmax(scores, dim=1) is for reading probabilities.",
    "dropout_model = nn.Sequential(..., nn.Linear(64, 10))  # no nn.Softmax: the loss does it",
    "logit",
)
PRECISION_RECALL_SWAPPED = Misconception(
    "precision-recall-swapped",
    "precision and recall swapped: the row sums taken for the column sums",
    5,
    "Precision and recall",
    "In matrix[true class, predicted class] a row holds the examples of a class, a column the predictions "
    "of a class. Recall divides the diagonal by the row sums; precision by the column sums.",
    "precision = matrix.diag() / matrix.sum(dim=...)  # down each column\n"
    "recall = matrix.diag() / matrix.sum(dim=...)  # along each row",
    "precision",
)
DIVIDED_BY_TOTAL = Misconception(
    "precision-over-all-examples",
    "the diagonal divided by every example instead of the examples or the predictions of its class",
    5,
    "Precision and recall",
    "Each class has its own denominator: recall counts among the examples of the class (its row), "
    "precision among the predictions of the class (its column), not among all examples.",
    "recall = matrix.diag() / matrix.sum(dim=...)",
    "precision",
)
PERCENTAGES_FOR_FRACTIONS = Misconception(
    "percentages-for-fractions",
    "precision and recall as percentages instead of fractions",
    5,
    "Precision and recall",
    "Precision and recall are fractions between 0 and 1, as the accuracy is. A percentage is a way to print "
    'a fraction (f"{p:.0%}"), not a value to store.',
    "precision = matrix.diag() / matrix.sum(dim=...)",
    "precision",
)
INTEGER_DIVISION = Misconception(
    "integer-division-of-counts",
    "// taken for division: it rounds each fraction of counts down to a whole number",
    5,
    "Precision and recall",
    "The counts are integers: // divides and rounds down, so every fraction below 1 becomes 0. "
    "/ gives the fraction as a float.",
    "precision = matrix.diag() / matrix.sum(dim=0)",
    "precision",
)


# ------------------------------------------------------------------------------------------ batch accuracy
def _batch(g: torch.Generator) -> Inputs:
    labels = torch.randint(0, 10, (128,), generator=g)
    right = torch.rand(128, generator=g) < 0.3 + 0.5 * torch.rand(1, generator=g)
    top_class = torch.where(right, labels, (labels + torch.randint(1, 10, (128,), generator=g)) % 10)
    return Inputs({"top_class": top_class.view(128, 1), "labels": labels})


def _judge_batch_accuracy(i: dict, a: dict) -> str:
    equals = value(a, "equals")
    hint = "reshape labels like top_class before comparing: labels.view(*top_class.shape)"
    expect_shape(equals, (128, 1), "equals", hint=hint, like=[((128, 128), BROADCAST_COMPARISON)])
    truth = i["top_class"] == i["labels"].view(128, 1)
    need(torch.equal(equals.bool(), truth), "equals should be True where top_class equals the image's label")
    accuracy = value(a, "batch_accuracy")
    need(
        isinstance(accuracy, float),
        f"batch_accuracy should be a Python float, got {kind(accuracy)}",
        TENSOR_FOR_NUMBER if isinstance(accuracy, torch.Tensor) else None,
    )
    expected = truth.float().mean().item()
    if not close(accuracy, expected, 1e-6):
        fail(
            f"batch_accuracy is {accuracy:.4f}, "
            + (
                "not the expected fraction of right predictions"
                if at_grading()
                else f"expected {expected:.4f}"
            )
            + " — the mean of equals as floats",
            WRONG_DENOMINATOR,
        )
    return "equals has shape (128, 1) and batch_accuracy is the fraction right" + seen(f": {accuracy:.1%}")


batch_accuracy = Check(
    "test_batch_accuracy",
    after="batch_accuracy",
    judge=_judge_batch_accuracy,
    ask=lambda ns, sent: {
        "equals": cpu(lookup(ns, "equals")),
        "batch_accuracy": lookup(ns, "batch_accuracy"),
    },
    given=lambda ns: Inputs(pick(ns, "top_class", "labels")),
    hidden=_batch,
    rerun=True,
    nonfinite_shows=NOT_FINITE,
)


# ------------------------------------------------------------------------------------------ validate
_SMALL = torch.tensor([[2.0, 0.0], [0.0, 3.0], [1.0, 0.0], [0.0, 1.0], [5.0, 0.0]])  # a model's scores


def _validate_inputs(g: torch.Generator | None) -> Inputs:
    if g is None:  # the notebook's: 5 examples, 3 right, batches of 2 + 2 + 1
        inputs, targets, batch = _SMALL, torch.tensor([0, 0, 0, 1, 1]), 2
        noise = torch.randn(200, 10, generator=torch.Generator().manual_seed(0))
        noise_targets = torch.randint(0, 10, (200,), generator=torch.Generator().manual_seed(1))
    else:
        batch = int(torch.randint(2, 5, (1,), generator=g))  # and a smaller last batch
        n = batch * int(torch.randint(2, 4, (1,), generator=g)) + int(
            torch.randint(1, batch, (1,), generator=g)
        )
        inputs = 2 * torch.randn(n, 3, generator=g)
        targets = torch.randint(0, 3, (n,), generator=g)
        noise, noise_targets = torch.randn(200, 10, generator=g), torch.randint(0, 10, (200,), generator=g)
    return Inputs(
        {"inputs": inputs, "targets": targets, "batch": batch, "noise": noise, "noise targets": noise_targets}
    )


def _ask_validate(ns: dict, sent: dict) -> dict:
    validate = lookup(ns, "validate")
    if isinstance(validate, Raised) or not callable(validate):
        return {
            "$problem": validate if isinstance(validate, Raised) else Raised("validate is not a function")
        }
    small = DataLoader(TensorDataset(sent["inputs"], sent["targets"]), batch_size=sent["batch"])
    result = attempt(validate, nn.Sequential(nn.Identity()), small, nn.CrossEntropyLoss())
    dropout_model = nn.Sequential(nn.Dropout(0.5))
    dropout_model.train()
    big = DataLoader(TensorDataset(sent["noise"], sent["noise targets"]), batch_size=50)
    twice = [attempt(validate, dropout_model, big, nn.CrossEntropyLoss()) for _ in range(2)]
    return {"validate(model, loader, criterion)": cpu(result), "twice": cpu(twice)}


def _pair(x: object, what: str) -> tuple:
    if isinstance(x, Raised):
        fail(f"validate raised {x.message}")
    need(
        isinstance(x, list) and len(x) == 2,
        f"validate should return (loss, accuracy), got {kind(x)} ({what})",
    )
    return tuple(x)


def _judge_validate(i: dict, a: dict) -> str:
    loss, acc = _pair(a.get("validate(model, loader, criterion)", Raised("no answer")), "on a small data set")
    need(
        isinstance(loss, float) and isinstance(acc, float),
        "validate should return two Python floats (use .item())",
    )
    n = len(i["targets"])
    right = int((i["inputs"].argmax(dim=1) == i["targets"]).sum())
    expected_loss = nn.CrossEntropyLoss()(i["inputs"], i["targets"]).item()
    batches = list(zip(i["inputs"].split(i["batch"]), i["targets"].split(i["batch"]), strict=True))
    batch_means = (  # the typical mistake: the average of the batches' means, loss and accuracy
        sum(nn.CrossEntropyLoss()(x, y).item() for x, y in batches) / len(batches),
        sum((x.argmax(dim=1) == y).float().mean().item() for x, y in batches) / len(batches),
    )
    if not close(acc, right / n, 1e-6):
        fail(
            f"accuracy {acc:.4f}, "
            + (
                f"not the fraction right of the {n} examples"
                if at_grading()
                else f"expected {right / n:.4f} on {n} examples ({right} right)"
            )
            + " — count the right predictions over all examples and divide by their number",
            MEAN_OF_BATCH_MEANS if close(acc, batch_means[1], 1e-6) else None,
        )
    softmaxed = nn.CrossEntropyLoss()(torch.softmax(i["inputs"], dim=1), i["targets"]).item()
    need(
        close(loss, expected_loss, 1e-5) or not close(loss, softmaxed, 1e-5),
        f"loss {loss:.4f}: the loss of softmax probabilities"
        + ("" if at_grading() else f" (the scores give {expected_loss:.4f})")
        + " — give criterion the model's scores, model(images): nn.CrossEntropyLoss applies softmax itself",
        PROBABILITIES_TO_LOSS,
    )
    if not close(loss, expected_loss, 1e-5):
        fail(
            f"loss {loss:.4f}, "
            + ("" if at_grading() else f"expected {expected_loss:.4f}, ")
            + f"the average over the {n} examples — multiply each batch's mean loss by its size and divide "
            "the total by the number of examples (the last batch may be smaller)",
            MEAN_OF_BATCH_MEANS if close(loss, batch_means[0], 1e-5) else None,
        )
    twice = value(a, "twice")
    need(
        isinstance(twice, list) and len(twice) == 2,
        f"validate's two runs: expected 2 results, got {kind(twice)}",
    )
    first, second = (_pair(x, "in training mode") for x in twice)
    need(
        first == second,
        "validate gave different results on the same data: call model.eval() so dropout is off",
        NO_EVAL_MODE,
    )
    return "validate: loss per example and accuracy over every batch, in evaluation mode"


validate = Check(
    "test_validate",
    after="validate",
    judge=_judge_validate,
    ask=_ask_validate,
    given=lambda ns: _validate_inputs(None),
    hidden=_validate_inputs,
    nonfinite_shows=NOT_FINITE,
)


# ------------------------------------------------------------------------------------------ train
def _tiny_model() -> nn.Sequential:
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 10), nn.Dropout(0.5))  # scores, dropout on them


_TINY = {"1.weight": (10, 784), "1.bias": (10,)}  # its parameters' shapes

# The check's run of early stopping: PATIENCE_EPOCHS at most, with PATIENCE. Its model's outputs are fixed
# (:class:`_Frozen`), and the labels of the validation images change from epoch to epoch: at epoch k, the
# first _SCRIPT[k] of the 50 get the class the model rates most likely, the others the least likely, so the
# validation loss falls as _SCRIPT[k] grows. Epoch 1 sets the lowest loss, epoch 2 is worse, epoch 3 a new
# lowest (the count of epochs without improvement goes back to 0), then two worse ones in a row: stop after
# epoch 5. A count never set back stops after epoch 4, one compared with the previous epoch after 7, one that
# stops at the first worse epoch after 2, one that never counts runs all 8.
PATIENCE_EPOCHS, PATIENCE = 8, 2
_SCRIPT = (25, 20, 30, 22, 24, 23, 21, 26)


class _Frozen(nn.Module):
    """The early-stopping run's model: scores that training cannot change (its one parameter is
    multiplied by 0, so its gradient is 0 and the optimizer leaves it), so that the check decides each
    epoch's validation loss through the labels."""

    def __init__(self, weight: torch.Tensor):
        super().__init__()
        self.register_buffer("weight", weight)
        self.idle = nn.Parameter(torch.zeros(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(1) @ self.weight + 0 * self.idle


class _Clock(DataLoader):
    """A training loader that counts the batches it gave (not its iterators: tqdm makes two per pass), so it
    knows which epoch the validation labels are of."""

    batches = 0

    def __iter__(self):
        for batch in super().__iter__():
            self.batches += 1
            yield batch

    def epoch(self) -> int:
        return max(1, -(-self.batches // len(self)))


class _Scripted(torch.utils.data.Dataset):
    """The validation images, labelled by the row of ``script`` of the training loader's current pass."""

    def __init__(self, images: torch.Tensor, script: torch.Tensor, clock: _Clock):
        self.images, self.script, self.clock = images, script, clock

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple:
        return self.images[index], self.script[min(self.clock.epoch(), len(self.script)) - 1][index]


def _train_inputs(g: torch.Generator | None) -> Inputs:
    """64 random images, their labels; validation labels shifted by one, so the more the model learns the
    worse it validates, and the best epoch is the first. For the early-stopping run: the fixed model's weight
    and the validation labels of each epoch (_SCRIPT)."""
    g = g or torch.Generator().manual_seed(0)
    images, labels = torch.randn(64, 1, 28, 28, generator=g), torch.randint(0, 10, (64,), generator=g)
    with torch.random.fork_rng():
        torch.manual_seed(int(torch.randint(0, 2**31, (1,), generator=g)))
        model = _tiny_model()
    frozen = 0.05 * torch.randn(784, 10, generator=g)
    scores = _Frozen(frozen)(images[:50]).detach()
    likely, unlikely, first = scores.argmax(dim=1), scores.argmin(dim=1), torch.arange(50)
    return Inputs(
        {
            "images": images,
            "labels": labels,
            "valid labels": (labels[:50] + 1) % 10,
            "init": state_of(model),
            "shuffle seed": int(torch.randint(0, 2**31, (1,), generator=g)),
            "frozen": frozen,
            "script": torch.stack([torch.where(first < m, likely, unlikely) for m in _SCRIPT]),
        }
    )


def _tiny_train(sent: dict) -> DataLoader:
    """The check's training loader, shuffled the same way each time it is made."""
    shuffle = torch.Generator().manual_seed(sent["shuffle seed"])
    return DataLoader(
        TensorDataset(sent["images"], sent["labels"]), batch_size=16, shuffle=True, generator=shuffle
    )


def _ask_train(ns: dict, sent: dict) -> dict:
    train = lookup(ns, "train")
    if isinstance(train, Raised) or not callable(train):
        return {"$problem": train if isinstance(train, Raised) else Raised("train is not a function")}
    tiny_valid = DataLoader(TensorDataset(sent["images"][:50], sent["valid labels"]), batch_size=16)
    device = notebook_device(ns)  # the notebook's train moves each batch there
    model = _tiny_model()
    model.load_state_dict(sent["init"])
    model.to(device)
    result = attempt(train, model, _tiny_train(sent), tiny_valid, epochs=3, lr=0.01)
    if isinstance(result, Raised):
        return {"$problem": Raised(f"train(...) raised {result.message}")}
    if not isinstance(result, tuple | list) or len(result) != 2:
        return {
            "$problem": Raised(
                f"train should return (history, best_state), it returned a {type(result).__name__}"
            )
        }
    history, best = result
    # Early stopping: the fixed model, whose validation losses the labels decide epoch by epoch (_SCRIPT)
    with torch.random.fork_rng():
        torch.manual_seed(sent["shuffle seed"])
        clock = _Clock(TensorDataset(sent["images"], sent["labels"]), batch_size=16, shuffle=True)
        scripted = DataLoader(_Scripted(sent["images"][:50], sent["script"], clock), batch_size=16)
        stopped = attempt(
            train,
            _Frozen(sent["frozen"]).to(device),
            clock,
            scripted,
            epochs=PATIENCE_EPOCHS,
            lr=0.01,
            patience=PATIENCE,
        )
    if not isinstance(stopped, Raised):
        stopped = (
            stopped[0].get("valid_loss")
            if isinstance(stopped, tuple | list) and stopped and isinstance(stopped[0], dict)
            else Raised(f"it returned {kind(stopped)}")
        )
    return {
        "history": cpu(history),
        "best": cpu(best) if isinstance(best, dict) else best,
        "final": state_of(model),
        "patience": cpu(stopped),
    }


def _measured(weights: dict, i: dict, on_training_data: bool = False) -> tuple[float, float]:
    """Validation loss and accuracy per example of the tiny model with ``weights``, in evaluation mode (or
    its loss and accuracy on the check's training data)."""
    model = _tiny_model()
    model.load_state_dict(weights)
    model.eval()
    images, labels = (i["images"], i["labels"]) if on_training_data else (i["images"][:50], i["valid labels"])
    with torch.no_grad():
        scores = model(images)
    return data.cross_entropy(scores, labels), data.accuracy(scores, labels)


def _close_pair(recorded: tuple[float, float], measured: tuple[float, float]) -> bool:
    return close(recorded[0], measured[0], 1e-5) and close(recorded[1], measured[1], 1e-6)


def _scripted_losses(i: dict) -> list[float]:
    """The validation loss of each epoch of the early-stopping run (its fixed model, each epoch's labels)."""
    with torch.no_grad():
        scores = _Frozen(i["frozen"])(i["images"][:50])
    return [data.cross_entropy(scores, labels) for labels in i["script"]]


def _stops_after(losses: list[float], rule: str) -> int:
    """The epoch after which a run with these validation losses stops (PATIENCE), counting as ``rule`` says:
    "lowest" (the count back to 0 at each new lowest loss: right), "never reset", "previous" (back to 0
    when an epoch beats the one before), "first" (stop at the first epoch without a new lowest), "never"
    (never counts)."""
    best, previous, count = float("inf"), float("inf"), 0
    for epoch, loss in enumerate(losses, start=1):
        better = loss < (previous if rule == "previous" else best)
        best, previous = min(best, loss), loss
        count = 0 if better and rule != "never reset" else count + (not better)
        if rule != "never" and count >= (1 if rule == "first" else PATIENCE):
            return epoch
    return len(losses)


def _judge_train(i: dict, a: dict) -> str:
    history = value(a, "history")
    need(isinstance(history, dict), f"train should return the history dict first, got {kind(history)}")
    for key in ("valid_loss", "valid_accuracy"):
        got = history.get(key, [])
        need(
            isinstance(got, list) and len(got) == 3,
            f"history[{key!r}] holds {len(got) if isinstance(got, list) else kind(got)} values after 3 "
            "epochs: append one per epoch",
        )
        need(
            all(isinstance(x, float | int) and not isinstance(x, bool) for x in got),
            f"history[{key!r}] should hold numbers (use .item())",
        )
    loss, accuracy = _measured(state(a, "final", _TINY, "the trained model's state_dict"), i)
    recorded = history["valid_loss"][-1], history["valid_accuracy"][-1]
    if not _close_pair(recorded, (loss, accuracy)):
        fail(
            f"the last epoch's validation loss and accuracy are {recorded[0]:.4f} and {recorded[1]:.4f}; the "
            "model "
            + (
                "gives other values on validloader"
                if at_grading()
                else f"gives {loss:.4f} and {accuracy:.4f} on validloader"
            )
            + " — validate on the validation loader, in evaluation mode (model.eval(): dropout off), after "
            "the epoch's training pass",
            # the figures of the training data, in evaluation mode; else (dropout's noise) training mode
            VALIDATED_ON_TRAINING_DATA
            if _close_pair(recorded, _measured(value(a, "final"), i, on_training_data=True))
            else VALIDATION_IN_TRAINING_MODE,
        )
    best = value(a, "best")
    need(best is not None, "best_state is None: keep a copy of model.state_dict() at the best epoch")
    need(
        isinstance(best, dict) and all(isinstance(t, torch.Tensor) for t in best.values()),
        f"best_state should be a state_dict, got {kind(best)}",
    )
    best = state(a, "best", _TINY, "best_state")
    lowest = min(history["valid_loss"])
    best_loss = attempt(_measured, best, i)
    if isinstance(best_loss, Raised) or not close(best_loss[0], lowest, 1e-5):
        fail(
            "the model in best_state does not validate at the lowest validation loss "
            + seen(f"({best_loss[0]:.4f} against {lowest:.4f}) " if not isinstance(best_loss, Raised) else "")
            + "— at each new lowest validation loss (valid_loss < best_loss), keep a copy "
            "(copy.deepcopy(model.state_dict())): without a copy, the state changes with the model",
            STATE_WITHOUT_COPY,
        )
    stopped = a.get("patience", Raised("no answer"))
    run = f"train(..., epochs={PATIENCE_EPOCHS}, patience={PATIENCE})"
    if isinstance(stopped, Raised):
        fail(f"{run} raised {stopped.message} — keep the notebook's signature, patience included")
    need(
        isinstance(stopped, list)
        and 0 < len(stopped) <= PATIENCE_EPOCHS
        and all(isinstance(x, float | int) and not isinstance(x, bool) for x in stopped),
        f"{run}: history['valid_loss'] should be a list of at most {PATIENCE_EPOCHS} numbers, one per epoch, "
        f"got {kind(stopped) if not isinstance(stopped, list) else f'{len(stopped)} values'}",
    )
    expected = _scripted_losses(i)
    losses = seen(f" (validation losses {', '.join(f'{x:.4f}' for x in stopped)})")
    need(
        all(close(x, e, 1e-4) for x, e in zip(stopped, expected, strict=False)),
        f"{run}: history['valid_loss'] is not the validation loss of each epoch{losses} — validate model on "
        "validloader after each epoch's training pass",
    )
    epochs, right = len(stopped), _stops_after(expected, "lowest")
    if epochs != right:
        rules = (
            ("first", STOPS_TOO_SOON),
            ("never reset", NEVER_RESETS),
            ("previous", PREVIOUS_FOR_LOWEST),
            ("never", NEVER_STOPS),
        )
        shown = next((m for rule, m in rules if _stops_after(expected, rule) == epochs), None)
        why = {
            STOPS_TOO_SOON.id: "add 1 to epochs_without_improvement only after an epoch without a new lowest "
            f"loss, set it back to 0 at each new lowest, and stop when it reaches {PATIENCE}",
            NEVER_RESETS.id: "set epochs_without_improvement back to 0 at each new lowest loss: patience "
            "counts the epochs in a row without one",
            PREVIOUS_FOR_LOWEST.id: "compare each epoch's validation loss with the lowest so far "
            "(best_loss), not with the epoch before",
            NEVER_STOPS.id: "add 1 to epochs_without_improvement after such an epoch, and set it back to 0 "
            "at each new lowest loss",
        }
        did = f"ran {epochs} epochs" if epochs == PATIENCE_EPOCHS else f"stopped after epoch {epochs}"
        fail(
            f"{run} {did}{losses}: it should stop after epoch {right}, the first with {PATIENCE} epochs in a "
            "row without a new lowest validation loss" + (f" — {why[shown.id]}" if shown else ""),
            shown,
        )
    return (
        "validation pass: per epoch, in evaluation mode, the best epoch's weights kept, and early stopping "
        "after `patience` epochs without improvement"
    )


train_loop = Check(
    "test_train_loop",
    after="train_loop",
    judge=_judge_train,
    ask=_ask_train,
    given=lambda ns: _train_inputs(None),
    hidden=_train_inputs,
    nonfinite_shows=NOT_FINITE,
)


# ------------------------------------------------------------------------------------------ dropout
def _dropout_inputs(g: torch.Generator | None) -> Inputs:
    pixels, labels = data.fashion_images("valid", g)
    x = torch.randn(16, 1, 28, 28, generator=g or torch.Generator().manual_seed(0))
    return Inputs({"x": x, "pixels": pixels}, {"labels": labels})


def _ask_dropout(ns: dict, sent: dict) -> dict:
    model, history = lookup(ns, "dropout_model"), lookup(ns, "history_dropout")
    if isinstance(model, Raised) or not isinstance(model, nn.Module):
        return {
            "$problem": model
            if isinstance(model, Raised)
            else Raised(f"dropout_model should be a network, got {type(model).__name__}")
        }
    x = sent["x"].to(device_of(model))
    was_training = model.training
    with torch.no_grad():
        model.train()
        training = [cpu(attempt(model, x)) for _ in range(2)]
        model.eval()
        evaluation = [cpu(attempt(model, x)) for _ in range(2)]
    model.train(was_training)
    accuracies = history.get("valid_accuracy") if isinstance(history, dict) else history
    return {
        "training": training,
        "evaluation": evaluation,
        "history": cpu(accuracies),
        "scores": data.scores(model, sent["pixels"]),
    }


def _judge_dropout(i: dict, a: dict) -> str:
    training, evaluation = value(a, "training"), value(a, "evaluation")
    need(
        all(isinstance(x, list) and len(x) == 2 for x in (training, evaluation)),
        "dropout_model(x) should have been run twice in each mode",
    )
    for out in (*training, *evaluation):
        need(
            isinstance(out, torch.Tensor),
            f"dropout_model(x) failed: {out.message if isinstance(out, Raised) else kind(out)}",
        )
        expect_shape(out, (16, 10), "dropout_model(x) for 16 images", hint="10 scores per image")
    need(
        not torch.allclose(*training),
        "dropout_model gives the same output twice in training mode: it has no dropout — add nn.Dropout "
        "layers after the hidden layers' activations",
        NO_DROPOUT,
    )
    need(
        torch.allclose(*evaluation),
        "dropout_model gives different outputs in evaluation mode: dropout must stop after model.eval() "
        "(nn.Dropout does; F.dropout needs training=self.training)",
        FUNCTIONAL_DROPOUT_ALWAYS_ON,
    )
    out = evaluation[0].double()
    rows_of_one = torch.allclose(out.sum(dim=1), torch.ones(len(out), dtype=out.dtype))
    need(
        not (bool((out >= 0).all()) and rows_of_one),
        "dropout_model's outputs are probabilities (each row sums to 1): nn.CrossEntropyLoss wants the "
        "scores of the last nn.Linear — leave out the final softmax",
        ENDS_IN_SOFTMAX,
    )
    history = value(a, "history", "history_dropout")
    need(
        isinstance(history, list) and history, "history_dropout is empty: train dropout_model with train(...)"
    )
    scores = tensor(a, "scores", "dropout_model(images)")
    expect_shape(scores, (len(i["labels"]), 10), "dropout_model's scores for the validation images")
    accuracy = data.accuracy(scores, i["labels"])
    need(
        accuracy >= 0.82,
        f"validation accuracy {accuracy:.1%} (dropout_model as it is after training), expected at least 82% "
        "— train dropout_model for 20 epochs",
        DROPOUT_UNDERTRAINED,
    )
    return (
        f"dropout model: random in training mode, not in evaluation mode; validation accuracy {accuracy:.1%}"
    )


dropout_model = Check(
    "test_dropout_model",
    after="dropout_model",
    judge=_judge_dropout,
    ask=_ask_dropout,
    given=lambda ns: _dropout_inputs(None),
    hidden=_dropout_inputs,
    nonfinite_shows=NOT_FINITE,
)


# ------------------------------------------------------------------------------------------ best model
def _best_inputs(g: torch.Generator | None) -> Inputs:
    valid, valid_labels = data.fashion_images(
        "valid", g, noise=False
    )  # compared with the notebook's own loss figures
    test, test_labels = data.fashion_images("test", g, noise=False)
    return Inputs({"valid": valid, "test": test}, {"valid labels": valid_labels, "test labels": test_labels})


def _ask_best(ns: dict, sent: dict) -> dict:
    import os

    model, history = lookup(ns, "dropout_model"), lookup(ns, "history_dropout")
    answers: dict = {"file": os.path.isfile("best_model.pth")}
    if answers["file"]:
        saved = attempt(torch.load, "best_model.pth", weights_only=True, map_location="cpu")
        answers["saved keys"] = (
            sorted(saved) if isinstance(saved, dict) else saved if isinstance(saved, Raised) else kind(saved)
        )
    answers["state keys"] = sorted(model.state_dict()) if isinstance(model, nn.Module) else model
    answers["valid losses"] = cpu(history.get("valid_loss")) if isinstance(history, dict) else history
    answers["test_loss"], answers["test_accuracy"] = lookup(ns, "test_loss"), lookup(ns, "test_accuracy")
    if isinstance(model, nn.Module):
        answers["valid scores"] = data.scores(model, sent["valid"])
        answers["test scores"] = data.scores(model, sent["test"])
    return answers


def _judge_best(i: dict, a: dict) -> str:
    need(
        value(a, "file") is True,
        "best_model.pth not found — save the best epoch's state: torch.save(best_state, 'best_model.pth')",
    )
    need(
        value(a, "saved keys", "best_model.pth") == value(a, "state keys", "dropout_model"),
        "best_model.pth should hold dropout_model's state_dict",
    )
    losses = value(a, "valid losses", "history_dropout['valid_loss']")
    need(isinstance(losses, list) and losses, "history_dropout['valid_loss'] is empty")
    need(
        all(isinstance(x, float | int) and not isinstance(x, bool) for x in losses),
        "history_dropout['valid_loss'] should hold numbers, the validation loss of each epoch",
    )
    valid_scores = tensor(a, "valid scores", "dropout_model(validation images)")
    n = len(i["valid labels"])
    expect_shape(valid_scores, (n, 10), "dropout_model's scores for the validation images")
    valid = data.cross_entropy(valid_scores, i["valid labels"])
    lowest = min(losses)
    if not close(valid, lowest, 1e-4):
        fail(
            f"dropout_model validates at {valid:.4f}, its best epoch at {lowest:.4f} — load best_state "
            "(saved to best_model.pth) into dropout_model: the last epoch is not the best one",
            BEST_NOT_LOADED,
        )
    scores = tensor(a, "test scores", "dropout_model(test images)")
    expect_shape(scores, (len(i["test labels"]), 10), "dropout_model's scores for the test images")
    measured_loss, measured_accuracy = (
        data.cross_entropy(scores, i["test labels"]),
        data.accuracy(scores, i["test labels"]),
    )
    test_loss, test_accuracy = value(a, "test_loss"), value(a, "test_accuracy")
    need(
        isinstance(test_accuracy, float) and isinstance(test_loss, float),
        "test_loss and test_accuracy should be the floats validate returns",
    )
    if not (close(test_accuracy, measured_accuracy, 1e-6) and close(test_loss, measured_loss, 1e-4)):
        fail(
            f"test_accuracy is {test_accuracy:.4f}, the restored model gives "
            + ("another value" if at_grading() else f"{measured_accuracy:.4f}")
            + " on the test set — measure dropout_model on testloader after loading the best state",
            TESTED_ON_VALIDATION
            if close(test_accuracy, data.accuracy(valid_scores, i["valid labels"]), 1e-6)
            else None,
        )
    need(test_accuracy >= 0.82, f"test accuracy {test_accuracy:.1%}, expected at least 82%")
    return f"the best epoch's model, tested once: test accuracy {test_accuracy:.1%}"


best_model = Check(
    "test_best_model",
    after="best_model",
    judge=_judge_best,
    ask=_ask_best,
    given=lambda ns: _best_inputs(None),
    hidden=_best_inputs,
    nonfinite_shows=NOT_FINITE,
)


# ------------------------------------------------------------------------------------------ confusion matrix
def _confusion_inputs(g: torch.Generator | None) -> Inputs:
    """Scores of a model that is right about 60% of the time, their labels, a batch size (a smaller last
    batch), and noise for the evaluation-mode test."""
    g = g or torch.Generator().manual_seed(3)
    n = int(torch.randint(150, 250, (1,), generator=g))
    labels = torch.randint(0, 10, (n,), generator=g)
    scores = torch.randn(n, 10, generator=g)
    scores[torch.arange(n), labels] += 1.5 * torch.rand(n, generator=g) + 0.5
    batch = int(torch.randint(16, 40, (1,), generator=g))
    return Inputs(
        {
            "scores": scores,
            "labels": labels,
            "batch": batch if n % batch else batch + 1,
            "noise": torch.randn(200, 10, generator=g),
        }
    )


def _ask_confusion(ns: dict, sent: dict) -> dict:
    confusion = lookup(ns, "confusion_matrix")
    if isinstance(confusion, Raised) or not callable(confusion):
        return {
            "$problem": confusion
            if isinstance(confusion, Raised)
            else Raised("confusion_matrix is not a function")
        }
    loader = DataLoader(TensorDataset(sent["scores"], sent["labels"]), batch_size=sent["batch"])
    matrix = attempt(confusion, nn.Sequential(nn.Identity()).to(notebook_device(ns)), loader)
    dropout_model = nn.Sequential(nn.Dropout(0.5)).train()
    noise = DataLoader(TensorDataset(sent["noise"], torch.zeros(200, dtype=torch.long)), batch_size=50)
    twice = [attempt(confusion, dropout_model, noise) for _ in range(2)]
    return {"matrix": cpu(matrix), "twice": cpu(twice)}


def _judge_confusion(i: dict, a: dict) -> str:
    matrix = a.get("matrix", Raised("no answer"))
    if isinstance(matrix, Raised):
        fail(f"confusion_matrix(model, loader) raised {matrix.message}")
    need(isinstance(matrix, torch.Tensor), f"confusion_matrix should return a tensor, got {kind(matrix)}")
    expect_shape(matrix, (10, 10), "confusion_matrix(model, loader)", hint="one row and one column per class")
    labels, predicted = i["labels"], i["scores"].argmax(dim=1)
    expected = torch.bincount(labels * 10 + predicted, minlength=100).view(10, 10)
    n = len(labels)
    counts = matrix.double()
    need(
        bool(((counts >= 0) & (counts == counts.round()) & (counts <= n)).all()),
        f"confusion_matrix(model, loader) should hold counts: whole numbers from 0 to {n}, the examples",
    )
    total = int(counts.sum())
    if torch.equal(matrix.long(), expected.T):
        fail(
            "the matrix is transposed: rows are the true classes, columns the predicted ones — "
            "matrix[label, predicted]",
            TRANSPOSED_MATRIX,
        )
    batches = list(zip(labels.split(i["batch"]), predicted.split(i["batch"]), strict=True))
    once = sum(torch.bincount(t * 10 + p, minlength=100).clamp(max=1) for t, p in batches).view(10, 10)
    last = torch.bincount(batches[-1][0] * 10 + batches[-1][1], minlength=100).view(10, 10)
    typical = [(once, REPEATS_ONCE), (last, MATRIX_PER_BATCH)]
    need(
        total == n,
        f"the counts add up to {total}, expected {n}, one per example"
        + (
            " — create the matrix once, before the loop over batches, so that every batch adds to it; "
            "and matrix[labels, predicted] += 1 counts a pair that repeats within a batch only once: "
            "use torch.bincount, or index_put_(..., accumulate=True)"
            if total < n
            else ""
        ),
        next((m for counts, m in typical if torch.equal(matrix.long(), counts)), None),
    )
    need(
        torch.equal(matrix.long(), expected),
        "the counts differ from the model's predictions: matrix[true class, predicted class] should count "
        "the examples of each pair, over every batch, with the predicted class the model's argmax",
    )
    twice = value(a, "twice")
    need(isinstance(twice, list) and len(twice) == 2, f"confusion_matrix's two runs: got {kind(twice)}")
    first, second = twice
    need(
        isinstance(first, torch.Tensor) and isinstance(second, torch.Tensor) and torch.equal(first, second),
        "confusion_matrix gave different counts for the same data: call model.eval() so dropout is off",
        NO_EVAL_MODE,
    )
    return (
        "confusion_matrix: rows the true classes, columns the predicted, every example counted once, in "
        "evaluation mode"
    )


confusion = Check(
    "test_confusion",
    after="confusion",
    judge=_judge_confusion,
    ask=_ask_confusion,
    given=lambda ns: _confusion_inputs(None),
    hidden=_confusion_inputs,
    nonfinite_shows=NOT_FINITE,
)


# ------------------------------------------------------------------------------------- precision and recall
def _matrix_inputs(g: torch.Generator) -> Inputs:
    """A confusion matrix the grader draws: counts from 100 to 900 on the diagonal, up to 60 off it, with
    other row and column sums (so that swapping them shows) and no class always right."""
    matrix = torch.randint(0, 60, (10, 10), generator=g) * (torch.rand(10, 10, generator=g) < 0.6)
    matrix += torch.diag(torch.randint(100, 900, (10,), generator=g))
    matrix[torch.arange(10), (torch.arange(10) + 1) % 10] += 1  # every class wrong at least once
    return Inputs({"matrix": matrix})


def _given_matrix(ns: dict) -> Inputs:
    matrix = pick(ns, "matrix")["matrix"]
    ok = isinstance(matrix, torch.Tensor) and tuple(matrix.shape) == (10, 10)
    need(ok, "matrix should be the (10, 10) confusion matrix of Exercise 6: run its cell again")
    matrix = cpu(matrix)
    need(
        bool((matrix.diag() > 0).all()),
        "matrix has a class with no right prediction: precision and recall need the confusion matrix of "
        "Exercise 6, made with the trained dropout_model — run its cell again",
    )
    return Inputs({"matrix": matrix})


def _ask_precision_recall(ns: dict, sent: dict) -> dict:
    import numpy as np

    answers = {}
    for name in ("precision", "recall"):
        got = lookup(ns, name)
        answers[name] = torch.from_numpy(got) if isinstance(got, np.ndarray) else cpu(got)
    return answers


def _judge_precision_recall(i: dict, a: dict) -> str:
    counts = i["matrix"].double()
    right = counts.diag()
    by_row, by_column, by_all = right / counts.sum(dim=1), right / counts.sum(dim=0), right / counts.sum()
    expected = {"precision": (by_column, "column"), "recall": (by_row, "row")}
    for name, (want, axis) in expected.items():
        got = value(a, name)
        need(
            isinstance(got, torch.Tensor),
            f"{name} should be a tensor of 10 fractions, one per class, got {kind(got)}",
        )
        expect_shape(got, (10,), name, hint="one fraction per class")
        whole = not (got.is_floating_point() or got.is_complex())
        got = got.double()
        if torch.allclose(got, want, atol=1e-4):
            continue
        other = "recall" if name == "precision" else "precision"
        if torch.allclose(got, expected[other][0], atol=1e-4):
            fail(
                f"{name} is the diagonal divided by each {expected[other][1]}'s sum: that is {other} — "
                f"{name} divides by each {axis}'s sum (rows: the true classes, columns: the predicted ones)",
                PRECISION_RECALL_SWAPPED,
            )
        if torch.allclose(got, by_all, atol=1e-4):
            fail(
                f"{name} is the diagonal divided by the total count — divide by each {axis}'s sum, "
                f"matrix.sum(dim={0 if axis == 'column' else 1})",
                DIVIDED_BY_TOTAL,
            )
        if torch.allclose(got, 100 * want, atol=1e-2):
            fail(
                f"{name} holds percentages (values up to 100): expected fractions between 0 and 1 — leave "
                "out the × 100 (the printing cell formats them)",
                PERCENTAGES_FOR_FRACTIONS,
            )
        if whole or torch.equal(got, want.floor()):
            fail(
                f"{name} holds whole numbers{seen(f' ({got.tolist()})')}: // rounds each fraction down — "
                "divide with /",
                INTEGER_DIVISION,
            )
        fail(
            f"{name} differs from the diagonal divided by each {axis}'s sum"
            + seen(f" (expected {[round(x, 3) for x in want.tolist()]})")
            + " — compute it from matrix"
        )
    return "precision (diagonal / column sums) and recall (diagonal / row sums) of every class, from matrix"


precision_recall = Check(
    "test_precision_recall",
    after="precision_recall",
    judge=_judge_precision_recall,
    ask=_ask_precision_recall,
    given=_given_matrix,
    hidden=_matrix_inputs,
    rerun=True,
    nonfinite_shows=NOT_FINITE,
)

CHECKS = [batch_accuracy, validate, train_loop, dropout_model, best_model, confusion, precision_recall]
