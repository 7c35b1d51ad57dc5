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
