"""Output paths checked before a command starts: a folder or file that it will write must be
writable, else the command stops with one line saying so, before anything is written."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from depthhints.errors import ConfigError

PathLike = str | os.PathLike
FIX = "choose a folder you can write to"


def writable_folder(path: PathLike, flag: str) -> Path:
    """``path``, a folder in which this process can write files (tried with a probe file);
    ConfigError naming ``flag``, the path and the reason otherwise."""
    reason = _cannot_write(Path(path))
    if reason:
        raise ConfigError(f"{flag} {path}: cannot write there ({reason}); {FIX}")
    return Path(path)


def writable_file(path: PathLike, flag: str) -> Path:
    """``path``, a file that this process can write (its folder tried as by
    :func:`writable_folder`); ConfigError naming ``flag``, the file and the reason otherwise."""
    file = Path(path)
    reason = "a folder is there, not a file" if file.is_dir() else _cannot_write(file.parent)
    if reason:
        raise ConfigError(f"{flag} {path}: cannot write there ({reason}); {FIX}")
    return file


def _cannot_write(folder: Path) -> str | None:
    """Why no file can be written in ``folder`` (None: it can). Leaves nothing behind: the
    probe file and the folders made to hold it are removed again."""
    missing = [p for p in (folder, *folder.parents) if not os.path.lexists(p)]  # deepest first
    try:
        if folder.exists() and not folder.is_dir():
            return "it is a file, not a folder"
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".write-check-"):
            return None
    except OSError as error:
        return error.strerror or str(error)
    finally:
        for made in missing:
            with contextlib.suppress(OSError):
                made.rmdir()
