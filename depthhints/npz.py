"""Read one array of an ``.npz`` without letting a pickle in it run code.

``np.load(..., allow_pickle=True)`` unpickles whatever an object array's payload names, so a
crafted file can call ``os.system``. :func:`read_npz_array` reads numeric arrays with
``allow_pickle=False`` and object arrays (ragged GT depth maps,
docs/method.md#quirk-ragged-ground-truth) with :class:`ArrayUnpickler`,
which rebuilds numpy arrays and dtypes and refuses every other global.
"""

from __future__ import annotations

import os
import pickle
import zipfile
from typing import IO

import numpy as np

_RECONSTRUCT = np.empty(0).__reduce__()[0]  # numpy's multiarray._reconstruct, any version
#: The globals a pickled object array of numeric arrays needs (numpy 1.x wrote ``numpy.core``).
ALLOWED_GLOBALS = {
    ("numpy._core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy.core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
}
_HEADER_READERS = {
    (1, 0): np.lib.format.read_array_header_1_0,
    (2, 0): np.lib.format.read_array_header_2_0,
}


class RefusedPickleError(pickle.UnpicklingError):
    """A pickle that names a global outside :data:`ALLOWED_GLOBALS`."""


class ArrayUnpickler(pickle.Unpickler):
    """An unpickler that rebuilds numpy arrays and dtypes only."""

    def find_class(self, module: str, name: str) -> object:
        try:
            return ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise RefusedPickleError(
                f"refused to unpickle {module}.{name}: only numpy arrays may be unpickled"
            ) from None


def read_npz_array(path: str | os.PathLike, key: str) -> np.ndarray:
    """The array ``key`` of the ``.npz`` at ``path``, object arrays included, running no code.

    Raises what a bad file causes: ``zipfile.BadZipFile``, ``KeyError`` (no such entry),
    ``ValueError``/``EOFError`` (a bad .npy), ``pickle.UnpicklingError`` (RefusedPickleError for
    a global other than numpy's array ones).
    """
    with zipfile.ZipFile(path) as archive:
        name = f"{key}.npy" if f"{key}.npy" in archive.namelist() else key
        with archive.open(name) as member:
            return _read_npy(member)


def _read_npy(member: IO[bytes]) -> np.ndarray:
    version = np.lib.format.read_magic(member)
    if version in _HEADER_READERS:
        shape, _, dtype = _HEADER_READERS[version](member)
        if dtype.hasobject:
            return _unpickle(member, shape, dtype)
    member.seek(0)  # numeric arrays, and format 3.0 (utf-8 header): read_array refuses objects
    return np.lib.format.read_array(member, allow_pickle=False)


def _unpickle(member: IO[bytes], shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    array = ArrayUnpickler(member).load()
    if not isinstance(array, np.ndarray) or array.dtype != dtype or array.shape != shape:
        raise ValueError(f"the pickle holds no {dtype} array of shape {shape}")
    return array
