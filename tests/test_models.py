"""Model shapes and structure against the architectures' definitions."""

import torch

from tsla.models import build_model


def _n_params(m):
    return sum(p.numel() for p in m.parameters())


def test_cifar_resnets_shapes_and_depth():
    for name, blocks in (("resnet8", 1), ("resnet20", 3)):
        m = build_model(name, num_classes=10, in_channels=1)
        assert m(torch.randn(2, 1, 28, 28)).shape == (2, 10)
        convs = [x for x in m.modules() if isinstance(x, torch.nn.Conv2d) and x.kernel_size == (3, 3)]
        assert len(convs) + 1 == 6 * blocks + 2  # 3x3 convs plus the classifier = depth
    # He et al.'s ResNet-20 has about 0.27M parameters (with 1x1 projection shortcuts slightly more)
    assert 0.26e6 < _n_params(build_model("resnet20", 10, 3)) < 0.28e6


def test_cifar_resnet18_keeps_32px_resolution_in_stem():
    m = build_model("resnet18", num_classes=100, in_channels=3)
    assert m.conv1.kernel_size == (3, 3) and m.conv1.stride == (1, 1)
    assert isinstance(m.maxpool, torch.nn.Identity)
    assert m(torch.randn(2, 3, 32, 32)).shape == (2, 100)
    # ResNet-18 for 100 classes: 11.22M parameters (11.17M for 10 classes, the well-known figure)
    assert abs(_n_params(m) - 11.22e6) < 0.01e6


def test_resnet50_head_and_channels():
    m = build_model("resnet50", num_classes=120, in_channels=3)
    assert m.fc.out_features == 120
    assert m(torch.randn(1, 3, 64, 64)).shape == (1, 120)
    grey = build_model("resnet50", num_classes=5, in_channels=1)
    assert grey.conv1.in_channels == 1


def test_pretrained_weights_unavailable_is_a_clear_error(monkeypatch):
    import urllib.error

    import pytest
    from torchvision.models import ResNet50_Weights

    from tsla.errors import ConfigError

    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(type(ResNet50_Weights.IMAGENET1K_V2), "get_state_dict", offline)
    with pytest.raises(ConfigError, match="--pretrained: torchvision's ImageNet ResNet-50 weights could not be loaded"):
        build_model("resnet50", num_classes=10, in_channels=3, pretrained=True)
