"""Calibration observers: turn the values an activation took on calibration samples into a range.

min/max is TFLite's converter default; percentile clips rare outliers; MSE searches the clipping
range that minimises the int8 quantization error on the observed values. The last two keep a
bounded random subsample per tensor so memory stays small on big models.
"""

import numpy as np

SUBSAMPLE = 200_000


class MinMaxObserver:
    def __init__(self):
        self.low, self.high = np.inf, -np.inf

    def update(self, values: np.ndarray) -> None:
        self.low = min(self.low, float(values.min()))
        self.high = max(self.high, float(values.max()))

    def range(self) -> tuple[float, float]:
        return self.low, self.high


class _SampleObserver:
    """Keeps a uniform subsample of all observed values."""

    def __init__(self, seed: int = 0):
        self.samples: list[np.ndarray] = []
        self.rng = np.random.default_rng(seed)
        self.low, self.high = np.inf, -np.inf

    def update(self, values: np.ndarray) -> None:
        flat = values.ravel()
        self.low = min(self.low, float(flat.min()))
        self.high = max(self.high, float(flat.max()))
        if flat.size > SUBSAMPLE:
            flat = self.rng.choice(flat, SUBSAMPLE, replace=False)
        self.samples.append(flat.astype(np.float32))

    def values(self) -> np.ndarray:
        return np.concatenate(self.samples)


class PercentileObserver(_SampleObserver):
    def __init__(self, percentile: float = 99.99):
        super().__init__()
        self.percentile = percentile

    def range(self) -> tuple[float, float]:
        values = self.values()
        low = float(np.percentile(values, 100.0 - self.percentile))
        high = float(np.percentile(values, self.percentile))
        return min(low, 0.0), max(high, 0.0)


class MseObserver(_SampleObserver):
    """Shrinks the min/max range by factors in [0.3, 1] and keeps the one with least MSE."""

    def range(self) -> tuple[float, float]:
        values = self.values().astype(np.float64)
        low, high = min(self.low, 0.0), max(self.high, 0.0)
        best, best_error = (low, high), np.inf
        for factor in np.linspace(0.3, 1.0, 36):
            lo, hi = low * factor, high * factor
            scale = max((hi - lo) / 255.0, 1e-12)
            zero_point = np.round(-128 - lo / scale)
            q = np.clip(np.round(values / scale) + zero_point, -128, 127)
            error = np.mean(((q - zero_point) * scale - values) ** 2)
            if error < best_error:
                best, best_error = (lo, hi), error
        return best


def make_observer(scheme):
    if scheme.observer == "percentile":
        return PercentileObserver(scheme.percentile)
    if scheme.observer == "mse":
        return MseObserver()
    return MinMaxObserver()
