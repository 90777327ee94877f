"""Part 3 — Training: the checks of ``03_training.ipynb``.

Losses and the training step are recomputed by the judge from the parameters of the learner's networks, on a
batch of the check's own (the notebook's batch; at grading, a batch the grader draws); the trained network is
measured on the MNIST test images (at grading: in a hidden order, slightly perturbed, labels kept by the
judge).
"""

from __future__ import annotations

import ast
import copy
import math

import torch
from torch import nn

from checks import data
from checks.core import (
    Check,
    Inputs,
    Misconception,
    assigns_name,
    attempt,
    close,
    cpu,
    expect_close,
    expect_shape,
    fail,
    fail_if_stopped,
    hidden,
    is_close,
    kind,
    lookup,
    need,
    not_finite,
    number,
    parse_cell,
    pick,
    seen,
    state,
    state_of,
    stopped_with,
    tensor,
    value,
)
from checks.kernel import hint as hint  # check.hint(): the next hint after a failed check
from checks.part2 import UNFLATTENED
from checks.wire import Raised

_MLP = ["0.weight", "0.bias", "2.weight", "2.bias", "4.weight", "4.bias"]
_MLP_SHAPES = {  # the course's 784 → 128 → 64 → 10 network: its parameters' shapes
    "0.weight": (128, 784),
    "0.bias": (128,),
    "2.weight": (64, 128),
    "2.bias": (64,),
    "4.weight": (10, 64),
    "4.bias": (10,),
}

# ------------------------------------------------------------------------------------------ misconceptions
NOT_FINITE = not_finite(3, "A learning-rate experiment", "learning-rate")  # every check's answers: NaN or inf
_PREDICT = "Exercise 1 — predict the loss before you compute it"
_LOSS_SKELETON = "expected_loss = -math.log(...)  # the probability an untrained network gives the true class"
PROBABILITY_FOR_LOSS = Misconception(
    "probability-for-loss",
    "the probability of the true class taken for the loss",
    3,
    _PREDICT,
    "The cross-entropy of one image is −log(p), p being the probability the network gives its true class; "
    "the loss is that logarithm, not p.",
    _LOSS_SKELETON,
    "cross-entropy",
)
NEGATIVE_LOSS = Misconception(
    "loss-without-minus",
    "the logarithm of the probability taken for the loss, without its minus sign",
    3,
    _PREDICT,
    "log(p) is negative for p below 1; the cross-entropy is −log(p), so a loss is never negative.",
    _LOSS_SKELETON,
    "cross-entropy",
)
LOG_BASE_10 = Misconception(
    "log-base-10",
    "the base-10 logarithm taken for the natural one",
    3,
    _PREDICT,
    "PyTorch's losses use the natural logarithm (math.log, torch.log), not log10.",
    _LOSS_SKELETON,
    "cross-entropy",
)
NUMBER_FOR_FORMULA = Misconception(
    "number-for-formula",
    "a number copied from a run taken for the formula that predicts it",
    3,
    _PREDICT,
    "The exercise is a prediction: the formula (−log of the probability an untrained network gives each "
    "class) says why the loss starts where it does; a number typed in, rounded from a printout, says "
    "nothing.",
    _LOSS_SKELETON,
    "cross-entropy",
)
NOT_UNIFORM = Misconception(
    "untrained-guess-not-uniform",
    "the untrained network's guess not taken to be uniform over the 10 classes",
    3,
    _PREDICT,
    "An untrained network has no reason to prefer a class: it gives each of the 10 about the same "
    "probability, 1/10, and its loss is about −log of that.",
    _LOSS_SKELETON,
    "cross-entropy",
)
_TWO_WAYS = "Two ways to end a classifier, and the loss that goes with each"
LOG_SOFTMAX_OVER_BATCH = Misconception(
    "log-softmax-over-batch",
    "the log-softmax taken over the batch instead of each image's classes",
    3,
    _TWO_WAYS,
    "Each row holds one image's 10 scores: nn.LogSoftmax(dim=1) normalises over the classes; dim=0 would mix "
    "different images.",
    "log_model = nn.Sequential(..., nn.Linear(64, 10), nn.LogSoftmax(dim=...))",
    "softmax",
)
CE_ON_LOG_PROBABILITIES = Misconception(
    "cross-entropy-on-log-probabilities",
    "CrossEntropyLoss paired with a LogSoftmax network",
    3,
    _TWO_WAYS,
    "Two pairs go together: scores with nn.CrossEntropyLoss (it applies log-softmax itself), "
    "log-probabilities with nn.NLLLoss. CrossEntropyLoss on log-probabilities applies log-softmax twice.",
    "nll_criterion = nn....()\nnll_loss = nll_criterion(log_model(images), labels)",
    "cross-entropy",
)
LOSS_OF_OTHER_DATA = Misconception(
    "loss-of-other-data",
    "a loss computed on other images or labels than the batch asked for",
    3,
    _TWO_WAYS,
    "A loss is of one batch: the network's output for images, compared with labels — the same images and "
    "labels, in the same order.",
    "nll_loss = nll_criterion(log_model(images), ...)",
    "loss",
)
SOFTMAX_BEFORE_CE = Misconception(
    "softmax-before-cross-entropy",
    "probabilities given to CrossEntropyLoss, which wants raw scores",
    3,
    _TWO_WAYS,
    "nn.CrossEntropyLoss applies log-softmax itself: give it the scores (logits) the last Linear layer "
    "makes.",
    "ce_loss = criterion(model(images), ...)",
    "logit",
)
NLL_ON_SCORES = Misconception(
    "nll-on-scores",
    "NLLLoss given raw scores, which it takes for log-probabilities",
    3,
    _TWO_WAYS,
    "nn.NLLLoss only picks the true class's value and negates it: it expects log-probabilities. For scores, "
    "nn.CrossEntropyLoss does the log-softmax and the NLL in one.",
    "criterion = nn.CrossEntropyLoss()\nce_loss = criterion(model(images), labels)",
    "cross-entropy",
)
LOSS_PER_EXAMPLE = Misconception(
    "loss-per-example",
    "a loss per image taken for the batch's loss",
    3,
    _TWO_WAYS,
    "The loss that backward() starts from is one number, the mean over the batch (the losses' default "
    "reduction='mean').",
    "ce_loss = nn.CrossEntropyLoss()(model(images), labels)  # shape (): one number",
    "loss",
)
COPIED_LOSS = Misconception(
    "loss-copied-from-above",
    "the loss computed in a cell above taken for this exercise's answer",
    3,
    "Exercise 3 — the cross-entropy of the scores",
    "This exercise asks for the cross-entropy of model's scores, computed here: a name of another cell holds "
    "another network's loss.",
    "ce_loss = criterion(model(...), labels)",
    "cross-entropy",
)
_TASKS = "A loss for each task"
L1_FOR_MSE = Misconception(
    "absolute-for-squared-error",
    "the mean absolute error taken for the mean squared error",
    3,
    _TASKS,
    "MSE squares each error before averaging (nn.MSELoss); nn.L1Loss averages their absolute values.",
    "regression_loss = nn.MSELoss()(predicted_price, ...)",
    "mean-squared-error",
)
SUM_FOR_MEAN = Misconception(
    "sum-for-mean",
    "the sum of the squared errors taken for their mean",
    3,
    _TASKS,
    "The mean squared error divides by the number of predictions; a sum grows with the batch size.",
    "regression_loss = nn.MSELoss()(predicted_price, true_price)  # reduction='mean', the default",
    "mean-squared-error",
)
ROOT_FOR_MEAN = Misconception(
    "root-mean-squared-error",
    "the root of the mean squared error taken for the error itself",
    3,
    _TASKS,
    "RMSE (its square root) is a figure to report, in the prices' units; the loss to train with is the mean "
    "squared error itself.",
    "regression_loss = nn.MSELoss()(predicted_price, true_price)",
    "mean-squared-error",
)
DOUBLE_SIGMOID = Misconception(
    "sigmoid-before-bce-with-logits",
    "a sigmoid applied before BCEWithLogitsLoss, which applies its own",
    3,
    _TASKS,
    "BCEWithLogitsLoss takes raw scores and applies the sigmoid itself (more accurately than a separate "
    "one).",
    "binary_loss = nn.BCEWithLogitsLoss()(spam_scores, ...)",
    "binary-cross-entropy",
)
CE_FOR_YES_NO = Misconception(
    "cross-entropy-for-yes-no",
    "CrossEntropyLoss, the loss for one class of several, used for a yes/no label",
    3,
    _TASKS,
    "nn.CrossEntropyLoss takes one score per class and a softmax over them: given one score per email, it "
    "takes the emails for the classes of a single example. A yes/no label has one score, through a sigmoid: "
    "the binary cross-entropy.",
    "binary_loss = nn....()(spam_scores, is_spam)  # the table's loss for yes or no",
    "binary-cross-entropy",
)
REGRESSION_FOR_YES_NO = Misconception(
    "regression-loss-for-yes-no",
    "a regression loss (squared error) for a yes/no task",
    3,
    _TASKS,
    "A yes/no task predicts a probability: the binary cross-entropy, −log of the probability given to the "
    "right answer, is its loss; squared errors are for quantities.",
    "binary_loss = nn.BCEWithLogitsLoss()(spam_scores, is_spam)",
    "binary-cross-entropy",
)
NO_STEP = Misconception(
    "backward-for-step",
    "backward() taken to update the weights",
    3,
    "Optimizers",
    "loss.backward() only computes gradients; optimizer.step() is what changes the weights.",
    "optimizer.zero_grad()\nloss = criterion(model(images), labels)\nloss.backward()\noptimizer....()",
    "optimizer",
)
GRADIENTS_ACCUMULATE = Misconception(
    "gradients-not-cleared",
    "gradients taken to start from zero at each backward()",
    3,
    "Optimizers",
    "backward() adds to the .grad the parameters already hold: without optimizer.zero_grad() first, old "
    "gradients are added to the new ones.",
    "optimizer.zero_grad()  # first\nloss = criterion(model(images), "
    "labels)\nloss.backward()\noptimizer.step()",
    "gradient",
)
CELL_RAN_AGAIN = Misconception(
    "cell-run-again",
    "a cell run again taken to start again from the same weights",
    3,
    "Optimizers",
    "Each run of a training cell steps on from where the last run stopped: the model object keeps its "
    "weights. Recreate the starting point (the cell above) to redo a step.",
    "# run `model_before = copy.deepcopy(model)`'s cell again, then this one once",
    "step",
)
LOSS_OF_AN_EARLIER_CELL = Misconception(
    "loss-of-an-earlier-cell",
    "a loss computed in an earlier cell taken to be computed again by backward()",
    3,
    "Optimizers",
    "backward() walks the graph that the forward pass recorded, and frees it as it goes: a loss that has "
    "been through backward() once cannot be used again. Each step computes its own loss, from the model's "
    "output for this batch.",
    "optimizer.zero_grad()\nloss = criterion(model(...), labels)  # this step's own loss\nloss.backward()\n"
    "optimizer.step()",
    "computational-graph",
)
_TRAINING = "Exercise 6 — the training loop: your learning rate, your epochs"
UNDERTRAINED = Misconception(
    "undertrained",
    "a network that learned too little: too few steps, too small a learning rate, or gradients never cleared",
    3,
    "A learning-rate experiment",
    "How far training gets depends on the number of steps and their size: a learning rate that is too small "
    "needs many epochs; gradients that are never cleared make every step wrong.",
    "optimizer = optim.SGD(model.parameters(), lr=...)\nfor epoch in range(...):\n    for images, labels in "
    "trainloader:\n        optimizer.zero_grad()\n        ...",
    "learning-rate",
)
LR_TOO_LARGE = Misconception(
    "learning-rate-too-large",
    "a learning rate so large that the steps overshoot",
    3,
    "A learning-rate experiment",
    "Too large a step jumps across the valley of the loss instead of down into it: the loss jumps about or "
    "rises. A smaller learning rate, as the experiment shows.",
    "optimizer = optim.SGD(model.parameters(), lr=...)  # the experiment's best",
    "learning-rate",
)
OVER_BUDGET = Misconception(
    "over-the-epoch-budget",
    "more epochs taken for a better decision",
    3,
    _TRAINING,
    "The goal is 90% within 5 epochs: the learning rate, not the number of epochs, is the decision to make.",
    "optimizer = optim.SGD(model.parameters(), lr=...)\nepochs = ...  # at most 5",
    "epoch",
)
LOSS_NOT_AVERAGED = Misconception(
    "epoch-loss-not-averaged",
    "an epoch's total loss taken for its average",
    3,
    _TRAINING,
    "Each batch's loss is already a mean over its images; an epoch's average is the mean of its batches' "
    "losses, about the loss of one image, not their sum (which grows with the number of batches).",
    "train_losses.append(running_loss / len(trainloader))  # running_loss: the epoch's loss.item() added up",
    "epoch",
)
LOSSES_NOT_RECORDED = Misconception(
    "losses-not-recorded",
    "the training loss not recorded, epoch by epoch",
    3,
    _TRAINING,
    "A training curve is how you see training work: append each epoch's average loss, the mean of its "
    "batches' losses, to train_losses.",
    "train_losses.append(running_loss / len(trainloader))  # running_loss: the epoch's loss.item() added up",
    "epoch",
)
LOSS_DIVIDED_AGAIN = Misconception(
    "batch-mean-divided-again",
    "each batch's loss, already a mean over its images, divided again by the number of images",
    3,
    _TRAINING,
    "nn.CrossEntropyLoss gives a batch's mean loss per image. Added up over an epoch, divide by the number "
    "of batches, len(trainloader), not by the number of images.",
    "train_losses.append(running_loss / len(...))  # running_loss: the epoch's loss.item() added up",
    "epoch",
)
LOSS_PER_BATCH = Misconception(
    "loss-per-batch-recorded",
    "each batch's loss recorded where each epoch's average was asked for",
    3,
    _TRAINING,
    "train_losses holds one number per epoch: add up the batches' losses inside the loop over batches, and "
    "append their mean once, after it.",
    "for epoch in range(epochs):\n    running_loss = 0\n    for images, labels in ...:\n        ...\n"
    "        running_loss += loss.item()\n    train_losses.append(...)",
    "epoch",
)


def _mlp(weights: dict) -> nn.Sequential:
    """The course's 784 → 128 → 64 → 10 network with ``weights`` (a state_dict the kernel sent, its keys and
    shapes checked by :func:`_weights`)."""
    model = nn.Sequential(nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 64), nn.ReLU(), nn.Linear(64, 10))
    model.load_state_dict({k: weights[k] for k in _MLP})
    return model


def _weights(a: dict, name: str, label: str, other: str) -> dict:
    """The state_dict answer ``name`` of the course's network: its keys (``other`` says what else it is), then
    its shapes, checked before any arithmetic."""
    weights = value(a, name, label)
    need(isinstance(weights, dict) and sorted(weights) == sorted(_MLP), other)
    return state(a, name, _MLP_SHAPES, label)


def _batch(g: torch.Generator) -> Inputs:
    return Inputs(
        {
            "images": torch.randn(64, 784, generator=g).clamp(-1, 1),
            "labels": torch.randint(0, 10, (64,), generator=g),
        }
    )


def _given_batch(ns: dict) -> Inputs:
    found = pick(ns, "images", "labels")
    return Inputs(
        {"images": found["images"].reshape(found["images"].shape[0], -1), "labels": found["labels"]}
    )


# ------------------------------------------------------------------------------ an answer cell that stopped
# ------------------------------------------------------------------------------------------ log-softmax
def _ask_log_softmax(ns: dict, sent: dict) -> dict:
    log_model, criterion = lookup(ns, "log_model"), lookup(ns, "nll_criterion")
    with torch.no_grad():
        return {
            "log_ps": cpu(attempt(log_model, sent["images"])) if callable(log_model) else log_model,
            "state": state_of(log_model),
            "kinds": [type(m).__name__ for m in log_model] if isinstance(log_model, nn.Sequential) else None,
            "criterion": criterion if isinstance(criterion, Raised) else type(criterion).__name__,
            "nll_loss": cpu(lookup(ns, "nll_loss")),
        }


def _judge_log_softmax(i: dict, a: dict) -> str:
    log_ps = tensor(a, "log_ps", "log_model(images)")
    expect_shape(log_ps, (64, 10), "log_model(images)")
    hint = "use nn.LogSoftmax(dim=1): over the 10 classes of each image"
    expect_close(
        torch.exp(log_ps).sum(dim=1),
        torch.ones(64),
        "the row sums of torch.exp(log_model(images))",
        atol=1e-4,
        hint=hint,
        misconception=LOG_SOFTMAX_OVER_BATCH,
    )
    criterion = value(a, "criterion", "nll_criterion")
    need(
        criterion == "NLLLoss",
        f"nll_criterion should be nn.NLLLoss(), got {criterion}",
        CE_ON_LOG_PROBABILITIES if criterion == "CrossEntropyLoss" else None,
    )
    nll_loss = tensor(a, "nll_loss")
    expect_shape(nll_loss, (), "nll_loss", hint="a loss is a single number (a 0-dimensional tensor)")
    kinds = a.get("kinds")
    expected_kinds = ["Linear", "ReLU", "Linear", "ReLU", "Linear", "LogSoftmax"]
    need(kinds == expected_kinds, f"log_model: expected the layers {', '.join(expected_kinds)}, got {kinds}")
    weights = _weights(
        a, "state", "log_model's parameters", f"log_model's parameters should be {', '.join(_MLP)}"
    )
    with torch.no_grad():
        scores = _mlp(weights)(i["images"])
    hint = "log_model is the network of the cell above followed by nn.LogSoftmax(dim=1)"
    expect_close(log_ps, torch.log_softmax(scores, dim=1), "log_model(images)", atol=1e-4, hint=hint)
    hint = (
        "NLLLoss on log-softmax outputs equals CrossEntropyLoss on the scores: "
        "nll_criterion(log_model(images), labels)"
    )
    # log_model and the criterion are right by now: a loss that differs is of other images or labels
    expected = nn.CrossEntropyLoss()(scores, i["labels"])
    expect_close(nll_loss, expected, "nll_loss", atol=1e-4, hint=hint, misconception=LOSS_OF_OTHER_DATA)
    return "log-probabilities (the rows of their exp sum to 1) and their NLLLoss" + seen(
        f", {nll_loss.item():.4f}"
    )


log_softmax = Check(
    "test_log_softmax",
    after="log_softmax",
    judge=_judge_log_softmax,
    ask=_ask_log_softmax,
    given=_given_batch,
    hidden=_batch,
    rerun=True,
    nonfinite_shows=NOT_FINITE,
)


# ---------------------------------------------------------------------------------------- the loss, predicted
_MAX_SOURCE = 20_000  # characters of a cell's source sent to the judge


def _ask_expected(ns: dict, sent: dict) -> dict:
    expected = lookup(ns, "expected_loss")
    if isinstance(expected, torch.Tensor) and expected.numel() == 1:
        expected = expected.item()
    # in the notebook: the latest cell that assigns expected_loss, as IPython keeps it (at grading the judge
    # reads the answer cell as the grader holds it)
    history = ns.get("In")
    source = next(
        (s for s in reversed(history) if assigns_name(s, "expected_loss"))
        if isinstance(history, list)
        else (),
        None,
    )
    return {"expected_loss": expected, "source": source[:_MAX_SOURCE] if source else None}


def _written_number(source: str) -> str | None:
    """The number the cell's last top-level assignment of expected_loss writes out (a literal, its sign or
    arithmetic of literals, float("…")), as written; None for a formula (or no such assignment)."""
    tree = parse_cell(source)
    if tree is None:
        return None
    values = [
        node.value
        for node in tree.body
        if (
            isinstance(node, ast.Assign)
            and any(isinstance(t, ast.Name) and t.id == "expected_loss" for t in node.targets)
        )
        or (
            isinstance(node, ast.AnnAssign)
            and isinstance(node.target, ast.Name)
            and node.target.id == "expected_loss"
        )
    ]
    if not values or values[-1] is None:
        return None
    for node in ast.walk(values[-1]):
        if isinstance(node, ast.Call):
            if not (isinstance(node.func, ast.Name) and node.func.id in ("float", "int")):
                return None
        elif isinstance(node, ast.Name):
            if node.id not in ("float", "int"):
                return None
        elif isinstance(node, ast.Attribute | ast.Subscript | ast.Lambda | ast.NamedExpr):
            return None
    try:
        text = ast.unparse(values[-1])
    except (RecursionError, ValueError):
        return "a number"
    return text if len(text) <= 40 else text[:39] + "…"


def _judge_expected(i: dict, a: dict) -> str:
    expected = value(a, "expected_loss")
    need(
        isinstance(expected, int | float) and not isinstance(expected, bool),
        f"expected_loss should be a Python float, got {kind(expected)}",
    )
    expected = number(a, "expected_loss")  # finite: NaN is close to nothing, not "not far" from ln 10
    ln10 = math.log(10)
    if not close(expected, ln10, 0.02):
        if close(expected, 0.1, 0.02):
            fail(
                f"expected_loss is {expected:g}, the probability an untrained network gives the true class; "
                "the cross-entropy is minus the logarithm of that probability",
                PROBABILITY_FOR_LOSS,
            )
        if close(expected, -ln10, 0.02):
            fail(
                f"expected_loss is {expected:g}: a loss is never negative, −log(p) with p below 1 is "
                f"positive",
                NEGATIVE_LOSS,
            )
        if close(expected, 1, 0.02):
            fail(
                f"expected_loss is {expected:g}, −log10(1/10): the cross-entropy uses the natural logarithm "
                "(math.log, torch.log)",
                LOG_BASE_10,
            )
        fail(
            f"expected_loss is {expected:g}: an untrained network gives each of the 10 classes about the "
            "same probability, so each image's loss is about −log(that probability) — what is it?",
            NOT_UNIFORM,
        )
    # at grading: the answer cell as the grader holds it (grader.verdicts.judge_one); in the notebook: as
    # IPython keeps it
    source = a.get("$source") if hidden() else a.get("source")
    written = _written_number(source) if isinstance(source, str) else None
    need(
        written is None,
        f"expected_loss is written as a number, {written}: the exercise asks for the formula that gives it",
        NUMBER_FOR_FORMULA,
    )
    need(
        close(expected, ln10, 1e-6),
        f"expected_loss is {expected:.6g}, a number near the loss but not the formula's value: the exercise "
        "asks for the formula that gives it",
        NUMBER_FOR_FORMULA,
    )
    return f"expected_loss = {expected:.4f}: −log(1/10) = ln 10, the loss of a network that guesses uniformly"


expected_loss = Check(
    "test_expected_loss",
    after="expected_loss",
    judge=_judge_expected,
    ask=_ask_expected,
    given=lambda ns: Inputs(),
    hidden=lambda g: Inputs(),
    rerun=True,  # at grading the cell runs again from the grader's copy of its source, which the judge reads
    nonfinite_shows=NOT_FINITE,
)


# ------------------------------------------------------------------------------------------ cross-entropy
def _ask_ce(ns: dict, sent: dict) -> dict:
    ce_loss = lookup(ns, "ce_loss")
    copied = [
        name for name in ("loss", "nll_loss") if isinstance(ce_loss, torch.Tensor) and ce_loss is ns.get(name)
    ]
    return {"ce_loss": cpu(ce_loss), "state": state_of(lookup(ns, "model")), "copied": copied}


def _judge_ce(i: dict, a: dict) -> str:
    ce_loss = tensor(a, "ce_loss")
    copied = value(a, "copied")
    need(isinstance(copied, list), f"copied: expected a list, got {kind(copied)}")
    need(
        not copied,
        f"ce_loss is the very tensor `{copied[0] if copied else ''}` computed above, in another cell: this "
        "exercise asks for the cross-entropy of model's scores, computed in this cell",
        COPIED_LOSS,
    )
    hint = "a loss is a single number (a 0-dimensional tensor)"
    expect_shape(ce_loss, (), "ce_loss", hint=hint, like=[((64,), LOSS_PER_EXAMPLE)])
    weights = _weights(
        a,
        "state",
        "model's parameters",
        "model is not the network of the first cell any more: run the notebook from the top",
    )
    with torch.no_grad():
        scores = _mlp(weights)(i["images"])
    squashed = nn.CrossEntropyLoss()(torch.softmax(scores, dim=1), i["labels"])
    if is_close(ce_loss, squashed, atol=1e-6, rtol=0):
        fail(
            f"ce_loss is {ce_loss.item():.4f}, the cross-entropy of softmax(scores): CrossEntropyLoss "
            "applies log-softmax itself, so it takes the raw scores",
            SOFTMAX_BEFORE_CE,
        )
    hint = "expected the cross-entropy of model's raw scores for images, against labels"
    like = [(nn.NLLLoss()(scores, i["labels"]), NLL_ON_SCORES)]
    expected = nn.CrossEntropyLoss()(scores, i["labels"])
    expect_close(ce_loss, expected, "ce_loss", atol=1e-5, hint=hint, like=like)
    return "ce_loss is the cross-entropy of the raw scores" + seen(f": {ce_loss.item():.4f}")


ce_loss = Check(
    "test_ce_loss",
    after="ce_loss",
    judge=_judge_ce,
    ask=_ask_ce,
    given=_given_batch,
    hidden=_batch,
    rerun=True,
    nonfinite_shows=NOT_FINITE,
)


# ------------------------------------------------------------------------------------------ a loss per task
def _task_inputs(g: torch.Generator) -> Inputs:
    n = int(torch.randint(6, 12, (1,), generator=g))
    return Inputs(
        {
            "predicted_price": torch.randn(n, generator=g) + 3,
            "true_price": torch.randn(n, generator=g) + 3,
            "spam_scores": 2 * torch.randn(n, generator=g),
            "is_spam": torch.randint(0, 2, (n,), generator=g).float(),
        }
    )


def _given_task(ns: dict) -> Inputs:
    return Inputs(pick(ns, "predicted_price", "true_price", "spam_scores", "is_spam"))


def _ask_task(ns: dict, sent: dict) -> dict:
    return {
        "regression_loss": cpu(lookup(ns, "regression_loss")),
        "binary_loss": cpu(lookup(ns, "binary_loss")),
    }


def _judge_task(i: dict, a: dict) -> str:
    predicted, true = i["predicted_price"], i["true_price"]
    regression = tensor(a, "regression_loss")
    expect_shape(regression, (), "regression_loss", hint="a loss is a single number (a 0-dimensional tensor)")
    mse = nn.MSELoss()(predicted, true)
    if not is_close(regression, mse, atol=1e-5):
        others = {
            "the mean absolute error (nn.L1Loss)": (nn.L1Loss()(predicted, true), L1_FOR_MSE),
            "the sum of the squared errors, not their mean": (
                nn.MSELoss(reduction="sum")(predicted, true),
                SUM_FOR_MEAN,
            ),
            "the root of the mean squared error": (nn.MSELoss()(predicted, true).sqrt(), ROOT_FOR_MEAN),
        }
        for name, (loss, misconception) in others.items():
            if is_close(regression, loss, atol=1e-5):
                fail(f"regression_loss is {name}: the task asks for the mean squared error", misconception)
    hint = "expected the mean squared error of the predicted prices against the true ones"
    expect_close(regression, mse, "regression_loss", atol=1e-5, hint=hint)
    scores, targets = i["spam_scores"], i["is_spam"]
    binary = tensor(a, "binary_loss")
    expect_shape(binary, (), "binary_loss", hint="a loss is a single number (a 0-dimensional tensor)")
    bce = nn.BCEWithLogitsLoss()(scores, targets)
    if is_close(binary, nn.BCEWithLogitsLoss()(torch.sigmoid(scores), targets), atol=1e-5):
        fail(
            "binary_loss is BCEWithLogitsLoss of sigmoid(spam_scores): the sigmoid is applied twice — "
            "BCEWithLogitsLoss takes the raw scores and applies the sigmoid itself",
            DOUBLE_SIGMOID,
        )
    if is_close(binary, nn.CrossEntropyLoss()(scores, targets), atol=1e-5):
        fail(
            "binary_loss is CrossEntropyLoss of spam_scores: it takes the emails for the classes of one "
            "example — a yes/no label has one score of its own, and its own loss",
            CE_FOR_YES_NO,
        )
    hint = "expected the binary cross-entropy of the raw scores against is_spam"
    like = [
        (nn.MSELoss()(scores, targets), REGRESSION_FOR_YES_NO),
        (nn.MSELoss()(torch.sigmoid(scores), targets), REGRESSION_FOR_YES_NO),
    ]
    expect_close(binary, bce, "binary_loss", atol=1e-5, hint=hint, like=like)
    return (
        "regression_loss is the mean squared error, binary_loss the binary cross-entropy of the scores"
        + seen(f": {regression.item():.4f} and {binary.item():.4f}")
    )


task_losses = Check(
    "test_task_losses",
    after="task_losses",
    judge=_judge_task,
    ask=_ask_task,
    given=_given_task,
    hidden=_task_inputs,
    rerun=True,
    nonfinite_shows=NOT_FINITE,
)


# ------------------------------------------------------------------------------------------ one step
def _step_inputs(g: torch.Generator) -> Inputs:
    generator = torch.Generator().manual_seed(int(torch.randint(0, 2**31, (1,), generator=g)))
    with torch.random.fork_rng():
        torch.manual_seed(generator.initial_seed())
        before = nn.Sequential(
            nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 64), nn.ReLU(), nn.Linear(64, 10)
        )
    return Inputs({"before": state_of(before), **_batch(g).sent})


def _bind_step(ns: dict, sent: dict) -> dict:
    model = _mlp(sent["before"])
    return {
        "model": model,
        "model_before": copy.deepcopy(model),
        "images": sent["images"],
        "labels": sent["labels"],
        "criterion": nn.CrossEntropyLoss(),
    }


def _given_step(ns: dict) -> Inputs:
    before = pick(ns, "model_before")["model_before"]
    return Inputs({"before": state_of(before), **_given_batch(ns).sent})


def _optimizer_of(ns: dict, weight: object) -> dict | None:
    """The optimizer of the notebook that updates ``weight`` (``optimizer`` first, else the only one): its
    kind and its first group's settings; None when there is none."""
    found = next(
        (
            o
            for o in [ns.get("optimizer"), *ns.values()]
            if isinstance(o, torch.optim.Optimizer)
            and any(p is weight for group in o.param_groups for p in group.get("params", []))
        ),
        None,
    )
    if found is None:
        return None
    group = found.param_groups[0]
    settings = {
        key: float(group[key]) if isinstance(group[key], torch.Tensor) else group[key]
        for key in ("lr", "momentum", "dampening", "weight_decay", "nesterov", "maximize")
        if key in group
    }
    return {"kind": type(found).__name__, **settings}


def _ask_step(ns: dict, sent: dict) -> dict:
    model = lookup(ns, "model")
    # Exercise 6's cell (it is given train_losses = []) makes an optimizer too: its errors are its own
    stopped = stopped_with(ns, "optimizer", model, unless=("train_losses",))
    if stopped is not None:  # the latest run of the answer cell stopped: the model is half-stepped, or not
        return {"stopped": stopped}
    first = attempt(lambda: model[0].weight)
    grad = attempt(lambda: model[0].weight.grad)
    return {
        "weight": cpu(first),
        "grad": cpu(grad),  # what the last step used (a plain SGD step: lr × grad)
        "optimizer": attempt(_optimizer_of, ns, first),
    }


def _sgd_steps(i: dict, steps: int, backward: int = 1, softmax: bool = False) -> torch.Tensor:
    """The first layer's weights after ``steps`` SGD steps (lr=0.01) from ``before``; a step's gradient
    counted ``backward`` times (a typical mistake: the gradient of the Autograd section's backward(), on the
    same batch and weights, not cleared; ``softmax``: another, probabilities given to the loss)."""
    net = _mlp(i["before"])
    sgd = torch.optim.SGD(net.parameters(), lr=0.01)
    for _ in range(steps):
        sgd.zero_grad()
        for _ in range(backward):
            scores = net(i["images"])
            scores = torch.softmax(scores, dim=1) if softmax else scores
            nn.CrossEntropyLoss()(scores, i["labels"]).backward()
        sgd.step()
    return net[0].weight.detach()


_RUNS = 3  # the most runs of the step's cell the judge retraces


def _runs_of_the_cell(i: dict, weight: torch.Tensor) -> tuple[int, bool] | None:
    """Whether the first layer's weights are those of 2 to _RUNS runs of a training step, each from where the
    last one stopped: each run with optimizer.zero_grad() before its step or not, after it or not, from a
    model that held no gradient or the gradient of the Autograd section's backward() (on the same batch and
    weights). The number of runs, and whether every step was a right one (from cleared gradients); None for
    none of these (a single run's mistake is for the caller to name)."""
    net = _mlp(i["before"])
    names = [name for name, _ in net.named_parameters()]
    images, labels = i["images"], i["labels"]
    fresh = {}  # a parameter list's id → (the list, its gradient on the batch): each computed once

    def gradient(params: list[torch.Tensor]) -> list[torch.Tensor]:
        if id(params) not in fresh:
            leaves = [p.detach().requires_grad_() for p in params]
            with torch.enable_grad():
                scores = torch.func.functional_call(net, dict(zip(names, leaves, strict=True)), (images,))
                grads = torch.autograd.grad(nn.CrossEntropyLoss()(scores, labels), leaves)
            fresh[id(params)] = (params, [g.detach() for g in grads])
        return fresh[id(params)][1]

    def near(first: torch.Tensor) -> bool:  # as is_close, its first row first (most differ there already)
        return is_close(weight[:1], first[:1], atol=1e-6, rtol=1e-4) and is_close(
            weight, first, atol=1e-6, rtol=1e-4
        )

    start = [p.detach().clone() for p in net.parameters()]
    # a state: the weights, the gradient the parameters hold, the runs so far, whether every step was right
    states = [(start, None, 0, True), (start, gradient(start), 0, True)]
    with torch.no_grad():
        for _ in range(_RUNS):
            following = []
            for params, held, runs, right in states:
                g = gradient(params)
                for cleared in (True, False) if held is not None else (True,):
                    used = g if cleared else [a + b for a, b in zip(held, g, strict=True)]
                    moved = [p - 0.01 * u for p, u in zip(params, used, strict=True)]
                    following.append((moved, None, runs + 1, right and cleared))  # zero_grad() after it
                    following.append((moved, used, runs + 1, right and cleared))  # or not
            states = following
            for params, _, runs, right in states[::2]:  # each weight twice: zero_grad() after the step or not
                if runs >= 2 and near(params[0]):
                    return runs, right
    return None


def _plain_sgd(optimizer: object) -> float | None:
    """The learning rate of an SGD whose first step is lr × grad (no Nesterov, weight decay or maximize);
    None for any other optimizer."""
    if not isinstance(optimizer, dict) or optimizer.get("kind") != "SGD":
        return None
    lr = optimizer.get("lr")
    plain = (
        not optimizer.get("nesterov") and not optimizer.get("maximize") and optimizer.get("weight_decay") == 0
    )
    return float(lr) if plain and isinstance(lr, float) and math.isfinite(lr) and lr > 0 else None


_RUN_AGAIN = (
    " Each run steps on from where the last one stopped. Run the cell above (model_before = "
    "copy.deepcopy(model)) again, then this cell once"
)


def _ran_again(i: dict, weight: torch.Tensor, stale: bool = False) -> None:
    """Fail, saying which cells to run again, when the weights are those of several runs of a step
    (:func:`_runs_of_the_cell`), or (``stale``) when the last step started from weights that had already
    moved."""
    found = _runs_of_the_cell(i, weight)
    if found is None and stale:
        fail(
            "the last step did not start from model_before's weights: the model had already moved, in an "
            "earlier run of this cell or an earlier step in it." + _RUN_AGAIN,
            CELL_RAN_AGAIN,
        )
    if found is not None:
        runs, right = found
        fail(
            (
                f"the weights moved as far as {runs} correct steps: did this cell run {runs} times?"
                if right
                else f"the weights moved as far as {runs} steps, one after the other, from model_before's "
                "weights: did this cell run more than once (an earlier version of it too)?"
            )
            + _RUN_AGAIN,
            CELL_RAN_AGAIN,
        )


_STEP_CRASHES = [(r"backward through the graph a second time", LOSS_OF_AN_EARLIER_CELL)]


def _copied_after_a_step(i: dict, grad: object) -> None:
    """Weights that are model_before's: fail, saying which cells to run, when the first layer's gradient
    was not computed at those weights on this batch (nor is a multiple of it, a gradient never cleared), so
    the model stepped before model_before copied it."""
    before = i["before"]["0.weight"]
    usable = isinstance(grad, torch.Tensor) and tuple(grad.shape) == tuple(before.shape)
    if not (usable and grad.is_floating_point() and bool(torch.isfinite(grad).all())):
        return
    net = _mlp(i["before"])
    with torch.enable_grad():
        nn.CrossEntropyLoss()(net(i["images"]), i["labels"]).backward()
    fresh, grad = net[0].weight.grad.double(), grad.double()
    if not (grad.abs().max() > 0 and fresh.abs().max() > 0):
        return
    scale = (grad * fresh).sum() / (fresh * fresh).sum()
    off = ((grad - scale * fresh).abs().max() / fresh.abs().max()).item()
    need(
        off <= 1e-3,
        "the weights are model_before's, yet the gradient they hold was computed at other weights: was "
        "model_before copied after this cell had stepped? Run the cell above (model_before = "
        "copy.deepcopy(model)), then this cell once",
        CELL_RAN_AGAIN,
    )


def _judge_step(i: dict, a: dict) -> str:
    fail_if_stopped(a, _STEP_CRASHES)
    weight = tensor(a, "weight", "the first layer's weights (model[0].weight)")
    before = i["before"]["0.weight"]
    expect_shape(weight, tuple(before.shape), "model[0].weight")
    moved = (weight - before).abs().max().item()
    if moved == 0:
        _copied_after_a_step(i, a.get("grad"))
        fail("the weights did not change — call loss.backward() and then optimizer.step()", NO_STEP)
    optimizer = a.get("optimizer")
    need(
        isinstance(optimizer, dict),
        "no optimizer updates model's parameters: the exercise asks for optimizer, SGD over "
        "model.parameters() with lr=0.01",
    )
    # a step that did not start from model_before's weights (before any other diagnosis): SGD's step is
    # lr × the gradient the parameters hold after it, so weight + lr × grad is where the last step started
    grad, lr = a.get("grad"), _plain_sgd(optimizer)
    if lr is not None and isinstance(grad, torch.Tensor) and tuple(grad.shape) == tuple(before.shape):
        grad = grad.to(weight.dtype)
        started = (weight + lr * grad - before).abs().max().item()
        if bool(grad.abs().max() > 0) and not started <= max(0.05 * moved, 1e-7):
            _ran_again(i, weight, stale=True)
    shown = ("lr", "momentum", "nesterov", "weight_decay", "maximize")
    settings = ", ".join(f"{k}={v}" for k, v in optimizer.items() if k in shown and (k == "lr" or v))
    need(
        _plain_sgd(optimizer) is not None and close(optimizer.get("lr"), 0.01, 1e-9),
        f"optimizer: expected optim.SGD over model.parameters() with lr=0.01, got {optimizer.get('kind')} "
        f"({settings})",
    )
    expected = _sgd_steps(i, 1)
    label = "the first layer's weights after one step"
    # one step whose gradient was counted twice: the Autograd section's, not cleared, added to this step's
    doubled = _sgd_steps(i, 1, backward=2)
    if is_close(weight, doubled, atol=1e-6, rtol=1e-4):
        hint = (
            "one SGD step with lr=0.01 on a fresh gradient: did you call optimizer.zero_grad() "
            "before loss.backward()? Gradients accumulate across backward() calls"
        )
        expect_close(weight, expected, label, atol=1e-6, hint=hint, like=[(doubled, GRADIENTS_ACCUMULATE)])
    if not is_close(weight, expected, atol=1e-6, rtol=1e-4):
        _ran_again(i, weight)  # the gradients cleared after the step: the weights alone can tell
    softmaxed = _sgd_steps(i, 1, softmax=True)
    if is_close(weight, softmaxed, atol=1e-6, rtol=1e-4):
        hint = "one SGD step on the loss of the raw scores: criterion(model(images), labels), no softmax"
        expect_close(weight, expected, label, atol=1e-6, hint=hint, like=[(softmaxed, SOFTMAX_BEFORE_CE)])
    hint = (
        "expected one SGD step with lr=0.01 from model_before's weights, on a fresh gradient: call "
        "optimizer.zero_grad() before loss.backward() (gradients add up across backward() calls); if this "
        "cell ran before, run the cell above (model_before = copy.deepcopy(model)) again, then this cell once"
    )
    expect_close(weight, expected, label, atol=1e-6, hint=hint)
    return "one training step: the first layer moved exactly one SGD step (lr=0.01) down a fresh gradient"


one_step = Check(
    "test_one_step",
    after="one_step",
    judge=_judge_step,
    ask=_ask_step,
    given=_given_step,
    hidden=_step_inputs,
    rerun=True,
    bind=_bind_step,
    nonfinite_shows=NOT_FINITE,
)


# ------------------------------------------------------------------------------------------ training loop
def mnist_inputs(fashion: bool, g: torch.Generator | None) -> Inputs:
    """The test images (pixels sent) and their labels (kept): in order in the notebook, hidden at grading."""
    pixels, labels = data.mnist(train=False, fashion=fashion)
    if g is not None:
        pixels, labels = data.perturbed(pixels, labels, g)
    return Inputs({"pixels": pixels}, {"labels": labels})


def _ask_training(ns: dict, sent: dict) -> dict:
    model = lookup(ns, "model")
    stopped = stopped_with(ns, "train_losses", model)
    if stopped is not None:  # what it left is half-made: nothing else to judge
        return {"stopped": stopped}
    losses = lookup(ns, "train_losses")
    return {
        "train_losses": [float(x) for x in losses] if isinstance(losses, list | tuple) else losses,
        "scores": model if isinstance(model, Raised) else data.scores(model, sent["pixels"]),
    }


_CRASHES = [(r"shapes cannot be multiplied \(\d+x28 and 784x", UNFLATTENED)]  # Part 2's


def _judge_training(i: dict, a: dict) -> str:
    fail_if_stopped(a, _CRASHES)
    losses = value(a, "train_losses")
    need(isinstance(losses, list), f"train_losses should be a list of each epoch's loss, got {kind(losses)}")
    need(
        all(isinstance(x, int | float) and not isinstance(x, bool) for x in losses),
        "train_losses should hold numbers, each epoch's average loss (use .item())",
    )
    need(len(losses) >= 1, "train_losses is empty: append each epoch's average loss", LOSSES_NOT_RECORDED)
    need(  # no one plans 50 epochs for this goal: one loss a batch
        len(losses) <= 50,
        f"train_losses has {len(losses)} numbers, about one per batch: append one per epoch, the mean of its "
        "batches' losses, after the loop over its batches",
        LOSS_PER_BATCH,
    )
    need(
        len(losses) <= 5,
        f"train_losses has {len(losses)} epochs; the goal is 90% in at most 5 — a larger learning rate gets "
        "there in fewer (the experiment above)",
        OVER_BUDGET,
    )
    shown = ", ".join(f"{x:.3g}" for x in losses)
    need(
        all(math.isfinite(x) for x in losses) and (losses[-1] < losses[0] or len(losses) == 1),
        f"the training loss did not go down ({shown}): steps that overshoot, as lr = 0.3 did in the "
        "experiment above — try a smaller learning rate; and call optimizer.zero_grad() in every step",
        LR_TOO_LARGE,
    )
    scores = tensor(a, "scores", "model(images)")
    expect_shape(scores, (len(i["labels"]), 10), "model's scores for the test images")
    test_accuracy = data.accuracy(scores, i["labels"])
    need(
        test_accuracy >= 0.90,
        f"test accuracy {test_accuracy:.1%}, expected at least 90% in at most 5 epochs; your training losses "
        f"were {shown} — still falling slowly: a larger learning rate (the experiment above) or more epochs; "
        "check too that you call optimizer.zero_grad() in every step",
        UNDERTRAINED,
    )
    # each epoch's average loss is about the loss of one image: the trained network's on the test images
    per_image = nn.functional.cross_entropy(scores.double(), i["labels"]).item()
    ratio = losses[-1] / per_image if per_image > 0 else 1.0
    need(
        ratio >= 1 / 8,
        f"train_losses ends at {losses[-1]:.3g}, far less than a loss per image"
        + seen(f" (the trained network's loss on a test image is {per_image:.3g} on average)")
        + ": each batch's loss is already a mean over its images, so divide the epoch's sum by the number of "
        "batches, not of images",
        LOSS_DIVIDED_AGAIN,
    )
    need(
        ratio <= 8,
        f"train_losses ends at {losses[-1]:.3g}, {'far more' if ratio > 8 else 'far less'} than a loss per "
        "image"
        + seen(f" (the trained network's loss on a test image is {per_image:.3g} on average)")
        + ": append each epoch's average loss, the mean of its batches' losses",
        LOSS_NOT_AVERAGED,
    )
    return (
        f"test accuracy {test_accuracy:.1%} (at least 90%) on the {len(i['labels']):,} test images, "
        f"after {len(losses)} epoch{'s' if len(losses) > 1 else ''}"
    )


training_loop = Check(
    "test_training_loop",
    after="training_loop",
    judge=_judge_training,
    ask=_ask_training,
    given=lambda ns: mnist_inputs(False, None),
    hidden=lambda g: mnist_inputs(False, g),
    nonfinite_shows=NOT_FINITE,
)

CHECKS = [expected_loss, log_softmax, ce_loss, task_losses, one_step, training_loop]
