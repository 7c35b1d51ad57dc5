"""The IDX reader (MNIST format) that the depth benchmark reads Fashion-MNIST with."""

import gzip

import numpy as np
import pytest

from edgekit.compress.dataset import idx_dataset, read_idx
from edgekit.errors import EdgekitError


def write_idx(path, header: bytes, payload: bytes):
    with gzip.open(path, "wb") as f:
        f.write(header + payload)


def test_images_and_labels_read_as_nhwc_in_0_1(tmp_path):
    pixels = np.arange(2 * 3 * 4, dtype=np.uint8) * 10
    write_idx(tmp_path / "images.gz", b"\0\0\x08\x03" + (2).to_bytes(4, "big") + (3).to_bytes(4, "big")
              + (4).to_bytes(4, "big"), pixels.tobytes())
    write_idx(tmp_path / "labels.gz", b"\0\0\x08\x01" + (2).to_bytes(4, "big"), bytes([7, 1]))
    data = idx_dataset(tmp_path / "images.gz", tmp_path / "labels.gz")
    assert data.x.shape == (2, 3, 4, 1) and data.x.dtype == np.float32
    assert data.x[1, 2, 3, 0] == pytest.approx(230 / 255)  # the last pixel, row-major
    assert data.x[0, 0, 1, 0] == pytest.approx(10 / 255)
    assert data.y.tolist() == [7, 1]


@pytest.mark.parametrize("header, payload, message", [
    (b"\0\0\x0d\x01" + (2).to_bytes(4, "big"), bytes(8), "not a uint8 IDX file"),  # 0x0d = float32
    (b"\0\0\x08\x01" + (5).to_bytes(4, "big"), bytes(3), "its header says (5,)"),  # truncated
])
def test_bad_idx_file_is_one_error(tmp_path, header, payload, message):
    write_idx(tmp_path / "bad.gz", header, payload)
    with pytest.raises(EdgekitError, match=message.replace("(", r"\(").replace(")", r"\)")):
        read_idx(tmp_path / "bad.gz")
