"""Image files -> model inputs: the preprocessing a model was trained with, done the same way here.

Resizing follows torchvision's ``Resize(shorter side)`` + ``CenterCrop``, so a zoo model sees the
same pixels as in its training code: the ImageNet MobileNetV2 resizes to 256 and crops 224
(``crop_fraction=224/256``, ``mean=IMAGENET_MEAN``, ``std=IMAGENET_STD``); the VWW person detector
takes the whole image scaled to [0, 1] (``crop_fraction=1``). Inputs are NHWC [1, H, W, 3] float32,
and :func:`quantize_input` turns them into the int8 tensor an int8 model expects.
"""

import math
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from edgekit.errors import EdgekitError
from edgekit.ir import QuantParams

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
IMAGENET_CROP_FRACTION = 224 / 256


def load_image(path, size, *, crop_fraction: float = 1.0, mean=None, std=None) -> np.ndarray:
    """Read an image file as a float32 [1, H, W, 3] array (RGB, 0..1, then ``(x - mean) / std``).

    ``size`` is H (square) or (H, W). The shorter image side is resized to
    ``floor(max(H, W) / crop_fraction)`` with bilinear filtering, then the center H x W is cut out.
    """
    height, width = (size, size) if isinstance(size, int) else size
    try:
        with Image.open(Path(path)) as image:
            rgb = image.convert("RGB")
    except FileNotFoundError:
        raise EdgekitError(f"image file {path} does not exist") from None
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, ValueError, SyntaxError) as exc:
        raise EdgekitError(f"cannot read image {path}: {exc}") from None
    rgb = _resize_shorter_side(rgb, math.floor(max(height, width) / crop_fraction))
    rgb = _center_crop(rgb, height, width)
    x = np.asarray(rgb, dtype=np.float32) / np.float32(255.0)
    if mean is not None:
        x = (x - np.asarray(mean, dtype=np.float32)) / np.asarray(std if std is not None else 1.0, dtype=np.float32)
    return x[np.newaxis].astype(np.float32)


def quantize_input(x: np.ndarray, quant: QuantParams) -> np.ndarray:
    """A float input as int8 with the model input's scale and zero point (round half away from zero)."""
    return quant.quantize(x, np.int8)


def _resize_shorter_side(image: Image.Image, shorter: int) -> Image.Image:
    """torchvision's Resize(int): the shorter side becomes ``shorter``, the longer keeps the aspect."""
    width, height = image.size
    if width <= height:
        new_size = (shorter, int(shorter * height / width))
    else:
        new_size = (int(shorter * width / height), shorter)
    return image if new_size == image.size else image.resize(new_size, Image.BILINEAR)


def _center_crop(image: Image.Image, height: int, width: int) -> Image.Image:
    """torchvision's CenterCrop for crops no larger than the image."""
    image_width, image_height = image.size
    top = int(round((image_height - height) / 2.0))
    left = int(round((image_width - width) / 2.0))
    return image.crop((left, top, left + width, top + height))
