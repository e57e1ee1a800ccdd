"""ganland's own error types: every message names the problem and the fix."""


class GanlandError(Exception):
    """Base class of every error ganland raises on purpose."""


class ConfigError(GanlandError, ValueError):
    """A configuration key, value or combination is not valid."""


class DataError(GanlandError):
    """A data file is missing, malformed or inconsistent."""


class CheckpointError(GanlandError):
    """A checkpoint or run folder cannot be read or written."""


class DivergenceError(GanlandError):
    """Training diverged (non-finite values or a saturated discriminator) and the divergence
    guard could not recover within its retries."""


class Interrupted(GanlandError):
    """Training stopped on a signal: Ctrl-C (SIGINT) or SIGTERM. The message says what was saved
    and how to continue; `exit_code` is what a command ends with (130 for SIGINT, 143 for SIGTERM)."""

    def __init__(self, message: str, signum: int):
        super().__init__(message)
        self.signum = signum
        self.exit_code = 128 + signum
