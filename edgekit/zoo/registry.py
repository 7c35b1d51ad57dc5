"""Names of the built-in models, their options and how to build them."""

from dataclasses import dataclass, field
from typing import Callable

from edgekit.errors import UnknownNameError
from edgekit.frontend.images import IMAGENET_CROP_FRACTION, IMAGENET_MEAN, IMAGENET_STD


@dataclass(frozen=True)
class ZooModel:
    """A built model: the torch module plus what an input must look like."""

    name: str
    module: object
    resolution: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    crop_fraction: float
    pretrained: bool


@dataclass(frozen=True)
class ZooEntry:
    name: str
    description: str
    build: Callable[..., ZooModel]
    options: dict = field(default_factory=dict)


MOBILENETV2_WEIGHTS = ("mobilenet_v2-b0353104.pth", "b0353104")


def build_mobilenetv2(width: float = 1.0, resolution: int = 224, num_classes: int = 1000,
                      pretrained: bool | None = None) -> ZooModel:
    """ImageNet weights load when the architecture matches them (width 1.0, 1000 classes)."""
    import torch

    from edgekit.zoo.mobilenetv2 import MobileNetV2
    from edgekit.zoo.weights import cached_weights

    matches_weights = width == 1.0 and num_classes == 1000
    if pretrained is None:
        pretrained = matches_weights
    if pretrained and not matches_weights:
        raise UnknownNameError(f"no pretrained MobileNetV2 weights for width {width} and {num_classes} classes; "
                               "only width 1.0 with 1000 classes has them (pass pretrained=False)")
    torch.manual_seed(0)
    module = MobileNetV2(num_classes=num_classes, width=width)
    if pretrained:
        state = torch.load(cached_weights(*MOBILENETV2_WEIGHTS), map_location="cpu", weights_only=True)
        module.load_state_dict(state, strict=True)
    module.eval()
    return ZooModel("mobilenetv2", module, resolution, IMAGENET_MEAN, IMAGENET_STD, IMAGENET_CROP_FRACTION, pretrained)


ZOO = {
    "mobilenetv2": ZooEntry(
        "mobilenetv2",
        "MobileNetV2 (ImageNet weights at width 1.0); options width, resolution, num_classes",
        build_mobilenetv2,
        {"width": 1.0, "resolution": 224, "num_classes": 1000},
    ),
}


def load_zoo_model(name: str, **options) -> ZooModel:
    if name not in ZOO:
        raise UnknownNameError(f"unknown zoo model {name!r}; available: {', '.join(sorted(ZOO))} "
                               "(or pass a .pt/.onnx/.tflite/.ek file)")
    return ZOO[name].build(**{k: v for k, v in options.items() if v is not None})
