"""Pictures: sample grids, sine curves, histograms, 2-D scatters, loss curves."""
from .grid import save_grid, tile
from .plots import PLOTS, Plot, loss_curves, quality_curve, training_curves

__all__ = ["PLOTS", "Plot", "save_grid", "tile", "loss_curves", "quality_curve", "training_curves"]
