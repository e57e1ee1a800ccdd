"""Training: `loop.Trainer` orders a run's steps and decides when it stops; its collaborators do
the rest, one job per file (listed in loop.py's docstring); `checkpoint` reads and writes the
files. Import what you need from the modules (`from ganland.training.loop import Trainer`): this
package imports nothing itself, so reading a checkpoint never pulls in the loop.
"""
