"""Metrics as pure functions: samples or features -> statistics -> numbers."""
from .toy import mode_stats

__all__ = ["mode_stats"]
