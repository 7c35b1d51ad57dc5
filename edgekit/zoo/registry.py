"""Names of the built-in models, their options and how to build them."""

import os
from dataclasses import dataclass, field
from typing import Callable

from edgekit.errors import EdgekitError, UnknownNameError
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
    # the options a state_dict may have been saved from, read off its tensor shapes (tried in order)
    options_from_state_dict: Callable[[dict], list[dict]] = lambda state: []
    # float32 bytes of parameters plus activations for the given options (see check_options)
    float_bytes: Callable[..., int] | None = None


# What the zoo's options may be; memory is checked on top (MEMORY_FACTOR x float_bytes).
RESOLUTION_RANGE = (8, 4096)
WIDTH_RANGE = (0.05, 4.0)
NUM_CLASSES_RANGE = (1, 100_000)
# torch's exporter traces with fake tensors (loading MobileNetV2 peaked at 525 MB at 224 px and 537 MB at
# 1024 px, measured), but the example input, the weights and calibration's float activations are real
MEMORY_FACTOR = 2


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
                               "only width 1.0 with 1000 classes has them (pass --no-pretrained for random weights)")
    check_options(ZOO["mobilenetv2"], width=width, resolution=resolution, num_classes=num_classes)
    torch.manual_seed(0)
    module = MobileNetV2(num_classes=num_classes, width=width)
    if pretrained:
        state = torch.load(cached_weights(*MOBILENETV2_WEIGHTS), map_location="cpu", weights_only=True)
        module.load_state_dict(state, strict=True)
    module.eval()
    return ZooModel("mobilenetv2", module, resolution, IMAGENET_MEAN, IMAGENET_STD, IMAGENET_CROP_FRACTION, pretrained)


def _mobilenetv2_float_bytes(**options) -> int:
    from edgekit.zoo.mobilenetv2 import float_bytes

    return float_bytes(**options)


def check_resolution(resolution) -> int:
    """An input size in pixels within RESOLUTION_RANGE (an EdgekitError names the value and the range)."""
    low, high = RESOLUTION_RANGE
    if isinstance(resolution, bool) or not isinstance(resolution, int) or not low <= resolution <= high:
        raise EdgekitError(f"--resolution {resolution}: expected a whole number of pixels from {low} to {high:,}")
    return resolution


def check_options(entry: ZooEntry, width: float, resolution: int, num_classes: int) -> None:
    """Options in range, and a model small enough to build in this machine's memory, checked before
    anything is allocated."""
    check_resolution(resolution)
    low, high = WIDTH_RANGE
    if not isinstance(width, (int, float)) or not low <= width <= high:  # also refuses NaN
        raise EdgekitError(f"--width {width}: expected a width multiplier from {low} to {high}")
    low, high = NUM_CLASSES_RANGE
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or not low <= num_classes <= high:
        raise EdgekitError(f"--num-classes {num_classes}: expected a whole number from {low} to {high:,}")
    if entry.float_bytes is None:
        return
    needed = MEMORY_FACTOR * entry.float_bytes(width=width, resolution=resolution, num_classes=num_classes)
    available = available_memory_bytes()
    if needed > available // 2:
        largest = max((r for r in range(RESOLUTION_RANGE[0], resolution, 8) if MEMORY_FACTOR * entry.float_bytes(
            width=width, resolution=r, num_classes=num_classes) <= available // 2), default=None)
        hint = f"use --resolution {largest} or less" if largest else "use a smaller --width"
        raise EdgekitError(f"{entry.name} at --width {width} --resolution {resolution}: building it needs about "
                           f"{needed / 2**30:,.1f} GiB, over half of the {available / 2**30:,.1f} GiB this machine "
                           f"has free; {hint}")


def available_memory_bytes() -> int:
    """MemAvailable from /proc/meminfo (Linux), else the physical memory."""
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


MOBILENETV2_WIDTHS = (1.0, 0.75, 0.5, 0.35, 1.3, 1.4)  # the widths MobileNetV2 checkpoints are published at


def mobilenetv2_options_from_state_dict(state: dict) -> list[dict]:
    """Width and class count from the stem convolution's and the classifier's shapes."""
    from edgekit.zoo.mobilenetv2 import make_divisible

    stem, classifier = state.get("features.0.0.weight"), state.get("classifier.1.weight")
    if stem is None or classifier is None or stem.ndim != 4 or classifier.ndim != 2:
        return []
    return [{"width": width, "num_classes": int(classifier.shape[0])} for width in MOBILENETV2_WIDTHS
            if make_divisible(32 * width) == stem.shape[0]]


ZOO = {
    "mobilenetv2": ZooEntry(
        "mobilenetv2",
        "MobileNetV2 (ImageNet weights at width 1.0); options width, resolution, num_classes",
        build_mobilenetv2,
        {"width": 1.0, "resolution": 224, "num_classes": 1000},
        mobilenetv2_options_from_state_dict,
        _mobilenetv2_float_bytes,
    ),
}


def zoo_entry(name: str) -> ZooEntry:
    if name not in ZOO:
        raise UnknownNameError(f"unknown zoo model {name!r}; available: {', '.join(sorted(ZOO))} "
                               "(or pass a .pt/.onnx/.tflite/.ek file)")
    return ZOO[name]


def load_zoo_model(name: str, **options) -> ZooModel:
    return zoo_entry(name).build(**{k: v for k, v in options.items() if v is not None})


def zoo_model_from_state_dict(state: dict, source: str, resolution: int | None = None, width: float | None = None,
                              num_classes: int | None = None) -> ZooModel:
    """The zoo architecture that ``state`` loads into strictly, with its weights.

    Options the user gave win over those read off the tensor shapes. ModelFileError when no zoo
    architecture takes the state_dict, naming the first mismatch.
    """
    from edgekit.errors import ModelFileError

    given = {k: v for k, v in {"width": width, "num_classes": num_classes}.items() if v is not None}
    mismatches = []
    for name, entry in ZOO.items():
        for options in entry.options_from_state_dict(state) or [{}]:
            options = {**options, **given, "resolution": resolution or entry.options["resolution"]}
            zoo = entry.build(pretrained=False, **options)
            try:
                zoo.module.load_state_dict(state, strict=True)
            except RuntimeError as error:
                mismatches.append(f"{name} {options}: {str(error).strip().splitlines()[-1].strip()[:160]}")
                continue
            return ZooModel(name, zoo.module.eval(), zoo.resolution, zoo.mean, zoo.std, zoo.crop_fraction, True)
    raise ModelFileError(f"{source} is a state_dict that no zoo architecture takes ({mismatches[0]}); pass the "
                         "--width/--num-classes it was trained with, or save a TorchScript module with "
                         "torch.jit.save(torch.jit.script(model), path)")
