"""Plausible wrong answers for every graded check, by part (see harness.py for how they run)."""

from harness import Wrong

UNTRAINED_MNIST = """
torch.manual_seed(1)
model = nn.Sequential(nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 64), nn.ReLU(), nn.Linear(64, 10))
"""

WRONG = {
    "01_tensors": [
        Wrong("test_neuron_sum", "no activation", "y = torch.sum(features * weights) + bias", "activation"),
        Wrong("test_neuron_sum", "bias added before the sum",
              "y = activation(torch.sum(features * weights + bias)).view(1, 1)", "y: values differ"),
        Wrong("test_neuron_sum", "a scalar instead of (1, 1)",
              "y = activation(torch.sum(features * weights) + bias.item())", "expected shape (1, 1)"),
        Wrong("test_neuron_mm", "resize_ on weights",
              "weights = weights.clone()\ny_mm = activation(torch.mm(features, weights.resize_(5, 1)) + bias)", "weights: expected shape (1, 5)"),
        Wrong("test_neuron_mm", "element-wise product instead of matrix product",
              "y_mm = activation(features * weights + bias)", "expected shape (1, 1)"),
        Wrong("test_two_layer", "no activation on the output",
              "h = activation(torch.mm(features, W1) + B1)\noutput = torch.mm(h, W2) + B2", "output: values differ"),
        Wrong("test_two_layer", "hidden layer without bias",
              "h = activation(torch.mm(features, W1))\noutput = activation(torch.mm(h, W2) + B2)", "h: values differ"),
        Wrong("test_numpy_bridge", "two copies",
              "shared = torch.tensor(arr)\nindependent = torch.tensor(arr)", "does not share memory"),
        Wrong("test_numpy_bridge", "two shared tensors",
              "shared = torch.from_numpy(arr)\nindependent = torch.from_numpy(arr)", "independent shares memory"),
    ],
    "02_neural_networks": [
        Wrong("test_raw_forward", "no flatten", "inputs = images", "did you flatten"),
        Wrong("test_raw_forward", "sigmoid on the output too",
              "out = torch.sigmoid(torch.sigmoid(inputs @ W1 + b1) @ W2 + b2)", "out: values differ"),
        Wrong("test_softmax", "summed over the wrong dim",
              "def softmax(x):\n    return torch.exp(x) / torch.exp(x).sum(dim=0, keepdim=True)", "sum of each row"),
        Wrong("test_softmax", "no keepdim",
              "def softmax(x):\n    return torch.exp(x) / torch.exp(x).sum(dim=1)", "softmax(scores)"),
        Wrong("test_softmax", "overflows on large scores",
              "def softmax(x):\n    return torch.exp(x) / torch.exp(x).sum(dim=1, keepdim=True)", "maximum first"),
        Wrong("test_network_class", "no ReLU", """
class Network(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.fc2, self.fc3 = nn.Linear(784, 128), nn.Linear(128, 64), nn.Linear(64, 10)
    def forward(self, x):
        return self.fc3(self.fc2(self.fc1(x)))
""", "linear"),
        Wrong("test_network_class", "softmax output", """
class Network(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.fc2, self.fc3 = nn.Linear(784, 128), nn.Linear(128, 64), nn.Linear(64, 10)
    def forward(self, x):
        x = torch.relu(self.fc2(torch.relu(self.fc1(x))))
        return torch.softmax(self.fc3(x), dim=1)
""", "returns probabilities"),
        Wrong("test_network_class", "layers transposed", """
class Network(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.fc2, self.fc3 = nn.Linear(128, 784), nn.Linear(64, 128), nn.Linear(10, 64)
    def forward(self, x):
        return x
""", "fc1.weight: expected shape (128, 784)"),
        Wrong("test_sequential", "missing ReLU",
              "seq_model = nn.Sequential(nn.Linear(784, 128), nn.Linear(128, 64), nn.Linear(64, 10))",
              "expected layers Linear, ReLU"),
        Wrong("test_sequential", "unnamed layers in named_model",
              "named_model = nn.Sequential(nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 64), nn.ReLU(), "
              "nn.Linear(64, 10))", "should be named"),
    ],
    "03_training": [
        Wrong("test_log_softmax", "log-softmax over the batch",
              "log_model = nn.Sequential(*list(log_model)[:-1], nn.LogSoftmax(dim=0))", "dim=1"),
        Wrong("test_log_softmax", "cross-entropy on log-probabilities",
              "nll_criterion = nn.CrossEntropyLoss()", "should be nn.NLLLoss"),
        Wrong("test_log_softmax", "loss of a different batch",
              "nll_loss = nll_criterion(log_model(images[:32]), labels[:32]) * 1.5", "nll_loss: values differ"),
        Wrong("test_one_step", "no step", "model = copy.deepcopy(model_before)", "did not change"),
        Wrong("test_one_step", "missing zero_grad", """
model = copy.deepcopy(model_before)
criterion(model(images), labels).backward()  # the gradient the earlier cell left in model
optimizer = optim.SGD(model.parameters(), lr=0.01)
loss = criterion(model(images), labels)
loss.backward()
optimizer.step()
""", "zero_grad"),
        Wrong("test_training_loop", "not trained", UNTRAINED_MNIST + "train_losses = [2.3, 2.2]", "expected at least 90%"),
        Wrong("test_training_loop", "missing zero_grad", UNTRAINED_MNIST + """
optimizer = optim.SGD(model.parameters(), lr=0.03)
train_losses = [2.3, 2.2]
for images, labels in trainloader:
    loss = criterion(model(images.view(images.shape[0], -1)), labels)
    loss.backward()
    optimizer.step()
""", "expected at least 90%"),
        Wrong("test_training_loop", "losses not recorded", "train_losses = []", "train_losses is empty"),
    ],
}
