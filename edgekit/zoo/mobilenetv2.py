"""MobileNetV2 (Sandler et al., 2018) with width, resolution and class-count options.

Module names follow torchvision's so that its ImageNet state_dict loads strictly: ``features.N``
blocks, each inverted residual holding a ``conv`` Sequential, and ``classifier.1`` the final Linear.
"""

from torch import nn

# (expansion t, output channels c, repeats n, first stride s) from the paper's Table 2
INVERTED_RESIDUAL_SETTING = (
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)


def make_divisible(value: float, divisor: int = 8) -> int:
    """Round channels to a multiple of ``divisor`` without going more than 10% below ``value``."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return rounded


def conv_bn_relu6(in_ch: int, out_ch: int, kernel: int = 3, stride: int = 1, groups: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_ch, out_ch, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False),
        nn.BatchNorm2d(out_ch),
        nn.ReLU6(inplace=True),
    )


class InvertedResidual(nn.Module):
    """Expand (1x1) -> depthwise 3x3 -> project (1x1, linear); residual when shapes allow."""

    def __init__(self, in_ch: int, out_ch: int, stride: int, expand_ratio: int):
        super().__init__()
        hidden = int(round(in_ch * expand_ratio))
        self.use_residual = stride == 1 and in_ch == out_ch
        layers = []
        if expand_ratio != 1:
            layers.append(conv_bn_relu6(in_ch, hidden, kernel=1))
        layers += [
            conv_bn_relu6(hidden, hidden, stride=stride, groups=hidden),
            nn.Conv2d(hidden, out_ch, 1, 1, 0, bias=False),
            nn.BatchNorm2d(out_ch),
        ]
        self.conv = nn.Sequential(*layers)

    def forward(self, x):
        return x + self.conv(x) if self.use_residual else self.conv(x)


class MobileNetV2(nn.Module):
    def __init__(self, num_classes: int = 1000, width: float = 1.0, dropout: float = 0.2):
        super().__init__()
        in_ch = make_divisible(32 * width)
        last_ch = make_divisible(1280 * max(1.0, width))
        features = [conv_bn_relu6(3, in_ch, stride=2)]
        for t, c, n, s in INVERTED_RESIDUAL_SETTING:
            out_ch = make_divisible(c * width)
            for i in range(n):
                features.append(InvertedResidual(in_ch, out_ch, s if i == 0 else 1, t))
                in_ch = out_ch
        features.append(conv_bn_relu6(in_ch, last_ch, kernel=1))
        self.features = nn.Sequential(*features)
        self.classifier = nn.Sequential(nn.Dropout(dropout), nn.Linear(last_ch, num_classes))
        self._init_weights()

    def _init_weights(self):
        """torchvision's initialisation, so that widths without pretrained weights still give activations
        of a sensible scale (PyTorch's defaults shrink them towards zero through the 50 layers)."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.zeros_(m.bias)

    def forward(self, x):
        x = self.features(x)
        x = nn.functional.adaptive_avg_pool2d(x, 1).flatten(1)
        return self.classifier(x)


def float_bytes(width: float = 1.0, resolution: int = 224, num_classes: int = 1000) -> int:
    """Bytes of the float32 parameters plus every layer's output at this size, worked out from the
    architecture without building it: what building and exporting the model holds at least once."""
    def out(size: int, stride: int) -> int:
        return (size - 1) // stride + 1  # 3x3 (or 1x1) with "same" padding

    size = out(resolution, 2)
    in_ch, last_ch = make_divisible(32 * width), make_divisible(1280 * max(1.0, width))
    params, activations = 27 * in_ch + 2 * in_ch, in_ch * size * size
    for t, c, n, s in INVERTED_RESIDUAL_SETTING:
        out_ch = make_divisible(c * width)
        for i in range(n):
            hidden = int(round(in_ch * t))
            if t != 1:
                params += in_ch * hidden + 2 * hidden
                activations += hidden * size * size
            size = out(size, s if i == 0 else 1)
            params += 11 * hidden + hidden * out_ch + 2 * out_ch
            activations += (hidden + out_ch) * size * size
            in_ch = out_ch
    params += in_ch * last_ch + 2 * last_ch + last_ch * num_classes + num_classes
    activations += last_ch * size * size + num_classes
    return 4 * (params + activations)
