"""Read a ``.npy`` array (or a ``.npz`` of them) without trusting it: the header is checked before
anything is allocated.

``np.load`` allocates what the header claims before it reads the data, accepts object arrays when
asked to unpickle, and reports a truncated file in terms of its internals; here the dtype must be
plain numbers (bool, int, uint, float: no objects, strings or records) and the payload exactly as
long as the shape says, so a truncated, text, pickled or hostile file is one EdgekitError.
"""

import io
import tokenize
import zipfile
import zlib

import numpy as np

from edgekit.errors import EdgekitError

MAX_HEADER_BYTES = 10_000
MAX_NPZ_MEMBER_BYTES = 1 << 30


def read_npy(data: bytes, source) -> np.ndarray:
    """The array in ``data`` (the bytes of a .npy file named ``source`` in errors)."""
    buffer = io.BytesIO(data)
    fmt = np.lib.format
    try:
        version = fmt.read_magic(buffer)
        if version == (1, 0):
            shape, fortran_order, dtype = fmt.read_array_header_1_0(buffer, max_header_size=MAX_HEADER_BYTES)
        elif version == (2, 0):
            shape, fortran_order, dtype = fmt.read_array_header_2_0(buffer, max_header_size=MAX_HEADER_BYTES)
        else:
            raise ValueError(f"format version {version[0]}.{version[1]} is not supported")
    except (ValueError, EOFError, SyntaxError, TypeError, OverflowError, tokenize.TokenError) as error:
        first = str(error).strip().splitlines()[0][:120] if str(error).strip() else type(error).__name__
        raise EdgekitError(f"{source} is not a .npy array ({first}); save inputs with np.save") from None
    if dtype.hasobject or dtype.fields is not None or dtype.subdtype is not None or dtype.kind not in "biuf":
        raise EdgekitError(f"{source} holds {dtype} values; inputs must be numbers (int8 or float), saved with "
                           "np.save")
    count = int(np.prod(shape, dtype=object))
    payload = len(data) - buffer.tell()
    if count * dtype.itemsize != payload:
        raise EdgekitError(f"{source} is truncated or padded: its header says {list(shape)} {dtype} "
                           f"({count * dtype.itemsize:,} B) but {payload:,} B follow; save it again with np.save")
    array = np.frombuffer(data, dtype=dtype, count=count, offset=buffer.tell())
    array = array.reshape(shape, order="F" if fortran_order else "C")
    return np.ascontiguousarray(array.astype(dtype.newbyteorder("=")))


def read_npz(path, max_members: int = 64) -> dict[str, np.ndarray]:
    """The arrays of a ``.npz`` file (as np.savez writes it: a zip of .npy files), keyed by name without
    ``.npy``; member sizes are checked before they are decompressed, each array through read_npy."""
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
            if len(members) > max_members:
                raise EdgekitError(f"{path} holds {len(members)} arrays; an input set has one per model input")
            arrays = {}
            for info in members:
                if info.flag_bits & 0x1:  # zipfile would raise RuntimeError asking for a password
                    raise EdgekitError(f"{path}: {info.filename} is encrypted; save the arrays with np.savez")
                if info.file_size > MAX_NPZ_MEMBER_BYTES:
                    raise EdgekitError(f"{path}: {info.filename} would decompress to {info.file_size:,} B, over "
                                       f"the {MAX_NPZ_MEMBER_BYTES:,} B edgekit reads")
                arrays[info.filename.removesuffix(".npy")] = read_npy(archive.read(info), f"{path}[{info.filename}]")
            return arrays
    except (zipfile.BadZipFile, zlib.error, OSError, EOFError, ValueError, NotImplementedError) as error:
        first = str(error).strip().splitlines()[0][:120] if str(error).strip() else type(error).__name__
        raise EdgekitError(f"{path} is not a readable .npz ({first}); save it with np.savez") from None
