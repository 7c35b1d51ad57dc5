"""Real photographs that installed packages ship, for calibrating a float image model without --calib.

Calibrating on noise gives ranges no photo produces (a MobileNetV2 calibrated on Gaussian noise
agreed with its float model on 0 of 2 photos), so a float model that takes 3-channel images is
calibrated on these instead: scikit-image's sample photographs and matplotlib's. The set leaves
out scikit-image's astronaut, camera, chelsea, coffee and rocket and matplotlib's grace_hopper,
which are also test photos in ../shared/data/images, so that accuracy measured there is not
measured on the calibration set; it also leaves out drawings, charts and masks (horse, color,
logo, text, page, phantom). The files are read in place; nothing is imported from the packages.
"""

import importlib.util
from pathlib import Path

#: Package (import name) -> its folder of sample data (relative to the package) and the photographs used.
PHOTOS = {
    "skimage": ("data", ("brick.png", "cell.png", "clock_motion.png", "coins.png", "grass.png", "gravel.png",
                         "hubble_deep_field.jpg", "ihc.png", "moon.png", "motorcycle_left.png",
                         "motorcycle_right.png", "retina.jpg")),
    "matplotlib": ("mpl-data/sample_data", ("Minduka_Present_Blue_Pack.png",)),
}

DISTRIBUTIONS = {"skimage": "scikit-image", "matplotlib": "matplotlib"}  # as pip names them


def _package_folder(package: str) -> Path | None:
    """The installed package's folder, found without importing it (None when not installed)."""
    spec = importlib.util.find_spec(package)
    locations = spec.submodule_search_locations if spec else None
    return Path(next(iter(locations))) if locations else None


def sample_photos() -> list[Path]:
    """The photographs of ``PHOTOS`` that exist in this installation, in a fixed order."""
    found = []
    for package, (folder, names) in PHOTOS.items():
        root = _package_folder(package)
        if root is not None:
            found += [root / folder / name for name in names if (root / folder / name).is_file()]
    return found


def describe(photos: list[Path]) -> str:
    """One line for the report: how many photos, from which packages."""
    packages = sorted({DISTRIBUTIONS[package] for package, (folder, names) in PHOTOS.items()
                       for photo in photos if photo.name in names})
    return f"{len(photos)} sample photographs shipped with {' and '.join(packages)} (not the test photos)"
