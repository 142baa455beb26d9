"""ResNets: CIFAR-style ResNet-8/20/18 for small images, torchvision's ResNet-50 for 224-px images.

Input channels and classes follow the data set. All models are built from torchvision's own ResNet pieces
(``torchvision.models.resnet``), not re-implemented.
"""

from __future__ import annotations

import torch
import torch.nn as nn
from torchvision.models import ResNet50_Weights, resnet18, resnet50
from torchvision.models.resnet import BasicBlock, conv1x1

from .errors import ConfigError


class CifarResNet(nn.Module):
    """He et al. (2016)'s CIFAR ResNet: a 3x3 stem, three stages of ``blocks`` basic blocks at widths
    (w, 2w, 4w) with stride 2 between stages, global average pooling and a linear classifier; depth 6*blocks + 2.
    Shortcuts that change shape use a 1x1 convolution + BatchNorm (option B)."""

    def __init__(self, blocks: int, num_classes: int, in_channels: int = 3, width: int = 16) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, width, 3, 1, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU(inplace=True)
        )
        layers, planes = [], width
        for stage, out in enumerate((width, 2 * width, 4 * width)):
            for b in range(blocks):
                stride = 2 if stage > 0 and b == 0 else 1
                down = None
                if stride != 1 or planes != out:
                    down = nn.Sequential(conv1x1(planes, out, stride), nn.BatchNorm2d(out))
                layers.append(BasicBlock(planes, out, stride, down))
                planes = out
        self.layers = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(planes, num_classes)
        for m in self.modules():  # the same initialisation as torchvision's ResNet
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.pool(self.layers(self.stem(x))), 1))


def cifar_resnet18(num_classes: int, in_channels: int = 3) -> nn.Module:
    """torchvision's ResNet-18 with the CIFAR stem: a 3x3 stride-1 first convolution and no max-pool (the model
    the paper trains on CIFAR-100)."""
    model = resnet18(num_classes=num_classes)
    model.conv1 = nn.Conv2d(in_channels, 64, 3, 1, 1, bias=False)
    nn.init.kaiming_normal_(model.conv1.weight, mode="fan_out", nonlinearity="relu")
    model.maxpool = nn.Identity()
    return model


def imagenet_resnet50(num_classes: int, in_channels: int = 3, pretrained: bool = False) -> nn.Module:
    """torchvision's ResNet-50 with a new ``num_classes`` head; ``pretrained`` loads ImageNet weights
    (IMAGENET1K_V2) from torchvision's cache or its download, and raises ``ConfigError`` if they cannot be had."""
    weights = ResNet50_Weights.IMAGENET1K_V2 if pretrained else None
    try:
        model = resnet50(weights=weights)
    except Exception as exc:  # no network / no cached file: urllib, OSError, RuntimeError alike
        raise ConfigError(
            f"--pretrained: torchvision's ImageNet ResNet-50 weights could not be loaded ({type(exc).__name__}); "
            f"put {weights.url.rsplit('/', 1)[-1]} into $TORCH_HOME/hub/checkpoints or drop --pretrained"
        ) from None
    if in_channels != 3:
        old = model.conv1
        model.conv1 = nn.Conv2d(in_channels, 64, 7, 2, 3, bias=False)
        with torch.no_grad():  # keep pretrained filters meaningful: average them over the RGB channels
            model.conv1.weight.copy_(old.weight.mean(dim=1, keepdim=True).expand_as(model.conv1.weight))
    model.fc = nn.Linear(model.fc.in_features, num_classes)
    return model


def build_model(name: str, num_classes: int, in_channels: int, pretrained: bool = False) -> nn.Module:
    """The model ``--model`` names. Raises ``ConfigError`` for an unknown name."""
    if name == "resnet8":
        return CifarResNet(1, num_classes, in_channels)
    if name == "resnet20":
        return CifarResNet(3, num_classes, in_channels)
    if name == "resnet18":
        return cifar_resnet18(num_classes, in_channels)
    if name == "resnet50":
        return imagenet_resnet50(num_classes, in_channels, pretrained)
    raise ConfigError(f"--model {name!r} is unknown: choose resnet8, resnet20, resnet18 or resnet50")
