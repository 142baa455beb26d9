"""Errors a user can fix. The command line prints them as one line and exits non-zero, with no traceback."""


class TslaError(Exception):
    """Base class: something the user asked for cannot be done; the message says what and how to fix it."""

    exit_code = 2


class ConfigError(TslaError, ValueError):
    """A configuration value, flag, preset or YAML file is invalid."""


class DataError(TslaError):
    """A data set is missing or malformed."""


class RunDirError(TslaError):
    """A run directory cannot be used as asked (missing checkpoint, different config, ...)."""


class TrainingError(TslaError):
    """Training itself failed (for example a non-finite loss)."""

    exit_code = 1
