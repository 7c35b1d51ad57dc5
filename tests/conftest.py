"""Shared test fixtures: where the shared real models and data live."""

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _shared_dir() -> Path | None:
    """shared/ inside the checkout (device machines) or beside it (developers, CI)."""
    for candidate in (ROOT / "shared", ROOT.parent / "shared"):
        if (candidate / "models").is_dir():
            return candidate
    return None


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    shared = _shared_dir()
    if shared is None:
        pytest.skip("shared/ (real models and data) is not beside the checkout")
    return shared


@pytest.fixture(scope="session")
def models_dir(shared_dir) -> Path:
    return shared_dir / "models"


@pytest.fixture(scope="session")
def data_dir(shared_dir) -> Path:
    return shared_dir / "data"


@pytest.fixture(scope="session")
def mobilenetv2():
    """The ImageNet MobileNetV2 as edgekit loads it (torch export, ONNX import, float passes); ~10 s.

    Shared by the import and quantization tests; tests must not modify it.
    """
    from edgekit.model_source import load_model

    return load_model("mobilenetv2")


@pytest.fixture(scope="module")
def private_edgekit_home(tmp_path_factory):
    """A private EDGEKIT_HOME per test module, so QEMU plugin builds and kernel caches never touch
    the user's cache; firmware test modules use it through their pytestmark."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("EDGEKIT_HOME", str(tmp_path_factory.mktemp("edgekit-home")))
        yield
