"""Small random float64 models for the LRP tests (no downloads, fixed seeds)."""

from __future__ import annotations

import torch
import torch.fx
import torch.nn.functional as F
from torch import nn


def _randomise(model: nn.Module, seed: int, shifts: bool = True) -> nn.Module:
    """Non-trivial biases and normalisation statistics, so that every term of a rule matters.

    ``shifts=False`` zeroes BatchNorm's running mean and beta, so that it only scales (a
    bias-free net, in which relevance is conserved).
    """
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, (nn.Conv2d, nn.Linear)) and module.bias is not None:
                module.bias.copy_(0.1 * torch.randn(module.bias.shape, generator=generator))
            if isinstance(module, nn.BatchNorm2d):
                n = module.num_features
                module.running_mean.copy_(0.2 * torch.randn(n, generator=generator) if shifts else torch.zeros(n))
                module.running_var.copy_(0.5 + torch.rand(n, generator=generator))
                module.weight.copy_(0.5 + torch.rand(n, generator=generator))
                module.bias.copy_(0.1 * torch.randn(n, generator=generator) if shifts else torch.zeros(n))
            if isinstance(module, nn.LayerNorm):
                module.weight.copy_(0.5 + torch.rand(module.weight.shape, generator=generator))
                if module.bias is not None:
                    module.bias.copy_(0.1 * torch.randn(module.bias.shape, generator=generator))
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
        nn.Flatten(),
        nn.Linear(12, 16, bias=bias),
        activation(),
        nn.Linear(16, 16, bias=bias),
        activation(),
        nn.Linear(16, 3, bias=bias),
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


# ---- architectures users bring (torchvision-shaped; torchvision itself is not imported) ----


def stochastic_depth(input: torch.Tensor, p: float, mode: str, training: bool = True) -> torch.Tensor:
    """torchvision.ops.stochastic_depth: drops whole residual branches in training, identity in eval."""
    if not training or p == 0.0:
        return input
    size = [input.shape[0]] + [1] * (input.dim() - 1) if mode == "row" else [1] * input.dim()
    noise = torch.empty(size, dtype=input.dtype, device=input.device).bernoulli_(1.0 - p)
    return input * noise.div_(1.0 - p)


torch.fx.wrap("stochastic_depth")  # as torchvision does: one call_function node in traced graphs


class StochasticDepth(nn.Module):
    def __init__(self, p: float, mode: str) -> None:
        super().__init__()
        self.p, self.mode = p, mode

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        return stochastic_depth(input, self.p, self.mode, self.training)


def _conv_bn(
    cin: int, cout: int, kernel: int, stride: int = 1, groups: int = 1, activation: type[nn.Module] | None = nn.SiLU
) -> nn.Sequential:
    """torchvision's Conv2dNormActivation: conv (no bias), BatchNorm, activation."""
    layers = [nn.Conv2d(cin, cout, kernel, stride, kernel // 2, groups=groups, bias=False), nn.BatchNorm2d(cout)]
    return nn.Sequential(*layers, *([activation()] if activation else []))


class SqueezeExcitation(nn.Module):
    """torchvision.ops.SqueezeExcitation: ``scale * input`` with scale = gate(fc2(act(fc1(pool))))."""

    def __init__(self, channels: int, squeeze: int, scale_activation: type[nn.Module] = nn.Sigmoid) -> None:
        super().__init__()
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(channels, squeeze, 1)
        self.fc2 = nn.Conv2d(squeeze, channels, 1)
        self.activation = nn.SiLU()
        self.scale_activation = scale_activation()

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        scale = self.scale_activation(self.fc2(self.activation(self.fc1(self.avgpool(input)))))
        return scale * input


class MBConv(nn.Module):
    """EfficientNet's MBConv (MobileNetV3's with a hard-sigmoid gate): expand, depthwise, SE,
    project, stochastic depth and the residual addition."""

    def __init__(self, channels: int, expanded: int, gate: type[nn.Module] = nn.Sigmoid) -> None:
        super().__init__()
        self.block = nn.Sequential(
            _conv_bn(channels, expanded, 1),
            _conv_bn(expanded, expanded, 3, groups=expanded),
            SqueezeExcitation(expanded, 4, gate),
            _conv_bn(expanded, channels, 1, activation=None),
        )
        self.stochastic_depth = StochasticDepth(0.2, "row")

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        result = self.block(input)
        result = self.stochastic_depth(result)
        result += input
        return result


class MBConvNet(nn.Module):
    """A stem with a hand-written SiLU (x * sigmoid(x)), two MBConv blocks (sigmoid and hard
    sigmoid gates), average pooling and a dense head; 3x8x8 in, 5 classes."""

    def __init__(self, bias: bool = True) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1, bias=bias), nn.BatchNorm2d(8))
        self.blocks = nn.Sequential(MBConv(8, 16, nn.Sigmoid), MBConv(8, 16, nn.Hardsigmoid))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Linear(8, 5, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        x = x * torch.sigmoid(x)
        return self.head(torch.flatten(self.pool(self.blocks(x)), 1))


def mbconv_net(seed: int = 0, bias: bool = True) -> MBConvNet:
    torch.manual_seed(seed)
    return _randomise(MBConvNet(bias), seed, shifts=bias)


class LayerNorm2d(nn.LayerNorm):
    """torchvision.models.convnext.LayerNorm2d: LayerNorm over channels of an NCHW tensor."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.permute(0, 2, 3, 1)
        x = F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)
        return x.permute(0, 3, 1, 2)


class Permute(nn.Module):
    """torchvision.ops.Permute."""

    def __init__(self, dims: list[int]) -> None:
        super().__init__()
        self.dims = dims

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.permute(x, self.dims)


class CNBlock(nn.Module):
    """torchvision's ConvNeXt block: depthwise 7x7 (here 3x3), channels-last LayerNorm and
    MLP, layer scale, stochastic depth, residual addition."""

    def __init__(self, dim: int, bias: bool = True) -> None:
        super().__init__()
        self.block = nn.Sequential(
            nn.Conv2d(dim, dim, 3, padding=1, groups=dim, bias=bias),
            Permute([0, 2, 3, 1]),
            nn.LayerNorm(dim, eps=1e-6, bias=bias),
            nn.Linear(dim, 4 * dim, bias=bias),
            nn.GELU(),
            nn.Linear(4 * dim, dim, bias=bias),
            Permute([0, 3, 1, 2]),
        )
        self.layer_scale = nn.Parameter(0.5 + torch.rand(dim, 1, 1))
        self.stochastic_depth = StochasticDepth(0.1, "row")

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        result = self.layer_scale * self.block(input)
        result = self.stochastic_depth(result)
        result += input
        return result


class ConvNeXtNet(nn.Module):
    """ConvNeXt-shaped: patchify stem + LayerNorm2d, blocks, a LayerNorm2d + conv downsample,
    average pooling, LayerNorm2d + dense head; 3x16x16 in, 5 classes."""

    def __init__(self, bias: bool = True) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Sequential(nn.Conv2d(3, 8, 2, stride=2, bias=bias), LayerNorm2d(8, eps=1e-6, bias=bias)),
            CNBlock(8, bias),
            nn.Sequential(LayerNorm2d(8, eps=1e-6, bias=bias), nn.Conv2d(8, 12, 2, stride=2, bias=bias)),
            CNBlock(12, bias),
        )
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(
            LayerNorm2d(12, eps=1e-6, bias=bias), nn.Flatten(1), nn.Linear(12, 5, bias=bias)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.avgpool(self.features(x)))


def convnext_net(seed: int = 0, bias: bool = True) -> ConvNeXtNet:
    torch.manual_seed(seed)
    return _randomise(ConvNeXtNet(bias), seed)


def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    """ShuffleNet's channel shuffle: view, transpose, contiguous, flatten back."""
    batch, channels, height, width = x.size()
    x = x.view(batch, groups, channels // groups, height, width)
    return torch.transpose(x, 1, 2).contiguous().flatten(1, 2)


class ShuffleUnit(nn.Module):
    """torchvision's ShuffleNetV2 unit (stride 1): half the channels pass, half go through a
    branch, concatenated and shuffled. ``split`` chooses Tensor.chunk or torch.split."""

    def __init__(self, channels: int, split: str = "chunk") -> None:
        super().__init__()
        half = channels // 2
        self.split = split
        self.branch2 = nn.Sequential(
            _conv_bn(half, half, 1, activation=nn.ReLU),
            _conv_bn(half, half, 3, groups=half, activation=None),
            _conv_bn(half, half, 1, activation=nn.ReLU),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        channels = x.shape[1]
        torch._assert(channels % 2 == 0, "the unit splits its channels in halves")
        if self.split == "chunk":
            x1, x2 = x.chunk(2, dim=1)
        else:
            x1, x2 = torch.split(x, [channels // 2, channels - channels // 2], dim=1)
        out = torch.cat((x1, self.branch2(x2)), dim=1)
        return channel_shuffle(out, 2)


class ShuffleNet(nn.Module):
    """ShuffleNetV2-shaped: conv stem, overlapping 3x3/2 max pool with padding, two units,
    a 1x1 conv, spatial mean, dense head; 3x16x16 in, 5 classes. Its traced graph holds
    shape arithmetic (``//``, ``-``, ``*``, ``%`` on sizes) and ``torch._assert``."""

    def __init__(self, bias: bool = True) -> None:
        super().__init__()
        self.conv1 = _conv_bn(3, 8, 3, stride=2, activation=nn.ReLU)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.stage2 = nn.Sequential(ShuffleUnit(8, "chunk"), ShuffleUnit(8, "split"))
        self.conv5 = _conv_bn(8, 16, 1, activation=nn.ReLU)
        self.fc = nn.Linear(16, 5, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv5(self.stage2(self.maxpool(self.conv1(x))))
        batch, channels, height, width = x.size()
        return self.fc(x.reshape(batch, channels, height * width).mean(-1))


def shuffle_net(seed: int = 0, bias: bool = True) -> ShuffleNet:
    torch.manual_seed(seed)
    return _randomise(ShuffleNet(bias), seed, shifts=bias)


class BasicBlock(nn.Module):
    """torchvision's ResNet BasicBlock (one ReLU module used twice, optional downsample)."""

    def __init__(self, cin: int, cout: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out += identity
        return self.relu(out)


class ResNetStyle(nn.Module):
    """ResNet-shaped: 5x5/2 conv + BN stem, 3x3/2 max pool with padding, a plain and a
    downsampling BasicBlock, adaptive average pooling, dense head; 3x16x16 in, 5 classes."""

    def __init__(self, bias: bool = True) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 5, 2, 2, bias=False)
        self.bn1 = nn.BatchNorm2d(8)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.layer1 = nn.Sequential(BasicBlock(8, 8))
        self.layer2 = nn.Sequential(BasicBlock(8, 16, stride=2))
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.dropout = nn.Identity()
        self.fc = nn.Linear(16, 5, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer2(self.layer1(x))
        return self.fc(self.dropout(torch.flatten(self.avgpool(x), 1)))


def resnet_style(seed: int = 0, bias: bool = True) -> ResNetStyle:
    torch.manual_seed(seed)
    return _randomise(ResNetStyle(bias), seed, shifts=bias)


def inputs(shape, seed: int = 1) -> torch.Tensor:
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def relative_error(actual: torch.Tensor, expected: torch.Tensor) -> float:
    """max |actual - expected| / max |expected|."""
    actual, expected = actual.detach(), expected.detach()
    return float((actual - expected).abs().max() / expected.abs().max())
