"""Exception types raised for bad input (each message names the offending file/value and the fix),
:class:`Stopped`, a run stopped by a signal, and :func:`first_sentence`, one short line of a
longer account of a failure."""

import signal


class DepthHintsError(Exception):
    """Base class of every error this project raises on bad input."""


class SplitFormatError(DepthHintsError, ValueError):
    """A split file or split line that does not follow the KITTI split format."""


class CalibrationError(DepthHintsError, ValueError):
    """A calibration file that is missing, unreadable or lacks a required entry."""


class DataFileError(DepthHintsError, OSError):
    """A data file (image, Velodyne scan, depth map) that is corrupt or has the wrong shape."""


class MissingDataError(DataFileError, FileNotFoundError):
    """A data file that the split or layout refers to but that does not exist."""


class ConfigError(DepthHintsError, ValueError):
    """A configuration value that is out of range or cannot be read."""


class Stopped(KeyboardInterrupt):
    """A run stopped by SIGINT (Ctrl-C) or SIGTERM (``timeout``, job schedulers); what it saved
    stays, and it can be resumed. A KeyboardInterrupt, so that whatever ends a run on Ctrl-C
    (an MLflow run ends KILLED) does the same for SIGTERM."""

    def __init__(self, signum: int, detail: str = "") -> None:
        self.signum = signum
        name = signal.Signals(signum).name
        super().__init__(f"stopped by {name}" + (f" {detail}" if detail else ""))

    @property
    def exit_code(self) -> int:
        """The shell's code for a process ended by the signal: 130 (SIGINT), 143 (SIGTERM)."""
        return 128 + self.signum


def first_sentence(text: str, max_chars: int = 240) -> str:
    """The first sentence of ``text`` without its full stop, on one line of at most
    ``max_chars`` (cut with an ellipsis): how a restart's cause is shown."""
    sentence = " ".join(text.split()).split(". ")[0].strip().rstrip(".")
    return sentence if len(sentence) <= max_chars else sentence[: max_chars - 1].rstrip() + "…"
