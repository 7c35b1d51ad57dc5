"""Tensors and their quantization parameters.

A tensor is named, has a static shape and a dtype; constants carry their NumPy data. Quantized
tensors follow the TFLite int8 spec: per-tensor (scale, zero point) for activations, per-channel
symmetric scales along ``axis`` for weights. Scales are stored as float32 because that is what a
``.tflite`` file holds, and the multipliers derived from them must match TFLite's bit for bit.
"""

from dataclasses import dataclass, field

import numpy as np

from edgekit.fixedpoint import round_half_away

DTYPES = ("float32", "int8", "int32", "uint8")  # uint8: only at a model interface (QUANTIZE/DEQUANTIZE)


@dataclass
class QuantParams:
    """Affine quantization: real = scale * (q - zero_point); per channel when ``axis`` is set."""

    scale: np.ndarray
    zero_point: np.ndarray
    axis: int | None = None

    def __post_init__(self):
        self.scale = np.atleast_1d(np.asarray(self.scale, dtype=np.float32))
        self.zero_point = np.atleast_1d(np.asarray(self.zero_point, dtype=np.int32))

    @classmethod
    def per_tensor(cls, scale: float, zero_point: int) -> "QuantParams":
        return cls(np.float32(scale), np.int32(zero_point))

    @property
    def per_channel(self) -> bool:
        return self.axis is not None and self.scale.size > 1

    @property
    def scalar_scale(self) -> float:
        """The per-tensor scale (activations); an error on per-channel parameters."""
        if self.scale.size != 1:
            raise ValueError("per-channel quantization has no single scale")
        return float(self.scale[0])

    @property
    def scalar_zero_point(self) -> int:
        return int(self.zero_point[0])

    def quantize(self, real: np.ndarray, dtype=np.int8) -> np.ndarray:
        """Real values to integers with round-half-away-from-zero, clamped to ``dtype``."""
        scale, zero_point = self._broadcast(np.ndim(real))
        info = np.iinfo(dtype)
        q = round_half_away(np.asarray(real, dtype=np.float64) / scale) + zero_point
        return np.clip(q, info.min, info.max).astype(dtype)

    def dequantize(self, q: np.ndarray) -> np.ndarray:
        scale, zero_point = self._broadcast(np.ndim(q))
        return ((np.asarray(q, dtype=np.float64) - zero_point) * scale).astype(np.float32)

    def _broadcast(self, ndim: int):
        scale = self.scale.astype(np.float64)
        zero_point = self.zero_point.astype(np.float64)
        if self.per_channel:
            shape = [1] * ndim
            shape[self.axis] = -1
            return scale.reshape(shape), zero_point.reshape(shape) if zero_point.size > 1 else zero_point
        return scale[0], zero_point[0]


@dataclass
class Tensor:
    """A named tensor; ``data`` is set for constants (weights, biases) and None for activations."""

    name: str
    shape: tuple[int, ...]
    dtype: str = "float32"
    data: np.ndarray | None = field(default=None, repr=False)
    quant: QuantParams | None = None

    def __post_init__(self):
        self.shape = tuple(int(d) for d in self.shape)
        if self.dtype not in DTYPES:
            raise ValueError(f"tensor {self.name}: dtype {self.dtype} is not one of {DTYPES}")

    @property
    def is_constant(self) -> bool:
        return self.data is not None

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    @property
    def nbytes(self) -> int:
        return self.size * np.dtype(self.dtype).itemsize
