"""DATA for `edgekit compress`: an image folder with one subfolder per class, or an .npz with x and y.

``x`` is N x H x W x C (NHWC; N x H x W for one channel), float (the model's input values) or
uint8 (pixels: divided by 255 and normalised with the model's mean and std, as images are).
Labels are class indices; folder classes are numbered in sorted name order. The last
HELD_OUT_FRACTION of a shuffled copy is held out for importance and accuracy. ``idx_dataset``
reads the IDX pair of MNIST-format data sets (Debian's dataset-fashion-mnist) for the benchmark.
"""

import gzip
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgekit.errors import EdgekitError
from edgekit.samples import IMAGE_SUFFIXES

HELD_OUT_FRACTION = 0.2


@dataclass
class Dataset:
    x: np.ndarray  # NHWC float32, the model's input values
    y: np.ndarray  # int64 class indices

    def split(self, seed: int = 0) -> tuple["Dataset", "Dataset"]:
        order = np.random.default_rng(seed).permutation(len(self.y))
        cut = len(order) - max(1, int(len(order) * HELD_OUT_FRACTION))
        return Dataset(self.x[order[:cut]], self.y[order[:cut]]), Dataset(self.x[order[cut:]], self.y[order[cut:]])


def read_idx(path: Path) -> np.ndarray:
    """An IDX file, gzipped (MNIST format): big-endian magic (0x08 = uint8, number of dims), dims, data."""
    with gzip.open(path, "rb") as f:
        data = f.read()
    if len(data) < 4 or data[:3] != b"\0\0\x08":
        raise EdgekitError(f"{path}: not a uint8 IDX file (MNIST format)")
    dims = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(dims))
    if len(data) != 4 + 4 * dims + int(np.prod(shape)):
        raise EdgekitError(f"{path}: {len(data)} bytes, but its header says {shape}")
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def idx_dataset(images: Path, labels: Path) -> Dataset:
    """An IDX image file (N x H x W pixels) and its label file as a Dataset with values in [0, 1]."""
    x = read_idx(images)
    return Dataset((x.astype(np.float32) / np.float32(255.0))[..., np.newaxis], read_idx(labels).astype(np.int64))


def load_dataset(path, preprocess, input_shape: tuple) -> Dataset:
    """``input_shape`` is the model's (1, H, W, C); ``preprocess`` its model_source.Preprocess."""
    path = Path(path)
    if path.is_dir():
        data = _image_folder(path, preprocess)
    elif path.suffix.lower() == ".npz" and path.is_file():
        data = _npz(path, preprocess)
    else:
        raise EdgekitError(f"--data {path}: expected an image folder with one subfolder per class, or an .npz "
                           "with x (N,H,W,C) and y (N)")
    if data.x.shape[1:] != tuple(input_shape[1:]):
        raise EdgekitError(f"--data {path}: samples of shape {data.x.shape[1:]} but the model takes "
                           f"{tuple(input_shape[1:])} (H, W, C); resize the data or choose --resolution")
    if len(data.y) < 2:
        raise EdgekitError(f"--data {path}: {len(data.y)} sample(s); compression needs at least 2")
    return data


def _npz(path: Path, preprocess) -> Dataset:
    from edgekit.npy_file import read_npz

    archive = read_npz(path)  # headers and sizes checked: a corrupt or hostile file is one EdgekitError
    if "x" not in archive or "y" not in archive:
        raise EdgekitError(f"--data {path}: the .npz needs arrays named x and y")
    x, y = archive["x"], archive["y"]
    if x.dtype.kind == "f" and not np.all(np.isfinite(x)):
        raise EdgekitError(f"--data {path}: x holds NaN or infinite values")
    if x.ndim == 3:
        x = x[..., np.newaxis]
    if x.ndim != 4 or y.shape != (len(x),) or y.dtype.kind not in "iu":
        raise EdgekitError(f"--data {path}: x must be N x H x W x C and y N integer labels (got {x.shape}, "
                           f"{y.shape} {y.dtype})")
    if x.dtype == np.uint8:
        x = x.astype(np.float32) / np.float32(255.0)
        if preprocess is not None and preprocess.mean is not None:
            channels = x.shape[3]
            x = (x - np.asarray(preprocess.mean[:channels], np.float32)) / np.asarray(preprocess.std[:channels],
                                                                                    np.float32)
    return Dataset(x.astype(np.float32), y.astype(np.int64))


def _image_folder(path: Path, preprocess) -> Dataset:
    from edgekit.frontend.images import load_image

    classes = sorted(p for p in path.iterdir() if p.is_dir())
    if not classes or preprocess is None:
        raise EdgekitError(f"--data {path}: expected one subfolder of images per class (and an image model)")
    xs, ys = [], []
    for label, folder in enumerate(classes):
        for image in sorted(folder.iterdir()):
            if image.suffix.lower() in IMAGE_SUFFIXES:
                xs.append(load_image(image, (preprocess.height, preprocess.width), crop_fraction=preprocess.crop_fraction,
                                     mean=preprocess.mean, std=preprocess.std)[0])
                ys.append(label)
    if not xs:
        raise EdgekitError(f"--data {path}: its class subfolders hold no images ({', '.join(IMAGE_SUFFIXES)})")
    return Dataset(np.stack(xs), np.asarray(ys, dtype=np.int64))
