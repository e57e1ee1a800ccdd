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
