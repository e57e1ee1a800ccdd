"""Training: the step (algorithm), the loop (schedules, logging, pictures) and checkpoints."""
from .loop import RunResult, Trainer, resume, train

__all__ = ["Trainer", "RunResult", "train", "resume"]
