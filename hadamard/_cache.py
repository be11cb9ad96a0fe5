"""Optional on-disk cache of built matrices, written atomically.

Used when ``cache_dir`` is given to :func:`hadamard.get` or the environment
variable ``HADAMARD_CACHE_DIR`` is set. Entries are bit-packed ``.npz`` files
that record the recipe they were built from and the cache format; an entry
that cannot be read (empty, truncated, not a zip), or whose format, recipe,
shape or Hadamard property does not check out, is ignored and rebuilt.

An entry that reads back as a valid Hadamard matrix under the right recipe is
trusted: it is not rebuilt to compare. ``FORMAT`` is raised whenever a
construction's output changes, so entries of an older library are rebuilt.
"""

from __future__ import annotations

import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from ._verify import verify

#: Version of the cached matrices: raise it when any construction gives another matrix.
FORMAT = 2


def resolve_dir(cache_dir: str | os.PathLike | None) -> Path | None:
    if cache_dir is not None:
        return Path(cache_dir)
    env = os.environ.get("HADAMARD_CACHE_DIR")
    return Path(env) if env else None


def _path(directory: Path, n: int) -> Path:
    return directory / f"hadamard-{n}.npz"


def has(directory: Path, n: int) -> bool:
    """Whether ``directory`` holds an entry for order ``n`` (read or not)."""
    return _path(directory, n).is_file()


def load(directory: Path, n: int, recipe: str) -> np.ndarray | None:
    path = _path(directory, n)
    try:
        with np.load(path, allow_pickle=False) as data:
            if str(data["recipe"]) != recipe or int(data["format"]) != FORMAT:
                return None
            bits = np.unpackbits(data["bits"], count=n * n)
    except (OSError, KeyError, ValueError, TypeError, EOFError, zipfile.BadZipFile):
        return None  # unreadable: rebuilt, and the entry rewritten
    H = (1 - 2 * bits.astype(np.int8)).reshape(n, n)
    return H if verify(H) else None


def store(directory: Path, n: int, recipe: str, H: np.ndarray) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    bits = np.packbits((H < 0).ravel())
    fd, tmp = tempfile.mkstemp(prefix=f".hadamard-{n}-", suffix=".npz", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, bits=bits, recipe=np.array(recipe), format=np.array(FORMAT))
        os.replace(tmp, _path(directory, n))
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
