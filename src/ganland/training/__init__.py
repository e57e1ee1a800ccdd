"""Training: `loop.Trainer` orders a run's steps and decides when it stops; its collaborators do
the rest, one job per file (listed in loop.py's docstring); `checkpoint` reads and writes the
files; `runs` starts or continues a run folder (`from ganland.training.runs import train`).
This package imports nothing itself, so reading a checkpoint never pulls in the loop.
"""
