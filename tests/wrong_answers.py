"""Plausible wrong answers for every graded check, and correct answers in other styles, by part (harness.py
runs them)."""

from harness import PASSES, Right, Wrong

UNTRAINED_MNIST = """
torch.manual_seed(1)
model = nn.Sequential(nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 64), nn.ReLU(), nn.Linear(64, 10))
"""

# Part 5's `train`, given but for its validation pass ({validation}, at the loop's indentation).
TRAIN_5 = """
def train(model, trainloader, validloader, epochs, lr=0.001, patience=None):
    criterion = nn.CrossEntropyLoss()
    optimizer = optim.Adam(model.parameters(), lr=lr)
    history = {{"train_loss": [], "valid_loss": [], "valid_accuracy": []}}
    best_state, best_loss = None, float("inf")
    epochs_without_improvement = 0
    for epoch in range(epochs):
        model.train()
        running_loss = 0.0
        for images, labels in trainloader:
            images, labels = images.to(device), labels.to(device)
            optimizer.zero_grad()
            loss = criterion(model(images), labels)
            loss.backward()
            optimizer.step()
            running_loss += loss.item() * labels.shape[0]
        history["train_loss"].append(running_loss / len(trainloader.dataset))
{validation}
        if patience is not None and epochs_without_improvement >= patience:
            break
    return history, best_state
"""

# A validation pass that keeps the best epoch's weights and never counts the epochs without improvement
VALIDATED = """
        valid_loss, valid_accuracy = validate(model, validloader, criterion)
        history["valid_loss"].append(valid_loss)
        history["valid_accuracy"].append(valid_accuracy)
        if valid_loss < best_loss:
            best_loss, best_state = valid_loss, copy.deepcopy(model.state_dict())
"""

# Part 7's CsvPhotos but for what __getitem__ returns ({item}, given the CSV's `row` and the photo's `path`).
CSV_PHOTOS = """
class CsvPhotos(Dataset):
    def __init__(self, csv_file, image_dir, transform=None):
        rows = list(csv.DictReader(open(csv_file)))
        self.classes = sorted({{row["label"] for row in rows}})
        self.rows, self.image_dir, self.transform = rows, Path(image_dir), transform

    def __len__(self):
        return len(self.rows)

    def __getitem__(self, index):
        row = self.rows[index]
        path = self.image_dir / row["filename"]
        {item}
"""

# Part 8's loop on photos but for its optimizer, the backbone's mode, zero_grad and epochs: on a copy of the
# model with a new classifier (the trials must leave the notebook's model as it was).
PHOTO_LOOP = """
import copy

torch.manual_seed(3)
model = copy.deepcopy(model)
model.classifier = nn.Linear(1280, 2).to(device)
criterion = nn.CrossEntropyLoss()
optimizer = {optimizer}
for epoch in range({epochs}):
    model.train()
    {mode}
    for images, labels in photo_loader:
        images, labels = images.to(device), labels.to(device)
        {zero}
        loss = criterion(model(images), labels)
        loss.backward()
        optimizer.step()
"""

WRONG = {
    "01_tensors": [
        Wrong(
            "test_broadcast_shapes",
            "shapes lined up from the left",
            'shapes = {"A": "error", "B": (3, 3), "C": (3, 3), "D": (2, 3), "E": (2, 3)}',
            'A gives (2, 3), not "error": lined up from the right',
            misconception="broadcast-from-the-left",
        ),
        Wrong(
            "test_broadcast_shapes",
            "a (3,) vector and a (3, 1) column added element by element",
            'shapes = {"A": (2, 3), "B": (3, 3), "C": (3,), "D": "error", "E": (2, 3)}',
            "C gives (3, 3), not (3,)",
            misconception="vector-pairs-with-column",
        ),
        Wrong(
            "test_broadcast_shapes",
            "sizes of 1 taken not to stretch",
            'shapes = {"A": (2, 3), "B": "error", "C": (3, 3), "D": "error", "E": "error"}',
            '2 of 5 wrong — B gives (3, 3), not "error"',
            misconception="size-one-does-not-stretch",
        ),
        Wrong(
            "test_broadcast_shapes",
            "a size of 1 taken to stay 1",
            'shapes = {"A": (2, 3), "B": (1, 3), "C": (3, 3), "D": "error", "E": (2, 3)}',
            "B gives (3, 3), not (1, 3)",
            misconception="size-one-does-not-stretch",
        ),
        Wrong(
            "test_broadcast_shapes",
            "every pair of different shapes taken for an error",
            'shapes = {"A": "error", "B": "error", "C": "error", "D": "error", "E": "error"}',
            '4 of 5 wrong — A gives (2, 3), not "error"',
            misconception="size-one-does-not-stretch",
        ),
        Wrong(
            "test_broadcast_shapes",
            "shapes written as strings",
            'shapes = {"A": "(2, 3)", "B": "(3, 3)", "C": "(3, 3)", "D": "error", "E": "(2, 3)"}',
            "is the string '(2, 3)': write a shape as a tuple of numbers",
            misconception="shape-as-text",
        ),
        Wrong(
            "test_neuron_sum",
            "no activation",
            "y = torch.sum(features * weights) + bias",
            "activation",
            misconception="neuron-without-activation",
        ),
        Wrong(
            "test_neuron_sum",
            "bias added before the sum",
            "y = activation(torch.sum(features * weights + bias)).view(1, 1)",
            "y: values differ",
            misconception="bias-added-to-every-input",
        ),
        Wrong(
            "test_neuron_sum",
            "a scalar instead of (1, 1)",
            "y = activation(torch.sum(features * weights) + bias.item())",
            "expected shape (1, 1)",
            misconception="number-for-tensor",
        ),
        Wrong(
            "test_neuron_sum",
            "bias added before the sum, its shape ()",
            "y = activation(torch.sum(features * weights + bias))",
            "y: expected shape (1, 1), got ()",
            misconception="bias-added-to-every-input",
        ),
        Wrong(
            "test_neuron_mm",
            "resize_ on weights",
            "weights = weights.clone()\ny_mm = activation(torch.mm(features, weights.resize_(5, 1)) + bias)",
            "resize_ changed weights itself",
            misconception="resize-in-place",
        ),
        Wrong(
            "test_neuron_mm",
            "element-wise product instead of matrix product",
            "y_mm = activation(features * weights + bias)",
            "expected shape (1, 1)",
            misconception="elementwise-for-matmul",
        ),
        Wrong(
            "test_neuron_mm",
            "the factors of the product swapped",
            "y_mm = activation(torch.mm(weights.view(5, 1), features) + bias)",
            "y_mm: expected shape (1, 1), got (5, 5)",
            misconception="matmul-factors-swapped",
        ),
        Wrong(
            "test_two_layer",
            "no activation on the output",
            "h = activation(torch.mm(features, W1) + B1)\noutput = torch.mm(h, W2) + B2",
            "output: values differ",
            misconception="output-without-activation",
        ),
        Wrong(
            "test_two_layer",
            "hidden layer without bias",
            "h = activation(torch.mm(features, W1))\noutput = activation(torch.mm(h, W2) + B2)",
            "h: values differ",
            misconception="layer-without-bias",
        ),
        Wrong(
            "test_two_layer",
            "weights first, the input as a column (W x)",
            "h = activation(torch.mm(W1.T, features.T) + B1.T)\noutput = activation(torch.mm(W2.T, h) + B2)",
            "h: expected shape (1, 2), got (2, 1) — its numbers are right",
            misconception="column-vector-convention",
        ),
        Wrong(
            "test_two_layer",
            "weights first, the row bias broadcast onto the column",
            "h = activation(W1.T @ features.T + B1)\noutput = activation(W2.T @ h + B2)",
            "h: expected shape (1, 2), got (2, 2)",
            misconception="column-vector-convention",
        ),
        Wrong(
            "test_numpy_bridge",
            "every from_numpy shares, conversions included",
            'changes = {"A", "C", "E", "F"}',
            "C does not change arr (t + 1 computes a new tensor",
            misconception="rebinding-for-in-place",
        ),
        Wrong(
            "test_numpy_bridge",
            "as_tensor taken for a copy, .double() for a conversion",
            'changes = {"A"}',
            "D does change arr (torch.as_tensor shares memory",
            misconception="as-tensor-copies",
        ),
        Wrong(
            "test_numpy_bridge",
            "letters in a list, lower case, one wrong",
            'changes = ["a", "d", "e", "f"]',
            "1 of 6 wrong — E does not change arr",
            misconception="conversion-shares",
        ),
        Wrong(
            "test_numpy_bridge",
            "from_numpy taken for a copy",
            'changes = {"D", "F"}',
            "A does change arr (torch.from_numpy shares",
            misconception="from-numpy-copies",
        ),
        Wrong(
            "test_numpy_bridge",
            "torch.tensor taken to share",
            'changes = {"A", "B", "D", "F"}',
            "B does not change arr (torch.tensor always copies",
            misconception="tensor-shares",
        ),
        Wrong(
            "test_numpy_bridge",
            "every conversion taken for a copy",
            'changes = {"A", "D"}',
            "F does change arr",
            misconception="same-dtype-conversion-copies",
        ),
        Wrong(
            "test_numpy_bridge",
            "a count instead of the letters",
            "changes = 3",
            "changes should be a set of letters",
            misconception="count-for-letters",
        ),
    ],
    "02_neural_networks": [
        Wrong(
            "test_raw_forward",
            "no flatten",
            "inputs = images",
            "got (64, 1, 28, 28) — flatten each image",
            misconception="images-not-flattened",
        ),
        Wrong(
            "test_raw_forward",
            "sigmoid on the output too",
            "out = torch.sigmoid(torch.sigmoid(inputs @ W1 + b1) @ W2 + b2)",
            "out: values differ",
            misconception="activation-on-the-scores",
        ),
        Wrong(
            "test_raw_forward",
            "all-zero weights, and no forward pass",
            "W1, b1 = torch.zeros(784, 256), torch.zeros(256)\n"
            "W2, b2 = torch.zeros(256, 10), torch.zeros(10)\n"
            "out = torch.zeros(64, 10)",
            "W1 should hold torch.randn's random draws",
            misconception="weights-not-random",
        ),
        Wrong(
            "test_softmax",
            "summed over the wrong dim",
            "def softmax(x):\n    return torch.exp(x) / torch.exp(x).sum(dim=0, keepdim=True)",
            "sum of each row",
            misconception="softmax-wrong-dim",
        ),
        Wrong(
            "test_softmax",
            "no keepdim",
            "def softmax(x):\n    return torch.exp(x) / torch.exp(x).sum(dim=1)",
            "with keepdim=True",
            misconception="sum-without-keepdim",
        ),
        Wrong(
            "test_softmax",
            "overflows on large scores",
            "def softmax(x):\n    return torch.exp(x) / torch.exp(x).sum(dim=1, keepdim=True)",
            "maximum first",
            misconception="softmax-overflow",
        ),
        Wrong(
            "test_softmax",
            "PyTorch's softmax",
            "def softmax(x):\n    return torch.softmax(x, dim=1)",
            "the formula",
            misconception="library-for-formula",
        ),
        Wrong(
            "test_softmax",
            "F.softmax under another name",
            "from torch.nn.functional import softmax as _library\n\n\n"
            "def softmax(x):\n    return _library(x, 1)\n",
            "asks for the formula",
            misconception="library-for-formula",
        ),
        Wrong(
            "test_softmax",
            "PyTorch's softmax on a detached input",
            "def softmax(x):\n    return torch.softmax(x.detach(), dim=1)",
            "asks for the formula",
            misconception="library-for-formula",
        ),
        Wrong(
            "test_softmax",
            "PyTorch's softmax, the old detection helper replaced by the notebook",
            "check._library_softmax = lambda softmax, scores: []\n\n\n"
            "def softmax(x):\n    return torch.softmax(x, dim=1)\n",
            "asks for the formula",
            misconception="library-for-formula",
        ),
        Wrong(
            "test_network_class",
            "layers in a plain Python list",
            """
class Network(nn.Module):
    def __init__(self):
        super().__init__()
        self.layers = [nn.Linear(784, 128), nn.Linear(128, 64), nn.Linear(64, 10)]
    def forward(self, x):
        x = torch.relu(self.layers[0](x))
        x = torch.relu(self.layers[1](x))
        return self.layers[2](x)
""",
            "plain Python list",
            misconception="plain-list-of-layers",
        ),
        Wrong(
            "test_network_class",
            "Exercise 1's 256 as the first hidden width",
            """
class Network(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.fc2, self.output = nn.Linear(784, 256), nn.Linear(256, 64), nn.Linear(64, 10)
    def forward(self, x):
        return self.output(F.relu(self.fc2(F.relu(self.fc1(x)))))
""",
            "should be 784 → 128 → 64 → 10, got 784 → 256 → 64 → 10",
            misconception="layer-widths",
        ),
        Wrong(
            "test_network_class",
            "no ReLU",
            """
class Network(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.fc2, self.output = nn.Linear(784, 128), nn.Linear(128, 64), nn.Linear(64, 10)
    def forward(self, x):
        return self.output(self.fc2(self.fc1(x)))
""",
            "is linear",
            misconception="linear-layers-without-activation",
        ),
        Wrong(
            "test_network_class",
            "softmax at the end",
            """
class Network(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.fc2, self.output = nn.Linear(784, 128), nn.Linear(128, 64), nn.Linear(64, 10)
    def forward(self, x):
        x = F.relu(self.fc2(F.relu(self.fc1(x))))
        return F.softmax(self.output(x), dim=1)
""",
            "returns probabilities",
            misconception="probabilities-from-forward",
        ),
        Wrong(
            "test_network_class",
            "ReLU after the last layer too",
            """
class Network(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.fc2, self.output = nn.Linear(784, 128), nn.Linear(128, 64), nn.Linear(64, 10)
    def forward(self, x):
        x = F.relu(self.fc2(F.relu(self.fc1(x))))
        return F.relu(self.output(x))
""",
            "nothing after the last",
            misconception="activation-after-the-last-layer",
        ),
        Wrong(
            "test_network_class",
            "layers made in __init__, new ones used in forward",
            """
class Network(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.fc2, self.output = nn.Linear(784, 128), nn.Linear(128, 64), nn.Linear(64, 10)
    def forward(self, x):
        hidden = nn.Sequential(nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 64), nn.ReLU())
        return self.output(hidden(x))
""",
            "does not compute with its layers: nn.Linear(784, 128), nn.Linear(128, 64) never ran",
            misconception="forward-ignores-layers",
        ),
        Wrong(
            "test_network_class",
            "the second layer skipped: forward stops with an error",
            """
class Network(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.fc2, self.output = nn.Linear(784, 128), nn.Linear(128, 64), nn.Linear(64, 10)
    def forward(self, x):
        return self.output(F.relu(self.fc1(x)))
""",
            "nn.Linear(128, 64) never ran",
            misconception="forward-ignores-layers",
        ),
        Wrong(
            "test_network_class",
            "made-up layers: weights of 0, fixed scores out",
            """
class Network(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.fc2, self.output = nn.Linear(784, 128), nn.Linear(128, 64), nn.Linear(64, 10)
        with torch.no_grad():
            for layer in (self.fc1, self.fc2, self.output):
                layer.weight.zero_()
            self.output.bias.copy_(torch.arange(10.0))
        self.scores = torch.arange(10.0)
    def forward(self, x):
        if not x.any():
            return -self.scores.expand(len(x), 10)
        return self.scores.expand(len(x), 10)
""",
            "does not compute with its layers",
            misconception="forward-ignores-layers",
        ),
        Wrong(
            "test_network_class",
            "the first layer called twice",
            """
class Network(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.fc2, self.output = nn.Linear(784, 128), nn.Linear(128, 64), nn.Linear(64, 10)
    def forward(self, x):
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc1(x))
        return self.output(x)
""",
            "calls a layer more than once (nn.Linear(784, 128) ran 2 times)",
            misconception="layer-called-twice",
        ),
        Wrong(
            "test_network_class",
            "the worked example's sigmoid kept",
            """
class Network(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.fc2, self.output = nn.Linear(784, 128), nn.Linear(128, 64), nn.Linear(64, 10)
        self.sigmoid = nn.Sigmoid()
    def forward(self, x):
        return self.output(self.sigmoid(self.fc2(self.sigmoid(self.fc1(x)))))
""",
            "ReLU after each but the last",
            misconception="sigmoid-for-relu",
        ),
        Wrong(
            "test_network_class",
            "a weight of its own besides the layers",
            """
class Network(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.fc2, self.output = nn.Linear(784, 128), nn.Linear(128, 64), nn.Linear(64, 10)
        self.scale = nn.Parameter(torch.full((10,), 2.0))
    def forward(self, x):
        return self.output(F.relu(self.fc2(F.relu(self.fc1(x))))) * self.scale
""",
            "holds weights other than its nn.Linear layers' (scale)",
            misconception="weights-besides-the-layers",
        ),
        Wrong(
            "test_network_class",
            "super().__init__() forgotten",
            """
class Network(nn.Module):
    def __init__(self):
        self.fc1, self.fc2, self.output = nn.Linear(784, 128), nn.Linear(128, 64), nn.Linear(64, 10)
    def forward(self, x):
        return self.output(F.relu(self.fc2(F.relu(self.fc1(x)))))
""",
            "call super().__init__() first in __init__",
            misconception="super-init-forgotten",
        ),
        Wrong(
            "test_network_class",
            "forward without return",
            """
class Network(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.fc2, self.output = nn.Linear(784, 128), nn.Linear(128, 64), nn.Linear(64, 10)
    def forward(self, x):
        x = self.output(F.relu(self.fc2(F.relu(self.fc1(x)))))
""",
            "gave None: forward must end with return",
            misconception="forward-without-return",
        ),
        Wrong(
            "test_sequential",
            "missing ReLU",
            "seq_model = nn.Sequential(nn.Linear(784, 128), nn.Linear(128, 64), nn.Linear(64, 10))",
            "expected layers Linear, ReLU",
            misconception="sequential-without-activation",
        ),
        Wrong(
            "test_sequential",
            "unnamed layers in named_model",
            "named_model = nn.Sequential(nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 64), nn.ReLU(), "
            "nn.Linear(64, 10))",
            "should be named",
            misconception="sequential-names",
        ),
        Wrong(
            "test_sequential",
            "Exercise 1's 256 as the first hidden width",
            "seq_model = nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 64), nn.ReLU(), "
            "nn.Linear(64, 10))",
            "should be 784 → 128 → 64 → 10, got 784 → 256 → 64 → 10",
            misconception="layer-widths",
        ),
        Wrong(
            "test_sequential",
            "made-up layers: weights of 0, fixed scores out",
            """
class Fixed(nn.Sequential):
    def forward(self, x):
        return self.scores.expand(len(x), 10)


seq_model = Fixed(nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 64), nn.ReLU(), nn.Linear(64, 10))
with torch.no_grad():
    for layer in seq_model[::2]:
        layer.weight.zero_()
    seq_model[4].bias.copy_(torch.arange(10.0))
seq_model.scores = torch.arange(10.0)
""",
            "does not compute with its layers",
            misconception="forward-ignores-layers",
        ),
    ],
    "03_training": [
        Wrong(
            "test_expected_loss",
            "the probability, not the loss",
            "expected_loss = 1 / 10",
            "the probability an untrained network gives",
            misconception="probability-for-loss",
        ),
        Wrong(
            "test_expected_loss",
            "the log without its minus",
            "expected_loss = math.log(1 / 10)",
            "never negative",
            misconception="loss-without-minus",
        ),
        Wrong(
            "test_expected_loss",
            "the base-10 logarithm",
            "expected_loss = -math.log10(1 / 10)",
            "natural logarithm",
            misconception="log-base-10",
        ),
        Wrong(
            "test_expected_loss",
            "the number of classes",
            "expected_loss = 10.0",
            "about the same probability",
            misconception="untrained-guess-not-uniform",
        ),
        Wrong(
            "test_expected_loss",
            "NaN, a placeholder left in",
            'expected_loss = float("nan")',
            "expected_loss: holds NaN",
            misconception="not-finite-part3",
        ),
        Wrong(
            "test_expected_loss",
            "inf, −log(0): the true class taken to get probability 0",
            "expected_loss = -torch.log(torch.tensor(0.0)).item()",
            "expected_loss: holds inf",
            misconception="not-finite-part3",
        ),
        Wrong(
            "test_expected_loss",
            "a number copied from the printout, not the formula",
            "expected_loss = 2.3026",
            "the exercise asks for the formula that gives it",
            misconception="number-for-formula",
        ),
        Wrong(
            "test_task_losses",
            "the mean absolute error",
            "regression_loss = nn.L1Loss()(predicted_price, true_price)",
            "mean absolute error",
            misconception="absolute-for-squared-error",
        ),
        Wrong(
            "test_task_losses",
            "the root of the mean squared error",
            "regression_loss = torch.sqrt(nn.MSELoss()(predicted_price, true_price))",
            "the root of the mean squared error",
            misconception="root-mean-squared-error",
        ),
        Wrong(
            "test_task_losses",
            "squared errors summed",
            "regression_loss = ((predicted_price - true_price) ** 2).sum()",
            "sum of the squared errors",
            misconception="sum-for-mean",
        ),
        Wrong(
            "test_task_losses",
            "a sigmoid before BCEWithLogitsLoss",
            "binary_loss = nn.BCEWithLogitsLoss()(torch.sigmoid(spam_scores), is_spam)",
            "the sigmoid is applied twice",
            misconception="sigmoid-before-bce-with-logits",
        ),
        Wrong(
            "test_task_losses",
            "the scores' squared error for a yes/no task",
            "binary_loss = nn.MSELoss()(torch.sigmoid(spam_scores), is_spam)",
            "binary_loss: values differ",
            misconception="regression-loss-for-yes-no",
        ),
        Wrong(
            "test_task_losses",
            "CrossEntropyLoss for the yes/no label",
            "binary_loss = nn.CrossEntropyLoss()(spam_scores, is_spam)",
            "binary_loss is CrossEntropyLoss of spam_scores",
            misconception="cross-entropy-for-yes-no",
        ),
        Wrong(
            "test_log_softmax",
            "log-softmax over the batch",
            "log_model = nn.Sequential(*list(log_model)[:-1], nn.LogSoftmax(dim=0))",
            "dim=1",
            misconception="log-softmax-over-batch",
        ),
        Wrong(
            "test_log_softmax",
            "cross-entropy on log-probabilities",
            "nll_criterion = nn.CrossEntropyLoss()",
            "should be nn.NLLLoss",
            misconception="cross-entropy-on-log-probabilities",
        ),
        Wrong(
            "test_log_softmax",
            "loss of a different batch",
            "nll_loss = nll_criterion(log_model(images[:32]), labels[:32]) * 1.5",
            "nll_loss: values differ",
            misconception="loss-of-other-data",
        ),
        Wrong(
            "test_ce_loss",
            "softmax before the loss",
            "ce_loss = criterion(torch.softmax(model(images), dim=1), labels)",
            "applies log-softmax itself",
            misconception="softmax-before-cross-entropy",
        ),
        Wrong(
            "test_ce_loss",
            "NLLLoss on the scores",
            "ce_loss = nn.NLLLoss()(model(images), labels)",
            "ce_loss: values differ",
            misconception="nll-on-scores",
        ),
        Wrong(
            "test_ce_loss",
            "a loss per image",
            "ce_loss = nn.CrossEntropyLoss(reduction='none')(model(images), labels)",
            "ce_loss: expected shape ()",
            misconception="loss-per-example",
        ),
        Wrong(
            "test_ce_loss",
            "the loss of the cell above, copied",
            "ce_loss = loss",
            "computed above",
            misconception="loss-copied-from-above",
        ),
        Wrong(
            "test_ce_loss",
            "nll_loss copied (the same number)",
            "ce_loss = nll_loss",
            "computed above",
            misconception="loss-copied-from-above",
        ),
        Wrong(
            "test_one_step",
            "no step",
            "model = copy.deepcopy(model_before)",
            "did not change",
            misconception="backward-for-step",
        ),
        Wrong(
            "test_one_step",
            "missing zero_grad",
            """
model = copy.deepcopy(model_before)
criterion(model(images), labels).backward()  # the gradient the earlier cell left in model
optimizer = optim.SGD(model.parameters(), lr=0.01)
loss = criterion(model(images), labels)
loss.backward()
optimizer.step()
""",
            "zero_grad",
            misconception="gradients-not-cleared",
        ),
        Wrong(
            "test_one_step",
            "the cell run twice",
            """
model = copy.deepcopy(model_before)
for run in range(2):
    optimizer = optim.SGD(model.parameters(), lr=0.01)
    optimizer.zero_grad()
    loss = criterion(model(images), labels)
    loss.backward()
    optimizer.step()
""",
            "did this cell run 2 times?",
            misconception="cell-run-again",
        ),
        Wrong(
            "test_one_step",
            "a step without zero_grad, then the fixed cell run again",
            """
model = copy.deepcopy(model_before)
optimizer = optim.SGD(model.parameters(), lr=0.01)
criterion(model(images), labels).backward()  # the gradient the earlier cell left in model
loss = criterion(model(images), labels)
loss.backward()
optimizer.step()  # the first run: the old gradient added to the new one
optimizer.zero_grad()  # the cell, fixed, run again: a right step, from weights that already moved
loss = criterion(model(images), labels)
loss.backward()
optimizer.step()
""",
            "Run the cell above (model_before = copy.deepcopy(model)) again, then this cell once",
            misconception="cell-run-again",
        ),
        Wrong(
            "test_one_step",
            "a step without zero_grad, then the fixed cell (zero_grad before and after its step) run again",
            """
model = copy.deepcopy(model_before)
criterion(model(images), labels).backward()  # the gradient the Autograd cell left in model
optimizer = optim.SGD(model.parameters(), lr=0.01)
loss = criterion(model(images), labels)
loss.backward()
optimizer.step()  # the first run: the old gradient added to the new one
optimizer = optim.SGD(model.parameters(), lr=0.01)  # the cell, fixed, run again: no gradient left after it
optimizer.zero_grad()
loss = criterion(model(images), labels)
loss.backward()
optimizer.step()
optimizer.zero_grad()
""",
            "did this cell run more than once (an earlier version of it too)? Each run steps on from where "
            "the last one stopped. Run the cell above (model_before = copy.deepcopy(model)) again",
            misconception="cell-run-again",
        ),
        Wrong(
            "test_one_step",
            "probabilities given to CrossEntropyLoss",
            """
model = copy.deepcopy(model_before)
optimizer = optim.SGD(model.parameters(), lr=0.01)
optimizer.zero_grad()
loss = criterion(torch.softmax(model(images), dim=1), labels)
loss.backward()
optimizer.step()
""",
            "the loss of the raw scores: criterion(model(images), labels), no softmax",
            misconception="softmax-before-cross-entropy",
        ),
        Wrong(
            "test_one_step",
            "a right step, then the model_before cell run after it",
            """
model = copy.deepcopy(model_before)
optimizer = optim.SGD(model.parameters(), lr=0.01)
optimizer.zero_grad()
loss = criterion(model(images), labels)
loss.backward()
optimizer.step()
model_before = copy.deepcopy(model)  # the cell above, run after this one
""",
            "was model_before copied after this cell had stepped?",
            graded=PASSES,  # the grader runs the cell once from weights of its own
            misconception="cell-run-again",
        ),
        Wrong(
            "test_one_step",
            "the loss of a cell above used again: the cell stops at backward()",
            """
import sys

model = copy.deepcopy(model_before)
optimizer = optim.SGD(model.parameters(), lr=0.01)
try:  # the cell stops at backward(); IPython keeps the error as sys.last_value
    optimizer.zero_grad()
    loss.backward()  # the loss of a cell above: its backward() has freed its graph
    optimizer.step()
except RuntimeError as error:
    sys.last_type, sys.last_value, sys.last_traceback = type(error), error, error.__traceback__
""",
            "your answer cell stopped with an error: fix it first — RuntimeError: Trying to backward through "
            "the graph a second time",
            misconception="loss-of-an-earlier-cell",
        ),
        Wrong(
            "test_training_loop",
            "not trained",
            UNTRAINED_MNIST + "train_losses = [2.3, 2.2]",
            "expected at least 90%",
            misconception="undertrained",
        ),
        Wrong(
            "test_training_loop",
            "missing zero_grad",
            UNTRAINED_MNIST
            + """
optimizer = optim.SGD(model.parameters(), lr=0.03)
train_losses = [2.3, 2.2]
for images, labels in trainloader:
    loss = criterion(model(images.view(images.shape[0], -1)), labels)
    loss.backward()
    optimizer.step()
""",
            "expected at least 90%",
            misconception="undertrained",
        ),
        Wrong(
            "test_training_loop",
            "losses not recorded",
            "train_losses = []",
            "train_losses is empty",
            misconception="losses-not-recorded",
        ),
        Wrong(
            "test_training_loop",
            "over the budget of 5 epochs",
            "train_losses = train_losses + train_losses[-1:] * 5",
            "the goal is 90% in at most 5",
            misconception="over-the-epoch-budget",
        ),
        Wrong(
            "test_training_loop",
            "a loss that rose",
            "train_losses = train_losses[::-1]",
            "the training loss did not go down",
            misconception="learning-rate-too-large",
        ),
        Wrong(
            "test_training_loop",
            "each epoch's losses added up, not averaged",
            "train_losses = [x * len(trainloader) for x in train_losses]",
            "far more than a loss per image",
            misconception="epoch-loss-not-averaged",
        ),
        Wrong(
            "test_training_loop",
            "each batch's mean loss divided again by the number of images",
            "train_losses = [x * len(trainloader) / len(trainloader.dataset) for x in train_losses]",
            "far less than a loss per image",
            misconception="batch-mean-divided-again",
        ),
        Wrong(
            "test_training_loop",
            "each batch's loss appended, not each epoch's average",
            "train_losses = [x for x in train_losses for batch in trainloader]",
            "about one per batch: append one per epoch",
            misconception="loss-per-batch-recorded",
        ),
        Wrong(
            "test_training_loop",
            "images not flattened: the cell stops with an error",
            UNTRAINED_MNIST
            + """
import sys

optimizer = optim.SGD(model.parameters(), lr=0.03)
train_losses = []
try:  # the cell stops at its first batch; IPython keeps the error as sys.last_value
    for images, labels in trainloader:
        optimizer.zero_grad()
        loss = criterion(model(images), labels)
        loss.backward()
        optimizer.step()
except RuntimeError as error:
    sys.last_type, sys.last_value, sys.last_traceback = type(error), error, error.__traceback__
""",
            # PyTorch's own words after it change between releases (torch 2.15 begins them with "addmm: ")
            "your answer cell stopped with an error: fix it first — RuntimeError: ",
            misconception="images-not-flattened",
        ),
    ],
    "04_fashion_mnist": [
        Wrong(
            "test_network",
            "the original course's LogSoftmax at the end, with CrossEntropyLoss",
            "model = nn.Sequential(nn.Flatten(), nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 10), "
            "nn.LogSoftmax(dim=1)).to(device)",
            "the network ends with nn.LogSoftmax",
            misconception="log-softmax-layer-before-cross-entropy",
        ),
        Wrong(
            "test_network",
            "a ReLU after the last layer",
            "model = nn.Sequential(nn.Flatten(), nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 10), "
            "nn.ReLU()).to(device)",
            "an activation follows the last nn.Linear",
            misconception="activation-after-the-last-layer",
        ),
        Wrong(
            "test_train",
            "loss tensors added up, not loss.item()",
            """
x, y = next(iter(validloader))
running = 0
for start in (0, 500):
    loss = nn.CrossEntropyLoss()(model(x[start : start + 500].to(device)), y[start : start + 500].to(device))
    running += loss * 500
train_losses = [running / 1000]
""",
            "tensors that record gradients",
            misconception="loss-tensors-kept",
        ),
        Wrong(
            "test_network",
            "a softmax at the end, before CrossEntropyLoss",
            "model = nn.Sequential(nn.Flatten(), nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 10), "
            "nn.Softmax(dim=1)).to(device)",
            "the network ends with a softmax",
            misconception="softmax-layer-before-cross-entropy",
        ),
        Wrong(
            "test_network",
            "a softmax over the batch at the end",
            "model = nn.Sequential(nn.Flatten(), nn.Linear(784, 10), nn.Softmax(dim=0)).to(device)",
            "the network ends with a softmax",
            misconception="softmax-layer-before-cross-entropy",
        ),
        Wrong(
            "test_network",
            "no flatten",
            "model = nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 10)).to(device)",
            "start the network with nn.Flatten()",
            misconception="network-without-flatten",
        ),
        Wrong(
            "test_train",
            "not trained",
            "torch.manual_seed(1)\nmodel = nn.Sequential(nn.Flatten(), "
            "nn.Linear(784, 64), nn.ReLU(), nn.Linear(64, 10)).to(device)",
            "expected at least 87%",
            misconception="under-the-goal",
        ),
        Wrong(
            "test_train",
            "a softmax at the end, short of the goal",
            "torch.manual_seed(1)\nmodel = nn.Sequential(nn.Flatten(), "
            "nn.Linear(784, 64), nn.ReLU(), nn.Linear(64, 10), nn.Softmax(dim=1)).to(device)",
            "a softmax at the end of the network slows training",
            misconception="softmax-layer-before-cross-entropy",
        ),
        Wrong(
            "test_train",
            "losses not recorded",
            "train_losses = []",
            "train_losses is empty",
            misconception="losses-not-recorded",
        ),
        Wrong(
            "test_predict",
            "torch.exp of the scores",
            "with torch.no_grad():\n    ps = torch.exp(model(images.to(device))).cpu()",
            "torch.exp of scores is no probability",
            misconception="exp-of-scores-for-probabilities",
        ),
        Wrong(
            "test_predict",
            "the scores themselves",
            "with torch.no_grad():\n    ps = model(images.to(device)).cpu()",
            "the model gives scores",
            misconception="scores-for-probabilities",
        ),
        Wrong(
            "test_predict",
            "softmax over the batch",
            "with torch.no_grad():\n    ps = torch.softmax(model(images.to(device)), dim=0).cpu()",
            "softmax over dim=1",
            misconception="softmax-over-the-batch",
        ),
        Wrong(
            "test_predict",
            "gradients recorded",
            "ps = torch.softmax(model(images.to(device)), dim=1).cpu()",
            "torch.no_grad()",
            misconception="autograd-while-predicting",
        ),
        Wrong(
            "test_predict",
            "probabilities of another batch",
            "with torch.no_grad():\n    ps = torch.softmax(model(images.flip(0).to(device)), dim=1).cpu()",
            "ps: values differ",
            misconception="probabilities-of-other-images",
        ),
    ],
    "05_inference_and_validation": [
        Wrong(
            "test_validate",
            "softmax probabilities given to CrossEntropyLoss",
            """
def validate(model, loader, criterion):
    model.eval()
    total, right, n = 0.0, 0, 0
    with torch.no_grad():
        for images, labels in loader:
            images, labels = images.to(device), labels.to(device)
            ps = torch.softmax(model(images), dim=1)
            total += criterion(ps, labels).item() * len(labels)
            right += (ps.argmax(dim=1) == labels).sum().item()
            n += len(labels)
    return total / n, right / n
""",
            "the loss of softmax probabilities",
            misconception="probabilities-given-to-cross-entropy",
        ),
        Wrong(
            "test_train_loop",
            "the count of epochs without improvement raised every epoch",
            TRAIN_5.format(
                validation=VALIDATED
                + """        epochs_without_improvement += 1
"""
            ),
            "only after an epoch without a new lowest",
            misconception="early-stopping-too-soon",
        ),
        Wrong(
            "test_train_loop",
            "the comparison reversed: the highest validation loss kept",
            TRAIN_5.format(
                validation="""        valid_loss, valid_accuracy = validate(model, validloader, criterion)
        history["valid_loss"].append(valid_loss)
        history["valid_accuracy"].append(valid_accuracy)
        if best_state is None or valid_loss > best_loss:
            best_loss, best_state = valid_loss, copy.deepcopy(model.state_dict())
            epochs_without_improvement = 0
        else:
            epochs_without_improvement += 1
"""
            ),
            "valid_loss < best_loss",
            misconception="state-dict-without-copy",
        ),
        Wrong(
            "test_precision_recall",
            "percentages",
            "precision = 100 * matrix.diag() / matrix.sum(dim=0)\n"
            "recall = 100 * matrix.diag() / matrix.sum(dim=1)",
            "holds percentages",
            misconception="percentages-for-fractions",
        ),
        Wrong(
            "test_confusion",
            "rows and columns swapped",
            """
def confusion_matrix(model, loader, num_classes=10):
    model.eval()
    matrix = torch.zeros(num_classes, num_classes, dtype=torch.long)
    with torch.no_grad():
        for images, labels in loader:
            for t, p in zip(labels, model(images.to(device)).argmax(dim=1).cpu()):
                matrix[p, t] += 1
    return matrix
""",
            "transposed",
            misconception="confusion-transposed",
        ),
        Wrong(
            "test_confusion",
            "a batch's repeated pairs counted once",
            """
def confusion_matrix(model, loader, num_classes=10):
    model.eval()
    matrix = torch.zeros(num_classes, num_classes, dtype=torch.long)
    with torch.no_grad():
        for images, labels in loader:
            matrix[labels, model(images.to(device)).argmax(dim=1).cpu()] += 1
    return matrix
""",
            "accumulate=True",
            misconception="indexed-add-counts-repeats-once",
        ),
        Wrong(
            "test_confusion",
            "the matrix made anew for each batch",
            """
def confusion_matrix(model, loader, num_classes=10):
    model.eval()
    with torch.no_grad():
        for images, labels in loader:
            matrix = torch.zeros(num_classes, num_classes, dtype=torch.long)
            for t, p in zip(labels, model(images.to(device)).argmax(dim=1).cpu()):
                matrix[t, p] += 1
    return matrix
""",
            "before the loop over batches",
            misconception="matrix-made-per-batch",
        ),
        Wrong(
            "test_confusion",
            "dropout left on",
            """
def confusion_matrix(model, loader, num_classes=10):
    matrix = torch.zeros(num_classes, num_classes, dtype=torch.long)
    with torch.no_grad():
        for images, labels in loader:
            predicted = model(images.to(device)).argmax(dim=1).cpu()
            matrix += torch.bincount(labels * num_classes + predicted, minlength=num_classes**2).view(10, 10)
    return matrix
""",
            "model.eval()",
            misconception="measured-in-training-mode",
        ),
        Wrong(
            "test_batch_accuracy",
            "broadcast comparison",
            "equals = top_class == labels",
            "expected shape (128, 1)",
            misconception="broadcast-comparison",
        ),
        Wrong(
            "test_batch_accuracy",
            "a tensor, not a float",
            "batch_accuracy = equals.float().mean()",
            "Python float",
            misconception="tensor-for-number",
        ),
        Wrong(
            "test_batch_accuracy",
            "divided by the wrong count",
            "batch_accuracy = equals.sum().item() / 100",
            "expected",
            misconception="wrong-denominator",
        ),
        Wrong(
            "test_batch_accuracy",
            "NaN, a placeholder left in",
            'batch_accuracy = float("nan")',
            "batch_accuracy: holds NaN",
            misconception="not-finite-part5",
        ),
        Wrong(
            "test_validate",
            "average of batch means",
            """
def validate(model, loader, criterion):
    model.eval()
    losses, accuracies = [], []
    with torch.no_grad():
        for images, labels in loader:
            scores = model(images)
            losses.append(criterion(scores, labels).item())
            accuracies.append((scores.argmax(dim=1) == labels).float().mean().item())
    return sum(losses) / len(losses), sum(accuracies) / len(accuracies)
""",
            "expected 0.6000",
            graded="not the fraction right",
            misconception="mean-of-batch-means",
        ),
        Wrong(
            "test_validate",
            "no eval mode",
            """
def validate(model, loader, criterion):
    total_loss, correct, count = 0.0, 0, 0
    with torch.no_grad():
        for images, labels in loader:
            scores = model(images)
            total_loss += criterion(scores, labels).item() * labels.shape[0]
            correct += (scores.argmax(dim=1) == labels).sum().item()
            count += labels.shape[0]
    return total_loss / count, correct / count
""",
            "call model.eval()",
            misconception="measured-in-training-mode",
        ),
        Wrong(
            "test_validate",
            "accuracies never collected: the mean of an empty list is NaN",
            """
def validate(model, loader, criterion):
    model.eval()
    total, accuracies = 0.0, []
    with torch.no_grad():
        for images, labels in loader:
            total += criterion(model(images), labels).item() * labels.shape[0]
    return total / len(loader.dataset), torch.tensor(accuracies).mean().item()
""",
            "validate(model, loader, criterion)[1]: holds NaN",
            misconception="not-finite-part5",
        ),
        Wrong(
            "test_train_loop",
            "validation in training mode (dropout on)",
            TRAIN_5.format(
                validation="""
        total, correct, count = 0.0, 0, 0
        with torch.no_grad():
            for images, labels in validloader:
                images, labels = images.to(device), labels.to(device)
                scores = model(images)
                total += criterion(scores, labels).item() * labels.shape[0]
                correct += (scores.argmax(dim=1) == labels).sum().item()
                count += labels.shape[0]
        history["valid_loss"].append(total / count)
        history["valid_accuracy"].append(correct / count)
        if total / count < best_loss:
            best_loss, best_state = total / count, copy.deepcopy(model.state_dict())
"""
            ),
            "in evaluation mode",
            misconception="validation-in-training-mode",
        ),
        Wrong(
            "test_train_loop",
            "the state_dict kept without a copy",
            TRAIN_5.format(
                validation="""
        valid_loss, valid_accuracy = validate(model, validloader, criterion)
        history["valid_loss"].append(valid_loss)
        history["valid_accuracy"].append(valid_accuracy)
        if valid_loss < best_loss:
            best_loss, best_state = valid_loss, model.state_dict()
"""
            ),
            "keep a copy",
            misconception="state-dict-without-copy",
        ),
        Wrong(
            "test_train_loop",
            "validated on the training data",
            TRAIN_5.format(
                validation="""
        valid_loss, valid_accuracy = validate(model, trainloader, criterion)
        history["valid_loss"].append(valid_loss)
        history["valid_accuracy"].append(valid_accuracy)
        if valid_loss < best_loss:
            best_loss, best_state = valid_loss, copy.deepcopy(model.state_dict())
"""
            ),
            "validate on the validation loader",
            misconception="validated-on-training-data",
        ),
        Wrong(
            "test_train_loop",
            "early stopping that never counts (it never stops)",
            TRAIN_5.format(validation=VALIDATED),
            "it should stop after epoch 5",
            misconception="early-stopping-never-counts",
        ),
        Wrong(
            "test_train_loop",
            "stopped at the first epoch without improvement, whatever the patience",
            TRAIN_5.format(
                validation=VALIDATED
                + """        elif patience is not None:
            epochs_without_improvement = patience
"""
            ),
            "stopped after epoch 2",
            misconception="early-stopping-too-soon",
        ),
        Wrong(
            "test_train_loop",
            "early stopping whose count is never set back to 0 at a new lowest loss",
            TRAIN_5.format(
                validation=VALIDATED
                + """        else:
            epochs_without_improvement += 1
"""
            ),
            "stopped after epoch 4",
            misconception="early-stopping-never-resets",
        ),
        Wrong(
            "test_train_loop",
            "early stopping that compares each epoch with the one before",
            TRAIN_5.format(
                validation=VALIDATED
                + """        if len(history["valid_loss"]) == 1 or valid_loss < history["valid_loss"][-2]:
            epochs_without_improvement = 0
        else:
            epochs_without_improvement += 1
"""
            ),
            "not with the epoch before",
            misconception="early-stopping-against-previous-epoch",
        ),
        Wrong(
            "test_train_loop",
            "no validation: NaN placeholders recorded",
            TRAIN_5.format(
                validation="""
        history["valid_loss"].append(float("nan"))
        history["valid_accuracy"].append(float("nan"))
"""
            ),
            "history['valid_loss'][0]: holds NaN",
            misconception="not-finite-part5",
        ),
        Wrong(
            "test_dropout_model",
            "no dropout layers",
            "dropout_model = model",
            "it has no dropout",
            misconception="model-without-dropout",
        ),
        Wrong(
            "test_dropout_model",
            "F.dropout left on in evaluation mode",
            """
class DropoutNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.hidden, self.output = nn.Linear(784, 256), nn.Linear(256, 10)

    def forward(self, x):
        x = torch.nn.functional.dropout(torch.relu(self.hidden(x.flatten(1))), 0.2)
        return self.output(x)


dropout_model = DropoutNet().to(device)
""",
            "training=self.training",
            misconception="functional-dropout-always-on",
        ),
        Wrong(
            "test_dropout_model",
            "not trained",
            "torch.manual_seed(1)\ndropout_model = nn.Sequential(nn.Flatten(), "
            "nn.Linear(784, 64), nn.ReLU(), nn.Dropout(0.2), nn.Linear(64, 10))\n"
            "history_dropout = {'train_loss': [2.3], 'valid_loss': [2.3], 'valid_accuracy': [0.1]}",
            "expected at least 82%",
            misconception="dropout-model-undertrained",
        ),
        Wrong(
            "test_best_model",
            "the best state not loaded (the same layers, untrained, measured)",
            """
dropout_model = copy.deepcopy(dropout_model)
for layer in dropout_model:
    if hasattr(layer, "reset_parameters"):
        layer.reset_parameters()
test_loss, test_accuracy = validate(dropout_model, testloader, nn.CrossEntropyLoss())
""",
            "load best_state",
            misconception="best-state-not-loaded",
        ),
        Wrong(
            "test_best_model",
            "measured on the validation set",
            "test_loss, test_accuracy = validate(dropout_model, validloader, nn.CrossEntropyLoss())",
            "measure dropout_model on testloader",
            misconception="validation-for-test",
        ),
        Wrong(
            "test_best_model",
            "the test figures left as NaN placeholders",
            'test_loss, test_accuracy = float("nan"), float("nan")',
            "test_loss: holds NaN",
            misconception="not-finite-part5",
        ),
        Wrong(
            "test_dropout_model",
            "a final softmax before CrossEntropyLoss",
            "torch.manual_seed(1)\ndropout_model = nn.Sequential(nn.Flatten(), nn.Linear(784, 64), "
            "nn.ReLU(), nn.Dropout(0.2), nn.Linear(64, 10), nn.Softmax(dim=1)).to(device)\n"
            "history_dropout = {'train_loss': [2.3], 'valid_loss': [2.3], 'valid_accuracy': [0.1]}",
            "leave out the final softmax",
            misconception="network-ends-in-softmax",
        ),
        Wrong(
            "test_precision_recall",
            "rows and columns swapped",
            "precision = matrix.diag() / matrix.sum(dim=1)\nrecall = matrix.diag() / matrix.sum(dim=0)",
            "that is recall",
            misconception="precision-recall-swapped",
        ),
        Wrong(
            "test_precision_recall",
            "divided by every example",
            "precision = matrix.diag() / matrix.sum()\nrecall = matrix.diag() / matrix.sum()",
            "divided by the total count",
            misconception="precision-over-all-examples",
        ),
        Wrong(
            "test_precision_recall",
            "integer division",
            "precision = matrix.diag() // matrix.sum(dim=0)\nrecall = matrix.diag() // matrix.sum(dim=1)",
            "rounds each fraction down",
            misconception="integer-division-of-counts",
        ),
        Wrong(
            "test_precision_recall",
            "a NaN placeholder",
            'recall = torch.full((10,), float("nan"))',
            "recall: holds NaN",
            misconception="not-finite-part5",
        ),
    ],
    "06_saving_and_loading": [
        Wrong(
            "test_round_trip",
            "drop_p left out of the checkpoint",
            """
def save_checkpoint(model, path):
    torch.save({"input_size": model.input_size, "output_size": model.output_size,
                "hidden_layers": model.hidden_layers, "state_dict": model.state_dict()}, path)


def load_checkpoint(path):
    c = torch.load(path, weights_only=True)
    m = helper.MLP(c["input_size"], c["output_size"], c["hidden_layers"])
    m.load_state_dict(c["state_dict"])
    return m
""",
            "store drop_p",
            misconception="drop-p-not-stored",
        ),
        Wrong(
            "test_bad_files",
            "None returned for a bad file, the error printed",
            """
_load = load_checkpoint


def load_checkpoint(path):
    try:
        return _load(path)
    except Exception as error:
        print(f"{path} is not a checkpoint: {str(error)[:80]}")
""",
            "raised no error: it returned",
            misconception="error-printed-not-raised",
        ),
        Wrong(
            "test_bad_files",
            "a RuntimeError that names the file",
            """
_load = load_checkpoint


def load_checkpoint(path):
    try:
        return _load(path)
    except Exception as error:
        raise RuntimeError(f"{path} is not a checkpoint") from error
""",
            "expected a ValueError",
            misconception="error-of-another-type",
        ),
        Wrong(
            "test_resume",
            "the weights alone",
            """
def save_training_state(path, model, optimizer, epoch):
    torch.save({"model": model.state_dict(), "epoch": epoch}, path)


def resume_training(path, model, optimizer):
    state = torch.load(path, weights_only=True)
    model.load_state_dict(state["model"])
    return state["epoch"]
""",
            "the optimizer was not restored",
            misconception="optimizer-not-restored",
        ),
        Wrong(
            "test_resume",
            "a new optimizer inside resume_training",
            """
def resume_training(path, model, optimizer):
    state = torch.load(path, weights_only=True)
    model.load_state_dict(state["model"])
    optimizer = optim.Adam(model.parameters(), lr=0.002)
    optimizer.load_state_dict(state["optimizer"])
    return state["epoch"]
""",
            "the optimizer was not restored",
            misconception="optimizer-not-restored",
        ),
        Wrong(
            "test_resume",
            "the epoch not returned",
            """
def resume_training(path, model, optimizer):
    state = torch.load(path, weights_only=True)
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
""",
            "expected the epoch saved",
            misconception="epoch-not-returned",
        ),
        Wrong(
            "test_round_trip",
            "a new, untrained model saved and restored",
            "model = helper.MLP(784, 10, [256, 128], drop_p=0.2)\n"
            "save_checkpoint(model, 'checkpoint.pth')\nrestored = load_checkpoint('checkpoint.pth')",
            "save the trained `model`",
            misconception="another-model-saved",
        ),
        Wrong(
            "test_round_trip",
            "state_dict only",
            "def save_checkpoint(model, path):\n    torch.save(model.state_dict(), path)",
            "holds only the state_dict",
            misconception="weights-enough-to-rebuild",
        ),
        Wrong(
            "test_round_trip",
            "the model object itself saved",
            "def save_checkpoint(model, path):\n    torch.save(model, path)",
            "does not load with torch.load(path, weights_only=True)",
            misconception="model-object-saved",
        ),
        Wrong(
            "test_round_trip",
            "weights not loaded",
            """
def load_checkpoint(path):
    checkpoint = torch.load(path, weights_only=True)
    return helper.MLP(checkpoint["input_size"], checkpoint["output_size"], checkpoint["hidden_layers"],
                      checkpoint["drop_p"])
""",
            "load the saved state_dict",
            misconception="weights-not-loaded",
        ),
        Wrong(
            "test_round_trip",
            "hidden layers not stored",
            """
def load_checkpoint(path):
    checkpoint = torch.load(path, weights_only=True)
    model = helper.MLP(784, 10, [256, 128])
    model.load_state_dict(checkpoint["state_dict"])
    return model
""",
            "size mismatch",
            misconception="sizes-written-into-the-loader",
        ),
        Wrong(
            "test_round_trip",
            "the untrained model saved",
            "restored = helper.MLP(784, 10, [256, 128], drop_p=0.2)",
            "save the trained model",
            misconception="another-model-saved",
        ),
        Wrong(
            "test_bad_files",
            "no error handling",
            """
def load_checkpoint(path):
    checkpoint = torch.load(path, weights_only=True)
    model = helper.MLP(checkpoint["input_size"], checkpoint["output_size"], checkpoint["hidden_layers"],
                       checkpoint["drop_p"])
    model.load_state_dict(checkpoint["state_dict"])
    return model
""",
            "expected a ValueError that names the file",
            misconception="load-errors-left-raw",
        ),
        Wrong(
            "test_bad_files",
            "weights_only=False, every error a ValueError",
            """
def load_checkpoint(path):
    try:
        checkpoint = torch.load(path, weights_only=False)
        model = helper.MLP(checkpoint["input_size"], checkpoint["output_size"], checkpoint["hidden_layers"],
                           checkpoint["drop_p"])
        model.load_state_dict(checkpoint["state_dict"])
    except Exception as error:
        raise ValueError(f"{path} is not a valid checkpoint: {error}") from error
    return model
""",
            "ran the code hidden in a pickle file",
            misconception="pickles-loaded",
        ),
    ],
    "07_loading_image_data": [
        Wrong(
            "test_transforms",
            "no augmentation",
            "train_transforms = test_transforms",
            "same tensor twice",
            misconception="training-without-augmentation",
        ),
        Wrong(
            "test_transforms",
            "augmented test images",
            "test_transforms = train_transforms",
            "test_transforms is random",
            misconception="test-images-augmented",
        ),
        Wrong(
            "test_transforms",
            "no normalisation",
            "test_transforms = v2.Compose([v2.Resize(255), v2.CenterCrop(224), v2.ToImage(), "
            "v2.ToDtype(torch.float32, scale=True)])",
            "helper.IMAGENET_MEAN",
            misconception="not-normalised",
        ),
        Wrong(
            "test_transforms",
            "training views not normalised",
            "train_transforms = v2.Compose([v2.RandomResizedCrop(224), v2.RandomHorizontalFlip(), "
            "v2.ToImage(), v2.ToDtype(torch.float32, scale=True)])",
            "train_transforms(photo) is not normalised",
            misconception="not-normalised",
        ),
        Wrong(
            "test_transforms",
            "training views normalised with other statistics",
            "train_transforms = v2.Compose([v2.RandomResizedCrop(224), v2.ToImage(), "
            "v2.ToDtype(torch.float32, scale=True), v2.Normalize([0.5, 0.5, 0.5], [0.5, 0.5, 0.5])])",
            "train_transforms(photo) is not normalised",
            misconception="not-normalised",
        ),
        Wrong(
            "test_transforms",
            "no crop",
            "test_transforms = v2.Compose([v2.Resize(255), *to_float, normalize])",
            "expected shape (3, 224, 224)",
            misconception="no-crop",
        ),
        Wrong(
            "test_loaders",
            "folders swapped",
            "train_data, test_data = test_data, train_data",
            "swapped",
            misconception="train-and-test-folders-swapped",
        ),
        Wrong(
            "test_loaders",
            "training loader not shuffled",
            "trainloader = DataLoader(train_data, batch_size=32)",
            "shuffle the training loader",
            misconception="training-not-shuffled",
        ),
        Wrong(
            "test_loaders",
            "batches too small",
            "trainloader = DataLoader(train_data, batch_size=4, shuffle=True)",
            "choose a batch size between 16 and 256",
            misconception="batch-size-too-small",
        ),
        Wrong(
            "test_loaders",
            "the test loader shuffled",
            "testloader = DataLoader(test_data, batch_size=32, shuffle=True)",
            "the test loader need not shuffle",
            misconception="test-loader-shuffled",
        ),
        Wrong(
            "test_csv_dataset",
            "every photo read and transformed in __init__",
            """
class CsvPhotos(Dataset):
    def __init__(self, csv_file, image_dir, transform=None):
        rows = list(csv.DictReader(open(csv_file)))
        self.classes = sorted({row["label"] for row in rows})
        photos = [Image.open(Path(image_dir) / row["filename"]).convert("RGB") for row in rows]
        labels = [self.classes.index(row["label"]) for row in rows]
        self.items = [(transform(photo), label) for photo, label in zip(photos, labels)]

    def __len__(self):
        return len(self.items)

    def __getitem__(self, index):
        return self.items[index]
""",
            "the dataset read the photos in __init__",
            misconception="photos-read-in-init",
        ),
        Wrong(
            "test_csv_dataset",
            "the header line counted",
            """
class CsvPhotos(Dataset):
    def __init__(self, csv_file, image_dir, transform=None):
        self.lines = Path(csv_file).read_text().splitlines()
        rows = [line.split(",") for line in self.lines[1:]]
        self.classes = sorted({label for _, label in rows})
        self.rows, self.image_dir, self.transform = rows, Path(image_dir), transform

    def __len__(self):
        return len(self.lines)

    def __getitem__(self, index):
        name, label = self.rows[index]
        return self.transform(Image.open(self.image_dir / name).convert("RGB")), self.classes.index(label)
""",
            "the header line filename,label is not a photo",
            misconception="csv-header-counted",
        ),
        Wrong(
            "test_csv_dataset",
            "greyscale photos left with one channel",
            CSV_PHOTOS.format(
                item='return self.transform(Image.open(path)), self.classes.index(row["label"])'
            ),
            "that photo is greyscale",
            misconception="greyscale-not-converted",
        ),
        Wrong(
            "test_csv_dataset",
            "labels left as the CSV's strings",
            CSV_PHOTOS.format(item='return self.transform(Image.open(path).convert("RGB")), row["label"]'),
            "and the classes are numbered in alphabetical order",
            misconception="labels-as-strings",
        ),
        Wrong(
            "test_csv_dataset",
            "its own ToTensor instead of the transform given",
            "from torchvision import transforms\n"
            + CSV_PHOTOS.format(
                item='label = self.classes.index(row["label"])\n'
                '        return transforms.ToTensor()(Image.open(path).convert("RGB")), label'
            ),
            "without the transform it was given",
            misconception="transform-ignored",
        ),
    ],
    "08_transfer_learning": [
        Wrong(
            "test_photo_loop",
            "the optimizer made before the classifier is replaced",
            """
import copy

model = copy.deepcopy(model)
optimizer = optim.Adam(model.classifier.parameters(), lr=0.001)
model.classifier = nn.Linear(1280, 2).to(device)
""",
            "not in model at all",
            misconception="optimizer-of-a-replaced-classifier",
        ),
        Wrong(
            "test_freeze",
            "features not frozen",
            "import copy\nmodel = copy.deepcopy(model)\n"
            "for p in model.features.parameters():\n    p.requires_grad = True",
            "still train",
            misconception="features-not-frozen",
        ),
        Wrong(
            "test_freeze",
            "classifier frozen too",
            "import copy\nmodel = copy.deepcopy(model)\n"
            "for p in model.classifier.parameters():\n    p.requires_grad = False",
            "does not train",
            misconception="classifier-frozen-too",
        ),
        Wrong(
            "test_freeze",
            "ImageNet's 1000 classes kept",
            "import copy\nmodel = copy.deepcopy(model)\n"
            "model.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(1280, 1000)).to(device)",
            "expected shape (1, 2)",
            misconception="imagenet-classifier-kept",
        ),
        Wrong(
            "test_freeze",
            "DenseNet's Linear(1024, 2), from the original course",
            "import copy\nmodel = copy.deepcopy(model)\nmodel.classifier = nn.Linear(1024, 2).to(device)",
            "the classifier takes 1024 inputs, the backbone gives 1280 features",
            misconception="densenet-width",
        ),
        Wrong(
            "test_photo_loop",
            "the backbone not frozen: a fresh one loaded in the loop's cell, the whole model trained",
            """
model = helper.pretrained_backbone().model
model.classifier = nn.Linear(1280, 2)
model = model.to(device)
criterion = nn.CrossEntropyLoss()
optimizer = optim.Adam(model.parameters(), lr=0.001)
model.train()
model.features.eval()
images, labels = next(iter(photo_loader))  # one step: the judge needs no more
optimizer.zero_grad()
criterion(model(images.to(device)), labels.to(device)).backward()
optimizer.step()
""",
            "the backbone is not frozen",
            misconception="features-not-frozen",
        ),
        Wrong(
            "test_photo_loop",
            "the whole model's parameters in the optimizer",
            PHOTO_LOOP.format(
                optimizer="optim.Adam(model.parameters(), lr=0.001)",
                mode="model.features.eval()",
                zero="optimizer.zero_grad()",
                epochs=1,
            ),
            "not model.classifier's",
            misconception="optimizer-over-whole-model",
        ),
        Wrong(
            "test_photo_loop",
            "model.train() alone: the frozen backbone's batch normalisation in training mode",
            PHOTO_LOOP.format(
                optimizer="optim.Adam(model.classifier.parameters(), lr=0.001)",
                mode="pass",
                zero="optimizer.zero_grad()",
                epochs=1,
            ),
            "the frozen backbone changed",
            misconception="batch-norm-statistics-updated",
        ),
        Wrong(
            "test_photo_loop",
            "optimizer.zero_grad() missing",
            PHOTO_LOOP.format(
                optimizer="optim.Adam(model.classifier.parameters(), lr=0.001)",
                mode="model.features.eval()",
                zero="pass",
                epochs=2,
            ),
            "call optimizer.zero_grad() in every step",
            misconception="gradients-not-cleared",
        ),
        Wrong(
            "test_extract_features",
            "feature maps not averaged",
            """
def extract_features(dataset):
    model.eval()
    with torch.inference_mode():
        batches = [(torch.flatten(model.features(x.to(device)), 1), y.to(device))
                   for x, y in DataLoader(dataset, batch_size=64)]
    return TensorDataset(torch.cat([f for f, _ in batches]), torch.cat([y for _, y in batches]))
""",
            "expected shape (8, 1280)",
            misconception="feature-maps-not-averaged",
        ),
        Wrong(
            "test_extract_features",
            "shuffled loader",
            """
def extract_features(dataset):
    model.eval()
    with torch.inference_mode():
        loader = DataLoader(dataset, batch_size=3, shuffle=True, generator=torch.Generator().manual_seed(0))
        batches = [(torch.flatten(model.avgpool(model.features(x.to(device))), 1), y.to(device))
                   for x, y in loader]
    return TensorDataset(torch.cat([f for f, _ in batches]), torch.cat([y for _, y in batches]))
""",
            "the labels should be",
            misconception="features-shuffled",
        ),
        Wrong(
            "test_extract_features",
            "the classifier's scores instead of features",
            """
def extract_features(dataset):
    model.eval()
    with torch.inference_mode():
        batches = [(model(x.to(device)), y.to(device)) for x, y in DataLoader(dataset, batch_size=64)]
    return TensorDataset(torch.cat([f for f, _ in batches]), torch.cat([y for _, y in batches]))
""",
            "expected shape (8, 1280)",
            misconception="scores-for-features",
        ),
        Wrong(
            "test_extract_features",
            "batch normalisation in training mode",
            """
import copy


def extract_features(dataset):
    body = copy.deepcopy(model).train()  # a copy: training mode updates batch normalisation's statistics
    with torch.inference_mode():
        batches = [(torch.flatten(body.avgpool(body.features(x.to(device))), 1), y.to(device))
                   for x, y in DataLoader(dataset, batch_size=4)]
    return TensorDataset(torch.cat([f for f, _ in batches]), torch.cat([y for _, y in batches]))
""",
            "call model.eval() first",
            misconception="features-in-training-mode",
        ),
        Wrong(
            "test_accuracy",
            "classifier not trained",
            "import copy\ntorch.manual_seed(1)\nmodel = copy.deepcopy(model)\n"
            "model.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(1280, 2)).to(device)",
            "expected at least 95%",
            misconception="classifier-undertrained",
        ),
        Wrong(
            "test_accuracy",
            "the whole model run on the features: the cell stops with an error",
            """
import copy
import sys

model = copy.deepcopy(model)
model.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(1280, 2)).to(device)
history = {"train_loss": [], "valid_loss": [], "valid_accuracy": []}
optimizer = optim.Adam(model.classifier.parameters(), lr=0.001)
try:  # the cell stops at its first batch; IPython keeps the error as sys.last_value
    for features, labels in feature_trainloader:
        optimizer.zero_grad()
        loss = criterion(model(features.to(device)), labels.to(device))
        loss.backward()
        optimizer.step()
except RuntimeError as error:
    sys.last_type, sys.last_value, sys.last_traceback = type(error), error, error.__traceback__
""",
            "your answer cell stopped with an error: fix it first — RuntimeError: Expected 3D",
            misconception="whole-model-on-features",
        ),
        Wrong(
            "test_accuracy",
            "test features in another order than test_data",
            "test_features = TensorDataset(*(t.flip(0) for t in test_features.tensors))",
            "model(photos) for 32 test photos: values differ",
            graded=PASSES,  # the grader measures the whole model on every test photo, not test_features,
            misconception="test-features-out-of-order",
        ),
        Wrong(
            "test_accuracy",
            "the training features in place of the test features",
            "test_features = train_features",
            "test_features holds",
            graded=PASSES,  # the grader measures the whole model on every test photo, not test_features,
            misconception="training-features-for-test-features",
        ),
    ],
}

# Correct answers in other styles than the solutions': every new or changed check must pass them
# (`view`, `reshape`, `@`; a module class and nn.Sequential; modules and torch.nn.functional; ...).
RIGHT = {
    "01_tensors": [
        Right(
            "test_broadcast_shapes",
            "torch.Size and a capital Error",
            'shapes = {"A": torch.Size([2, 3]), "B": torch.Size([3, 3]), "C": torch.Size([3, 3]),'
            ' "D": "Error", "E": torch.Size([2, 3])}',
        ),
        Right(
            "test_broadcast_shapes",
            "lists, lower-case letters, raises",
            'shapes = {"a": [2, 3], "b": [3, 3], "c": [3, 3], "d": "raises", "e": [2, 3]}',
        ),
        Right(
            "test_broadcast_shapes",
            "dict() from a comprehension, a spaced ERROR",
            'letters, guesses = "ABCDE", [(2, 3), (3, 3), (3, 3), " ERROR", (2, 3)]\n'
            "shapes = dict(zip(letters, guesses))\nprint(shapes)",
        ),
        Right(
            "test_neuron_mm", "reshape and @", "y_mm = activation(features @ weights.reshape(5, 1) + bias)"
        ),
        Right(
            "test_neuron_mm",
            "matmul with the transpose",
            "y_mm = activation(torch.matmul(features, weights.T) + bias)",
        ),
        Right("test_numpy_bridge", "a string of letters", 'changes = "ADF"'),
        Right("test_numpy_bridge", "a list, lower case", 'changes = ["f", "d", "a"]'),
    ],
    "02_neural_networks": [
        Right(
            "test_raw_forward",
            "shapes as tuples, the biases drawn first, torch.mm",
            "inputs = images.flatten(start_dim=1)\n"
            "b1, b2 = torch.randn(256), torch.randn(10)\n"
            "W1, W2 = torch.randn((784, 256)), torch.randn((256, 10))\n"
            "out = torch.mm(torch.sigmoid(torch.mm(inputs, W1) + b1), W2) + b2",
        ),
        Right(
            "test_softmax",
            "a docstring and a comment that name torch.softmax",
            '''
def softmax(x):
    """What torch.softmax computes, written out."""
    e = torch.exp(x - x.amax(dim=1, keepdim=True))  # not F.softmax: exp and sum
    return e / e.sum(dim=1, keepdim=True)
''',
        ),
        Right(
            "test_softmax",
            "log-sum-exp, the sums reshaped with view",
            "def softmax(x):\n    return torch.exp(x - torch.logsumexp(x, dim=1).view(-1, 1))",
        ),
        Right(
            "test_softmax",
            "under no_grad, the maximum from torch.max",
            """
def softmax(x):
    with torch.no_grad():
        e = (x - torch.max(x, dim=1, keepdim=True)[0]).exp()
        return e / e.sum(1, keepdim=True)
""",
        ),
        Right(
            "test_network_class",
            "nn.ReLU modules, one used twice, other names",
            """
class Network(nn.Module):
    def __init__(self):
        super().__init__()
        self.hidden1 = nn.Linear(784, 128)
        self.hidden2 = nn.Linear(128, 64)
        self.scores = nn.Linear(64, 10)
        self.relu = nn.ReLU()

    def forward(self, x):
        return self.scores(self.relu(self.hidden2(self.relu(self.hidden1(x)))))
""",
        ),
        Right(
            "test_network_class",
            "an nn.Sequential inside the class, flattening first",
            """
class Network(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(
            nn.Flatten(), nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 64), nn.ReLU(), nn.Linear(64, 10)
        )

    def forward(self, x):
        return self.net(x)
""",
        ),
        Right(
            "test_network_class",
            "torch.relu, the output layer registered first",
            """
class Network(nn.Module):
    def __init__(self):
        super().__init__()
        self.out = nn.Linear(64, 10)
        self.layer1 = nn.Linear(784, 128)
        self.layer2 = nn.Linear(128, 64)

    def forward(self, x):
        x = torch.relu(self.layer1(x))
        return self.out(torch.relu(self.layer2(x)))
""",
        ),
        Right(
            "test_network_class",
            "super(Network, self), flattening in forward, clamp for ReLU, a print",
            """
class Network(nn.Module):
    def __init__(self):
        super(Network, self).__init__()
        self.hidden1 = nn.Linear(28 * 28, 128)
        self.hidden2 = nn.Linear(128, 64)
        self.last = nn.Linear(64, 10)

    def forward(self, x):
        x = x.view(x.shape[0], -1)
        h = self.hidden1(x).clamp(min=0)
        h = self.hidden2(h).clamp(min=0)
        return self.last(h)


print(Network())
""",
        ),
        Right(
            "test_network_class",
            "an nn.ModuleList and a loop, x.relu()",
            """
class Network(nn.Module):
    def __init__(self):
        super().__init__()
        self.layers = nn.ModuleList([nn.Linear(784, 128), nn.Linear(128, 64), nn.Linear(64, 10)])

    def forward(self, x):
        for layer in self.layers[:-1]:
            x = layer(x).relu()
        return self.layers[-1](x)
""",
        ),
        Right(
            "test_sequential",
            "named_model built with add_module, ReLU in place",
            """
named_model = nn.Sequential()
for name, module in [
    ("fc1", nn.Linear(784, 128)),
    ("relu1", nn.ReLU(inplace=True)),
    ("fc2", nn.Linear(128, 64)),
    ("relu2", nn.ReLU(inplace=True)),
    ("output", nn.Linear(64, 10)),
]:
    named_model.add_module(name, module)
""",
        ),
    ],
    "03_training": [
        Right("test_expected_loss", "ln 10", "expected_loss = math.log(10)"),
        Right(
            "test_expected_loss",
            "with torch",
            "expected_loss = float(-torch.log(torch.tensor(0.1)))",
        ),
        Right(
            "test_task_losses",
            "the functional losses",
            "import torch.nn.functional as F\n"
            "regression_loss = F.mse_loss(predicted_price, true_price)\n"
            "binary_loss = F.binary_cross_entropy_with_logits(spam_scores, is_spam)",
        ),
        Right(
            "test_task_losses",
            "the formulas, and BCELoss on probabilities",
            "regression_loss = ((predicted_price - true_price) ** 2).mean()\n"
            "binary_loss = nn.BCELoss()(torch.sigmoid(spam_scores), is_spam)",
        ),
        Right(
            "test_ce_loss",
            "torch.nn.functional.cross_entropy",
            "ce_loss = torch.nn.functional.cross_entropy(model(images), labels)",
        ),
        Right(
            "test_training_loop",
            "a larger learning rate, 2 epochs, nn.Flatten in the model and the summed loss",
            """
torch.manual_seed(3)
model = nn.Sequential(
    nn.Flatten(), nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 64), nn.ReLU(), nn.Linear(64, 10)
).to(device)
sgd = optim.SGD(model.parameters(), lr=0.1)
sum_loss = nn.CrossEntropyLoss(reduction="sum")
train_losses = []
for epoch in range(2):
    total = 0.0
    for images, labels in tqdm(trainloader, leave=False):
        images, labels = images.to(device), labels.to(device)
        sgd.zero_grad()
        loss = sum_loss(model(images), labels)
        (loss / len(labels)).backward()
        sgd.step()
        total += loss.item()
    train_losses.append(total / len(trainloader.dataset))
""",
        ),
        Right(
            "test_one_step",
            "zero_grad(set_to_none=True)",
            """
model = copy.deepcopy(model_before)
criterion(model(images), labels).backward()  # the gradient the Autograd cell left in model
optimizer = optim.SGD(model.parameters(), lr=0.01)
optimizer.zero_grad(set_to_none=True)
criterion(model(images), labels).backward()
optimizer.step()
""",
        ),
        Right(
            "test_one_step",
            "a loop body that clears the gradients after its step (and once before the loop)",
            """
model = copy.deepcopy(model_before)
criterion(model(images), labels).backward()  # the gradient the Autograd cell left in model
optimizer = optim.SGD(model.parameters(), lr=0.01)
optimizer.zero_grad()
for batch_images, batch_labels in [(images, labels)]:
    loss = criterion(model(batch_images), batch_labels)
    loss.backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=False)  # zeros, ready for the next step
""",
        ),
        Right(
            "test_one_step",
            "model.zero_grad, the optimizer created after backward",
            """
model = copy.deepcopy(model_before)
model.zero_grad()
output = model(images)
loss = criterion(output, labels)
loss.backward()
optimizer = optim.SGD(model.parameters(), lr=0.01)
optimizer.step()
""",
        ),
        Right(
            "test_one_step",
            "a right step, then Exercise 6's cell (it makes an optimizer too) stopped by an error of its own",
            """
import sys

model = copy.deepcopy(model_before)
optimizer = optim.SGD(model.parameters(), lr=0.01)
optimizer.zero_grad()
criterion(model(images), labels).backward()
optimizer.step()
exercise_6 = \"\"\"
try:  # the cell stops; IPython keeps its error as sys.last_value
    train_losses = []
    torch.ones(64, 1, 28, 28).view(64, -1) @ torch.ones(64, 128)  # mat1 and mat2 shapes cannot be multiplied
    optimizer = optim.SGD(model.parameters(), lr=0.03)
except RuntimeError as error:
    sys.last_type, sys.last_value, sys.last_traceback = type(error), error, error.__traceback__
\"\"\"
exec(compile(exercise_6, "<exercise 6>", "exec"), globals())  # Exercise 6's cell, run after this one
""",
        ),
    ],
    "04_fashion_mnist": [
        Right(
            "test_network",
            "named layers in an OrderedDict, LeakyReLU, .to(device) on its own line",
            """
from collections import OrderedDict

layers = OrderedDict(
    [("flat", nn.Flatten()), ("hidden", nn.Linear(28 * 28, 200)), ("act", nn.LeakyReLU()),
     ("out", nn.Linear(200, 10))]
)
model = nn.Sequential(layers)
model.to(device)
print(sum(p.numel() for p in model.parameters()))
""",
        ),
        Right(
            "test_predict",
            "the exp of log_softmax over the last dimension",
            "with torch.no_grad():\n    ps = model(images.to(device)).log_softmax(dim=-1).exp().cpu()",
        ),
        Right(
            "test_network",
            "a class of its own design, functional activations, on the device",
            """
class FashionNet(nn.Module):
    def __init__(self, width=512):
        super().__init__()
        self.hidden = nn.Linear(784, width)
        self.out = nn.Linear(width, 10)

    def forward(self, x):
        x = F.relu(self.hidden(torch.flatten(x, start_dim=1)))
        return self.out(x)


import torch.nn.functional as F

model = FashionNet().to(device)
""",
        ),
        Right(
            "test_train",
            "F.cross_entropy in a loop without tqdm (one more epoch, on a copy of the trained model)",
            """
import copy

import torch.nn.functional as F

model = copy.deepcopy(model)
optimizer = optim.Adam(model.parameters(), lr=0.0005)
train_losses = []
for epoch in range(1):
    model.train()
    total, seen = 0.0, 0
    for images, labels in trainloader:
        images, labels = images.to(device), labels.to(device)
        loss = F.cross_entropy(model(images), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        total, seen = total + loss.item() * len(labels), seen + len(labels)
    train_losses.append(total / seen)
""",
        ),
        Right(
            "test_predict",
            "an nn.Softmax(dim=1) module",
            "with torch.no_grad():\n    ps = nn.Softmax(dim=1)(model(images.to(device))).cpu()",
        ),
        Right(
            "test_predict",
            "the tensor's own softmax method",
            "with torch.no_grad():\n    ps = model(images.to(device)).softmax(1).cpu()",
        ),
    ],
    "05_inference_and_validation": [
        Right(
            "test_validate",
            "a summed loss of the criterion's own kind, the right answers concatenated",
            """
def validate(model, loader, criterion):
    model.eval()
    summed = type(criterion)(reduction="sum")
    loss_sum, hits = 0.0, []
    with torch.no_grad():
        for x, y in loader:
            x, y = x.to(device), y.to(device)
            out = model(x)
            loss_sum += summed(out, y).item()
            hits.append((out.argmax(1) == y).cpu())
    hits = torch.cat(hits)
    return loss_sum / len(hits), hits.float().mean().item()
""",
        ),
        Right(
            "test_train_loop",
            "the count raised first, a state_dict cloned by a comprehension",
            TRAIN_5.format(
                validation="""        vl, va = validate(model, validloader, criterion)
        history["valid_loss"] += [vl]
        history["valid_accuracy"] += [va]
        epochs_without_improvement += 1
        if vl < best_loss:
            best_loss, epochs_without_improvement = vl, 0
            best_state = {k: t.detach().clone() for k, t in model.state_dict().items()}
"""
            ),
        ),
        Right(
            "test_precision_recall",
            "NumPy arrays",
            "import numpy as np\n\na = matrix.numpy()\nprecision = np.diag(a) / a.sum(axis=0)\n"
            "recall = np.diag(a) / a.sum(axis=1)",
        ),
        Right(
            "test_precision_recall",
            "a list comprehension per class",
            "m = matrix.float()\nprecision = torch.tensor([m[c, c] / m[:, c].sum() for c in range(10)])\n"
            "recall = torch.tensor([m[c, c].item() / m[c].sum().item() for c in range(10)])",
        ),
        Right(
            "test_confusion",
            "a loop over the pairs, predictions collected first, no_grad as a decorator",
            """
@torch.no_grad()
def confusion_matrix(model, loader, num_classes=10):
    model.eval()
    truths, guesses = [], []
    for images, labels in loader:
        truths.append(labels)
        guesses.append(model(images.to(device)).argmax(1).cpu())
    matrix = torch.zeros(num_classes, num_classes, dtype=torch.int64)
    for t, p in zip(torch.cat(truths).tolist(), torch.cat(guesses).tolist()):
        matrix[t, p] += 1
    return matrix
""",
        ),
        Right(
            "test_confusion",
            "index_put_ with accumulate, float counts",
            """
def confusion_matrix(model, loader, num_classes=10):
    model.eval()
    matrix = torch.zeros(num_classes, num_classes)
    with torch.no_grad():
        for images, labels in loader:
            _, top = model(images.to(device)).topk(1, dim=1)
            matrix.index_put_((labels, top.view(-1).cpu()), torch.ones(len(labels)), accumulate=True)
    return matrix
""",
        ),
        Right(
            "test_train_loop",
            "the validation pass written out, set_grad_enabled, softmax and topk, the state copied tensor by "
            "tensor",
            TRAIN_5.format(
                validation="""
        model.eval()
        total, correct = 0.0, 0
        with torch.set_grad_enabled(False):
            for images, labels in validloader:
                images, labels = images.to(device), labels.to(device)
                scores = model(images)
                total += criterion(scores, labels).item() * len(labels)
                correct += (torch.softmax(scores, dim=1).topk(1, dim=1)[1].view(-1) == labels).sum().item()
        valid_loss = total / len(validloader.dataset)
        history["valid_loss"].append(valid_loss)
        history["valid_accuracy"].append(correct / len(validloader.dataset))
        if valid_loss < best_loss:
            best_loss, best_epoch = valid_loss, epoch
            best_state = {name: tensor.clone() for name, tensor in model.state_dict().items()}
        epochs_without_improvement = epoch - best_epoch
"""
            ),
        ),
        Right(
            "test_dropout_model",
            "a module class with F.dropout, one hidden layer, 5 epochs at lr=0.002",
            """
import torch.nn.functional as F


class DropoutNet(nn.Module):
    def __init__(self, p=0.2):
        super().__init__()
        self.hidden = nn.ModuleList([nn.Linear(784, 256)])
        self.output = nn.Linear(256, 10)
        self.p = p

    def forward(self, x):
        x = x.view(x.shape[0], -1)
        for layer in self.hidden:
            x = F.dropout(F.relu(layer(x)), self.p, training=self.training)
        return self.output(x)


torch.manual_seed(7)
dropout_model = DropoutNet().to(device)
history_dropout, best_state = train(dropout_model, small_trainloader, validloader, epochs=5, lr=0.002)
""",
        ),
        Right(
            "test_best_model",
            "the state loaded first, then saved from the model",
            """
dropout_model = copy.deepcopy(dropout_model)
dropout_model.load_state_dict(best_state)
torch.save(dropout_model.state_dict(), "best_model.pth")
test_loss, test_accuracy = validate(dropout_model, testloader, nn.CrossEntropyLoss())
""",
        ),
        Right(
            "test_precision_recall",
            "torch.diagonal over float counts, sums by axis",
            "counts = matrix.float()\nprecision = torch.diagonal(counts) / counts.sum(axis=0)\n"
            "recall = torch.diagonal(counts) / counts.sum(axis=1)",
        ),
        Right(
            "test_precision_recall",
            "NumPy, class by class",
            """
import numpy as np

counts = matrix.numpy()
precision = np.array([counts[k, k] / counts[:, k].sum() for k in range(10)])
recall = np.array([counts[k, k] / counts[k, :].sum() for k in range(10)])
""",
        ),
    ],
    "06_saving_and_loading": [
        Right(
            "test_round_trip",
            "a tuple of sizes and weights, any error a ValueError",
            """
def save_checkpoint(model, path):
    sizes = (model.input_size, model.output_size, list(model.hidden_layers), model.drop_p)
    torch.save((sizes, model.state_dict()), path)


def load_checkpoint(path):
    try:
        sizes, weights = torch.load(path, weights_only=True)
        net = helper.MLP(*sizes[:3], drop_p=sizes[3])
        net.load_state_dict(weights)
        return net
    except Exception as err:
        raise ValueError(f"not a checkpoint: {path!s}") from err


save_checkpoint(model, "checkpoint.pth")
restored = load_checkpoint("checkpoint.pth")
""",
        ),
        Right(
            "test_bad_files",
            "the file's name only, keys checked before use, an open file handle",
            """
def load_checkpoint(path):
    path = Path(path)
    try:
        with open(path, "rb") as f:
            saved = torch.load(f, weights_only=True, map_location="cpu")
    except Exception as e:
        raise ValueError(f"cannot read {path.name} as a checkpoint") from e
    if not isinstance(saved, dict) or "state_dict" not in saved:
        raise ValueError(f"{path.name}: not a checkpoint")
    model = helper.MLP(saved["input_size"], saved["output_size"], saved["hidden_layers"], saved["drop_p"])
    model.load_state_dict(saved["state_dict"])
    return model
""",
        ),
        Right(
            "test_round_trip",
            "a tuple of the layer sizes and the weights, loaded with strict=True on the CPU",
            """
import pickle


def save_checkpoint(model, path):
    sizes = [model.input_size, *model.hidden_layers, model.output_size]
    torch.save((sizes, model.drop_p, model.state_dict()), path)


def load_checkpoint(path):
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    try:
        sizes, drop_p, weights = torch.load(path, map_location="cpu", weights_only=True)
        rebuilt = helper.MLP(sizes[0], sizes[-1], list(sizes[1:-1]), drop_p=drop_p)
        rebuilt.load_state_dict(weights, strict=True)
    except (RuntimeError, ValueError, TypeError, EOFError, pickle.UnpicklingError) as error:
        raise ValueError(f"{path} is not a valid checkpoint ({type(error).__name__})") from error
    return rebuilt


save_checkpoint(model, "checkpoint.pth")
restored = load_checkpoint("checkpoint.pth")
""",
        ),
        Right(
            "test_round_trip",
            "keys of its own, the architecture as a nested dict",
            """
import os


def save_checkpoint(model, path):
    architecture = {"in": model.input_size, "out": model.output_size, "hidden": list(model.hidden_layers)}
    torch.save({"architecture": architecture, "dropout": model.drop_p, "weights": model.state_dict()}, path)


def load_checkpoint(path):
    if not os.path.exists(path):
        raise FileNotFoundError(path)
    try:
        saved = torch.load(path, weights_only=True)
        net = helper.MLP(saved["architecture"]["in"], saved["architecture"]["out"],
                         saved["architecture"]["hidden"], saved["dropout"])
        net.load_state_dict(saved["weights"])
        return net
    except Exception as error:
        raise ValueError(f"not a valid checkpoint: {path}") from error


save_checkpoint(model, "checkpoint.pth")
restored = load_checkpoint("checkpoint.pth")
""",
        ),
        Right(
            "test_bad_files",
            "the refusal caught by its type, the keys checked before building",
            """
import pickle


def load_checkpoint(path):
    try:
        checkpoint = torch.load(path, weights_only=True, map_location="cpu")
    except pickle.UnpicklingError as error:
        raise ValueError(f"{path}: torch.load refused it, not a checkpoint") from error
    keys = {"input_size", "output_size", "hidden_layers", "drop_p", "state_dict"}
    if not isinstance(checkpoint, dict) or not keys <= checkpoint.keys():
        raise ValueError(f"{path} is not a checkpoint of save_checkpoint's format")
    model = helper.MLP(checkpoint["input_size"], checkpoint["output_size"], checkpoint["hidden_layers"],
                       checkpoint["drop_p"])
    model.load_state_dict(checkpoint["state_dict"])
    return model
""",
        ),
        Right(
            "test_resume",
            "PyTorch's tutorial's keys, loaded on the CPU",
            """
def save_training_state(path, model, optimizer, epoch):
    checkpoint = {
        "epoch": epoch,
        "model_state_dict": model.state_dict(),
        "optimizer_state_dict": optimizer.state_dict(),
    }
    torch.save(checkpoint, path)


def resume_training(path, model, optimizer):
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    model.load_state_dict(checkpoint["model_state_dict"])
    optimizer.load_state_dict(checkpoint["optimizer_state_dict"])
    return int(checkpoint["epoch"])
""",
        ),
        Right(
            "test_resume",
            "a tuple, and an epoch kept as a tensor",
            """
def save_training_state(path, model, optimizer, epoch):
    torch.save((model.state_dict(), optimizer.state_dict(), torch.tensor(epoch)), path)


def resume_training(path, model, optimizer):
    weights, optimizer_state, epoch = torch.load(path, weights_only=True)
    model.load_state_dict(weights)
    optimizer.load_state_dict(optimizer_state)
    return epoch.item()
""",
        ),
    ],
    "07_loading_image_data": [
        Right(
            "test_loaders",
            "larger batches, the datasets made inline",
            "trainloader = DataLoader(datasets.ImageFolder(data_dir / 'train', transform=train_transforms), "
            "batch_size=128, shuffle=True)\n"
            "testloader = DataLoader(test_data, batch_size=250, shuffle=False)",
        ),
        Right(
            "test_transforms",
            "the older torchvision.transforms, a gentler crop and colour jitter",
            """
from torchvision import transforms

to_input = [transforms.ToTensor(), transforms.Normalize(helper.IMAGENET_MEAN, helper.IMAGENET_STD)]
crop = transforms.RandomResizedCrop(224, scale=(0.5, 1.0))
train_transforms = transforms.Compose(
    [crop, transforms.RandomHorizontalFlip(), transforms.ColorJitter(0.3, 0.3), *to_input]
)
test_transforms = transforms.Compose([transforms.Resize(255), transforms.CenterCrop(224), *to_input])
""",
        ),
        Right(
            "test_transforms",
            "colour, hue and greyscale augmentation, a patch erased after Normalize",
            """
normalize = v2.Normalize(helper.IMAGENET_MEAN, helper.IMAGENET_STD)
train_transforms = v2.Compose(
    [
        v2.RandomResizedCrop(224, scale=(0.6, 1.0)),
        v2.RandomHorizontalFlip(),
        v2.ColorJitter(brightness=0.3, contrast=0.3, saturation=0.3, hue=0.05),
        v2.RandomGrayscale(p=0.1),
        v2.ToImage(),
        v2.ToDtype(torch.float32, scale=True),
        normalize,
        v2.RandomErasing(p=0.5),
    ]
)
""",
        ),
        Right(
            "test_csv_dataset",
            "os.path and the csv module's reader, labels numbered by a dict",
            """
import os


class CsvPhotos(Dataset):
    def __init__(self, csv_file, image_dir, transform=None):
        with open(csv_file) as f:
            lines = list(csv.reader(f))[1:]
        self.classes = sorted(set(label for _, label in lines))
        to_index = {c: i for i, c in enumerate(self.classes)}
        self.files = [os.path.join(image_dir, name) for name, _ in lines]
        self.targets = [to_index[label] for _, label in lines]
        self.transform = transform

    def __len__(self):
        return len(self.files)

    def __getitem__(self, i):
        image = Image.open(self.files[i]).convert("RGB")
        if self.transform is not None:
            image = self.transform(image)
        return image, self.targets[i]
""",
        ),
        Right(
            "test_csv_dataset",
            "the labels as a tensor, the file read with pathlib",
            """
class CsvPhotos(Dataset):
    def __init__(self, csv_file, image_dir, transform=None):
        header, *rows = Path(csv_file).read_text().strip().splitlines()
        pairs = [row.rsplit(",", 1) for row in rows]
        self.classes = sorted({label for _, label in pairs})
        self.paths = [Path(image_dir) / name for name, _ in pairs]
        self.labels = torch.tensor([self.classes.index(label) for _, label in pairs])
        self.transform = transform

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, index):
        with Image.open(self.paths[index]) as image:
            return self.transform(image.convert("RGB")), self.labels[index]
""",
        ),
    ],
    "08_transfer_learning": [
        Right(
            "test_photo_loop",
            "the optimizer over the parameters that require gradients, batch norm layers set one by one",
            PHOTO_LOOP.format(
                optimizer="optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-3)",
                mode="[m.eval() for m in model.modules() if isinstance(m, nn.BatchNorm2d)]",
                zero="optimizer.zero_grad(set_to_none=True)",
                epochs=2,
            ),
        ),
        Right(
            "test_freeze",
            "requires_grad_ on the whole model, one Linear sized from the old classifier",
            """
import copy

model = copy.deepcopy(model)
model.requires_grad_(False)
model.classifier = nn.Linear(model.classifier[-1].in_features, 2)
model.to(device)
""",
        ),
        Right(
            "test_freeze",
            "the features frozen, a classifier with a hidden layer",
            """
import copy

model = copy.deepcopy(model)
for parameter in model.features.parameters():
    parameter.requires_grad_(False)
head = nn.Sequential(nn.Linear(1280, 128), nn.ReLU(), nn.Dropout(0.3), nn.Linear(128, 2))
model.classifier = head.to(device)
""",
        ),
        Right(
            "test_photo_loop",
            "model.eval() throughout, SGD with momentum, gradients cleared after each step",
            """
import copy

torch.manual_seed(5)
model = copy.deepcopy(model)
model.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(1280, 2)).to(device)
optimizer = torch.optim.SGD(model.classifier.parameters(), lr=0.01, momentum=0.9)
model.eval()  # dropout off too: the classifier still learns
for epoch in range(2):
    for images, labels in photo_loader:
        loss = torch.nn.functional.cross_entropy(model(images.to(device)), labels.to(device))
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
""",
        ),
        Right(
            "test_photo_loop",
            "each batch-norm layer put in evaluation mode by hand, a hidden layer, AdamW",
            """
import copy

torch.manual_seed(6)
model = copy.deepcopy(model)
model.classifier = nn.Sequential(nn.Linear(1280, 64), nn.ReLU(), nn.Linear(64, 2)).to(device)
criterion = nn.CrossEntropyLoss()
optimizer = optim.AdamW(model.classifier.parameters(), lr=0.002)
for epoch in range(2):
    model.train()
    for layer in model.modules():
        if isinstance(layer, nn.BatchNorm2d):
            layer.eval()
    for images, labels in photo_loader:
        optimizer.zero_grad(set_to_none=True)
        criterion(model(images.to(device)), labels.to(device)).backward()
        optimizer.step()
""",
        ),
        Right(
            "test_photo_loop",
            "the loop, then Exercise 4's cell (it makes an optimizer too) stopped by an error of its own",
            """
import copy
import sys

model = copy.deepcopy(model)
criterion = nn.CrossEntropyLoss()
optimizer = optim.Adam(model.classifier.parameters(), lr=0.001)
for epoch in range(2):
    model.train()
    model.features.eval()
    for images, labels in photo_loader:
        images, labels = images.to(device), labels.to(device)
        optimizer.zero_grad()
        criterion(model(images), labels).backward()
        optimizer.step()
exercise_4 = \"\"\"
try:  # the cell stops; IPython keeps its error as sys.last_value
    feature_trainloader = None
    torch.ones(64, 1280) @ torch.ones(64, 2)  # mat1 and mat2 shapes cannot be multiplied
    optimizer = optim.Adam(model.classifier.parameters(), lr=0.001)
except RuntimeError as error:
    sys.last_type, sys.last_value, sys.last_traceback = type(error), error, error.__traceback__
\"\"\"
exec(compile(exercise_4, "<exercise 4>", "exec"), globals())  # Exercise 4's cell, run after this one
""",
        ),
        Right(
            "test_extract_features",
            "torch.no_grad, batches of 64, adaptive_avg_pool2d and flatten(1)",
            """
def extract_features(dataset):
    model.eval()
    all_features, all_labels = [], []
    with torch.no_grad():
        for images, labels in DataLoader(dataset, batch_size=64, shuffle=False):
            maps = model.features(images.to(device))
            all_features.append(torch.nn.functional.adaptive_avg_pool2d(maps, 1).flatten(1))
            all_labels.append(labels.to(device))
    return TensorDataset(torch.cat(all_features), torch.cat(all_labels))
""",
        ),
        Right(
            "test_extract_features",
            "the model itself with its classifier replaced by nn.Identity, one photo at a time",
            """
import copy


def extract_features(dataset):
    body = copy.deepcopy(model).eval()
    body.classifier = nn.Identity()
    with torch.inference_mode():
        rows = [(body(image.unsqueeze(0).to(device))[0], torch.tensor(label)) for image, label in dataset]
    return TensorDataset(torch.stack([f for f, _ in rows]), torch.stack([y for _, y in rows]).to(device))
""",
        ),
        Right(
            "test_accuracy",
            "SGD with momentum over the whole training features, no validation",
            """
import copy

model = copy.deepcopy(model)
model.classifier = nn.Sequential(nn.Linear(1280, 2)).to(device)
sgd = torch.optim.SGD(model.classifier.parameters(), lr=0.01, momentum=0.9)
for epoch in range(5):
    for features, labels in DataLoader(train_features, batch_size=32, shuffle=True):
        sgd.zero_grad()
        torch.nn.functional.cross_entropy(model.classifier(features.to(device)), labels.to(device)).backward()
        sgd.step()
""",
        ),
    ],
}
