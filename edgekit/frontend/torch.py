"""PyTorch -> Graph, through torch's ONNX exporter and the ONNX importer.

One importer to maintain instead of two: the exporter lowers modules to a small, stable op set,
and already folds batch norms into convolutions.

Loading a ``.pt`` file never runs code from it: pickles are read with ``weights_only=True``
(tensors and plain containers only), so a file is either a state_dict of a zoo architecture or a
TorchScript archive (``torch.jit.save``), whose code is TorchScript run by torch's interpreter,
not Python. A module pickled whole with ``torch.save(model)`` needs its classes' Python code to
load, so it is refused with the two ways to save a loadable model.
"""

import contextlib
import io
import logging
import pickle
import pickletools
import warnings
import zipfile
from pathlib import Path

from edgekit.errors import ModelFileError, UnsupportedOpError
from edgekit.frontend.model_checks import corrupt_file_errors
from edgekit.ir import Graph
from edgekit.scratch import scratch_folder

HOW_TO_SAVE = ("save the model with torch.jit.save(torch.jit.script(model), path) (or torch.jit.trace), "
               "or save model.state_dict() of a zoo architecture (see `edgekit zoo`)")


def import_torch_module(module, input_shape_nchw: tuple) -> Graph:
    """Export ``module`` to ONNX and import it: torch.export for Python modules, the TorchScript
    exporter for TorchScript modules (torch.export cannot trace those)."""
    import torch

    from edgekit.frontend.onnx import import_onnx

    module = module.eval()
    example = torch.zeros(input_shape_nchw)
    scripted = isinstance(module, torch.jit.ScriptModule)
    with scratch_folder("export") as tmp:
        path = tmp / "model.onnx"
        try:
            with _quiet_exporter():
                torch.onnx.export(module, (example,), str(path), dynamo=not scripted, verbose=False,
                                  **({} if scripted else {"optimize": True}))
        except Exception as exc:  # the exporter raises many types; name the first line
            raise UnsupportedOpError(f"torch export of {type(module).__name__} failed: {_first_line(exc)}") from None
        return import_onnx(path)


@contextlib.contextmanager
def _quiet_exporter():
    """The exporter logs and warns about things that are not the user's problem (missing torchvision
    ops, deprecations); keep edgekit's stderr to its own messages."""
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


def is_torchscript_archive(path: Path) -> bool:
    """TorchScript archives are zips holding ``<name>/code/`` (the TorchScript source) and constants."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError):  # NotImplementedError: a
        return False  # header claiming a zip version zipfile lacks (make fuzz); torch.load then refuses it
    return any("/code/" in name for name in names) and any(name.endswith("/constants.pkl") for name in names)


def _check_archive(path: Path) -> None:
    """Every member of a TorchScript archive intact (its CRC) and its pickles well formed, read without
    running them: torch's reader skips the CRC and spends seconds on a corrupt pickle (make fuzz)."""
    with corrupt_file_errors(path), zipfile.ZipFile(path) as archive:
        bad = archive.testzip()
        if bad is not None:
            raise ModelFileError(f"{path} is a corrupt TorchScript archive ({bad} does not match its checksum); "
                                 "save it again with torch.jit.save")
        for name in archive.namelist():
            if name.endswith(".pkl"):
                for _ in pickletools.genops(io.BytesIO(archive.read(name))):
                    pass


def load_torch_file(path, resolution: int | None = None, width: float | None = None, num_classes: int | None = None):
    """The module in ``path``: a TorchScript module, or a zoo model (``ZooModel``) built from a state_dict.

    Nothing in the file is executed as Python (see the module doc); anything else is a ModelFileError.
    """
    import torch

    path = Path(path)
    if is_torchscript_archive(path):
        _check_archive(path)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return torch.jit.load(str(path), map_location="cpu")
        except Exception as exc:
            raise ModelFileError(f"{path} is a corrupt TorchScript archive ({_first_line(exc)}); save it again "
                                 "with torch.jit.save") from None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise ModelFileError(f"{path} holds Python objects (a module saved with torch.save(model)?) that only "
                             f"running code from the file could rebuild, which edgekit refuses; {HOW_TO_SAVE}"
                             ) from None
    except Exception as exc:
        raise ModelFileError(f"{path} is not a readable PyTorch file ({type(exc).__name__}); {HOW_TO_SAVE}"
                             ) from None
    if isinstance(obj, dict) and obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
        from edgekit.zoo import zoo_model_from_state_dict

        return zoo_model_from_state_dict(obj, str(path), resolution, width, num_classes)
    raise ModelFileError(f"{path} holds a {type(obj).__name__}, neither a TorchScript module nor a state_dict of "
                         f"tensors; {HOW_TO_SAVE}")


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:200] if text else type(exc).__name__
