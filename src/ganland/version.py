"""ganland's version: written here only (pyproject.toml reads it, `ganland --version` prints it)."""
__version__ = "0.1.0"
