"""Quantization schemes, read from the repository's quant/*.toml files."""

import tomllib
from dataclasses import dataclass
from pathlib import Path

from edgekit.errors import UnknownNameError

SCHEME_DIR = Path(__file__).resolve().parents[2] / "quant"
GRANULARITIES = ("per_channel", "per_tensor")
OBSERVERS = ("minmax", "percentile", "mse")


@dataclass(frozen=True)
class Scheme:
    name: str
    description: str
    weight_granularity: str = "per_channel"
    observer: str = "minmax"
    percentile: float = 99.99
    bias_correction: bool = False


def list_schemes() -> list[str]:
    return sorted(p.stem for p in SCHEME_DIR.glob("*.toml"))


def load_scheme(name_or_path: str = "int8") -> Scheme:
    """A scheme by name (quant/NAME.toml) or by path to a TOML file."""
    path = Path(name_or_path)
    if path.suffix != ".toml":
        path = SCHEME_DIR / f"{name_or_path}.toml"
    if not path.is_file():
        raise UnknownNameError(f"unknown quantization scheme {name_or_path!r}; available: "
                               f"{', '.join(list_schemes())} (or a path to a .toml file)")
    doc = tomllib.loads(path.read_text())
    weights, activations = doc.get("weights", {}), doc.get("activations", {})
    scheme = Scheme(
        name=doc.get("name", path.stem),
        description=doc.get("description", ""),
        weight_granularity=weights.get("granularity", "per_channel"),
        observer=activations.get("observer", "minmax"),
        percentile=float(activations.get("percentile", 99.99)),
        bias_correction=bool(weights.get("bias_correction", False)),
    )
    if scheme.weight_granularity not in GRANULARITIES or scheme.observer not in OBSERVERS:
        raise UnknownNameError(f"{path}: weights.granularity must be one of {GRANULARITIES} and "
                               f"activations.observer one of {OBSERVERS}")
    return scheme
