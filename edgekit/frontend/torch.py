"""PyTorch -> Graph, through torch's ONNX exporter (torch.export underneath) and the ONNX importer.

One importer to maintain instead of two: the exporter lowers modules to a small, stable op set,
and already folds batch norms into convolutions.
"""

import contextlib
import io
import logging
import tempfile
import warnings
from pathlib import Path

from edgekit.errors import ModelFileError, UnsupportedOpError
from edgekit.ir import Graph


def import_torch_module(module, input_shape_nchw: tuple) -> Graph:
    import torch

    from edgekit.frontend.onnx import import_onnx

    module = module.eval()
    example = torch.zeros(input_shape_nchw)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.onnx"
        try:
            with _quiet_exporter():
                torch.onnx.export(module, (example,), str(path), dynamo=True, optimize=True, verbose=False)
        except Exception as exc:  # the exporter raises many types; name the first line
            first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise UnsupportedOpError(f"torch export of {type(module).__name__} failed: {first_line}") from None
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


def load_torch_file(path) -> object:
    """A pickled ``nn.Module`` saved with ``torch.save(model)``; a bare state_dict is refused."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"model file {path} does not exist")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:
        raise ModelFileError(f"{path} is not a readable PyTorch file ({type(exc).__name__})") from None
    if isinstance(obj, dict):
        raise ModelFileError(f"{path} holds a state_dict, which has no architecture; save the whole module "
                             "with torch.save(model, path) or use a zoo name")
    if not isinstance(obj, torch.nn.Module):
        raise ModelFileError(f"{path} holds a {type(obj).__name__}, not a torch.nn.Module")
    return obj
