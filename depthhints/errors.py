"""Exception types raised for bad input. Each message names the offending file/value and the fix."""


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
