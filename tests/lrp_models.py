"""Small random float64 models for the LRP tests (no downloads, fixed seeds)."""

from __future__ import annotations

import torch
from torch import nn


def _randomise(model: nn.Module, seed: int) -> nn.Module:
    """Non-trivial biases and BatchNorm statistics, so that every term of a rule matters."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, (nn.Conv2d, nn.Linear)) and module.bias is not None:
                module.bias.copy_(0.1 * torch.randn(module.bias.shape, generator=generator))
            if isinstance(module, nn.BatchNorm2d):
                n = module.num_features
                module.running_mean.copy_(0.2 * torch.randn(n, generator=generator))
                module.running_var.copy_(0.5 + torch.rand(n, generator=generator))
                module.weight.copy_(0.5 + torch.rand(n, generator=generator))
                module.bias.copy_(0.1 * torch.randn(n, generator=generator))
    return model.double().eval()


def conv_net(seed: int = 0, bias: bool = True) -> nn.Sequential:
    """A VGG-like net with grouped and depthwise convs, max and average pooling; 3x16x16 in."""
    torch.manual_seed(seed)
    model = nn.Sequential(
        nn.Conv2d(3, 6, 3, padding=1, bias=bias),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(6, 8, 3, padding=1, groups=2, bias=bias),
        nn.ReLU(),
        nn.Conv2d(8, 8, 3, stride=2, padding=1, groups=8, bias=bias),
        nn.ReLU(),
        nn.AvgPool2d(2),
        nn.Flatten(),
        nn.Linear(32, 12, bias=bias),
        nn.ReLU(),
        nn.Dropout(0.5),
        nn.Linear(12, 5, bias=bias),
    )
    return _randomise(model, seed)


def conv_bn_net(seed: int = 0) -> nn.Sequential:
    """Conv + BatchNorm pairs (one conv without bias); 3x8x8 in."""
    torch.manual_seed(seed)
    model = nn.Sequential(
        nn.Conv2d(3, 6, 3, padding=1),
        nn.BatchNorm2d(6),
        nn.ReLU(),
        nn.Conv2d(6, 8, 3, padding=1, bias=False),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(128, 4),
    )
    return _randomise(model, seed)


class ResidualConcatNet(nn.Module):
    """ResNet-style: conv-BN stem, a residual block with a skip, a concat branch; 3x8x8 in."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU())
        self.conv1 = nn.Conv2d(8, 8, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(8)
        self.conv2 = nn.Conv2d(8, 8, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(8)
        self.side = nn.Conv2d(8, 4, 1)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Linear(12, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        y = torch.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        x = torch.relu(x + y)
        x = torch.cat([x, torch.relu(self.side(x))], dim=1)
        return self.head(torch.flatten(self.pool(x), 1))


def residual_concat_net(seed: int = 0) -> ResidualConcatNet:
    torch.manual_seed(seed)
    return _randomise(ResidualConcatNet(), seed)


def relu_mlp(seed: int = 0, bias: bool = True, activation: type[nn.Module] = nn.ReLU) -> nn.Sequential:
    """A dense net on 3x2x2 inputs."""
    torch.manual_seed(seed)
    model = nn.Sequential(
        nn.Flatten(), nn.Linear(12, 16, bias=bias), activation(), nn.Linear(16, 16, bias=bias),
        activation(), nn.Linear(16, 3, bias=bias),
    )
    return _randomise(model, seed)


def odd_layers_net(seed: int = 0) -> nn.Sequential:
    """Reflect padding, a BatchNorm after a ReLU (not foldable) and adaptive pooling; 3x8x8 in."""
    torch.manual_seed(seed)
    model = nn.Sequential(
        nn.Conv2d(3, 6, 3, padding=1, padding_mode="reflect"),
        nn.ReLU(),
        nn.BatchNorm2d(6),
        nn.Conv2d(6, 6, 3, stride=2),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(2),
        nn.Flatten(),
        nn.Linear(24, 4),
    )
    return _randomise(model, seed)


def inputs(shape, seed: int = 1) -> torch.Tensor:
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def relative_error(actual: torch.Tensor, expected: torch.Tensor) -> float:
    """max |actual - expected| / max |expected|."""
    actual, expected = actual.detach(), expected.detach()
    return float((actual - expected).abs().max() / expected.abs().max())
