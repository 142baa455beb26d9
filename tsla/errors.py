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


class Interrupted(TslaError):
    """Training stopped on SIGINT/SIGTERM after saving a checkpoint; ``--resume`` continues it."""

    def __init__(self, message: str, signum: int) -> None:
        super().__init__(message)
        self.exit_code = 128 + signum  # the shell's convention: 130 for SIGINT, 143 for SIGTERM
