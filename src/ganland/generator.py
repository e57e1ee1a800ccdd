"""A trained generator: noise, generation in batches, and loading one from a run or checkpoint.

This sits below the training loop, evaluation and the API (it imports none of them; reading
checkpoints comes from `training.checkpoint`, which imports nothing of the loop): `sample_z`
draws the noise every part of ganland uses, `generate` runs a generator on fixed inputs, and
`load` rebuilds the generator a checkpoint describes.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Optional

import numpy as np
import torch
from torch import nn

from .build import build_degradation, build_models
from .config import Config, load_config, yaml_load
from .data import to_uint8
from .device import resolve_device
from .errors import CheckpointError, ConfigError
from .registry import close_match_hint
from .numpy_gan.train import is_numpy_run
from .training.checkpoint import latest_checkpoint, load_checkpoint
from .version import __version__


def sample_z(n: int, z_dim: int, prior: str, generator: torch.Generator, device,
             truncation: Optional[float] = None) -> torch.Tensor:
    """Noise (n, z_dim): N(0, I) for prior "normal", U(-1, 1) for "uniform".

    truncation: the truncation trick (Brock et al. 2019), normal prior only: every component
    drawn beyond ±truncation is drawn again, so z follows N(0, I) cut at ±truncation (closer to
    the mode: typical samples, less variety). None = no truncation."""
    if prior == "uniform":
        if truncation is not None:
            raise ConfigError("truncation applies to the normal prior (model.z_prior normal); this model draws "
                              "z from U(-1, 1)")
        return torch.rand(n, z_dim, generator=generator, device=device).mul_(2).sub_(1)
    z = torch.randn(n, z_dim, generator=generator, device=device)
    if truncation is not None:
        if not truncation > 0:
            raise ConfigError(f"truncation must be > 0 (e.g. 0.7), got {truncation}")
        for _ in range(1000):  # each round redraws the outliers: P(|z| > 0.1) ~ 0.92, so 1000 rounds suffice
            out = z.abs() > truncation
            if not bool(out.any()):
                break
            z[out] = torch.randn(int(out.sum()), generator=generator, device=device)
    return z


def slerp(z0: torch.Tensor, z1: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation between noise vectors z0, z1 (z_dim,) at fractions t (T,) -> (T, z_dim).

    Gaussian noise lives near a sphere of radius sqrt(z_dim); a straight line between two points
    passes well inside it, where the generator saw no noise in training (White 2016). Falls back to
    a straight line when z0 and z1 are (anti)parallel."""
    t = t.reshape(-1, 1).to(z0.dtype)
    cos = torch.dot(z0, z1) / (z0.norm() * z1.norm()).clamp_min(1e-12)
    omega = torch.arccos(cos.clamp(-1.0, 1.0))
    if float(omega.sin().abs()) < 1e-6:
        return (1 - t) * z0 + t * z1
    return (torch.sin((1 - t) * omega) * z0 + torch.sin(t * omega) * z1) / omega.sin()


@torch.no_grad()
def generate(G: nn.Module, z: torch.Tensor, c: Optional[torch.Tensor], device, batch: int = 1000) -> torch.Tensor:
    """G in eval mode on fixed inputs z (N, z_dim) and labels c (N,) or None, `batch` at a time;
    returns CPU float (N, *shape) and leaves G in the mode it was in."""
    was_training = G.training
    G.eval()
    outs = []
    for i in range(0, len(z), batch):
        zi = z[i:i + batch].to(device)
        ci = c[i:i + batch].to(device) if c is not None else None
        outs.append(G(zi, ci).float().cpu())
    G.train(was_training)
    return torch.cat(outs)


class Generator(nn.Module):
    """A trained generator, built by `ganland.load`: an `nn.Module` (`G(z, c)` gives a tensor;
    `.to()`, `.state_dict()`, `.eval()` work as usual) that knows its run's config, its data
    (shape, classes) and its step, with helpers that draw noise, labels and samples.
    """

    def __init__(self, G: nn.Module, config: Config, shape: tuple[int, ...], n_classes: int,
                 class_names: Optional[list[str]], is_image: bool, step: int,
                 cond_shape: Optional[tuple[int, ...]] = None):
        super().__init__()
        self.G = G
        self.config, self.shape, self.n_classes = config, tuple(shape), n_classes
        self.class_names, self.is_image, self.step = class_names, is_image, step
        self.cond_shape = tuple(cond_shape) if cond_shape is not None else None  # image-to-image: one input's shape

    @property
    def paired(self) -> bool:
        """An image-to-image model (data.degrade): it maps input images to images, `translate` runs it."""
        return self.cond_shape is not None

    @property
    def degradation(self):
        """The degradation that made this model's training inputs (data.degrade), or None."""
        if not self.paired:
            return None
        from .data.degrade import degrade_name

        return build_degradation(degrade_name(self.config), self.config.data.degrade_options)

    def _noise_model(self, what: str) -> None:
        if self.paired:
            raise ConfigError(f"this is an image-to-image model ({self.degradation.spec()}): it has no {what} of its "
                              "own; give it images with `ganland translate RUN --input FILE_OR_FOLDER --out DIR` "
                              "(Generator.translate / Generator.inputs from Python)")

    def forward(self, z: torch.Tensor, c: Optional[torch.Tensor] = None) -> torch.Tensor:
        """z (N, z_dim) and labels c (N,) (conditional models) -> samples (N, *shape) in model units
        (images in [-1, 1])."""
        return self.G(z, c)

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    @property
    def z_dim(self) -> int:
        return self.config.model.z_dim

    def noise(self, n: int, seed: int = 0, truncation: Optional[float] = None) -> torch.Tensor:
        """z (n, z_dim) from the run's prior, on this module's device. Drawn on the CPU whatever the
        device, so that a seed means the same noise, and so the same samples and scores, on a GPU
        as on a CPU (a CUDA generator draws other numbers from the same seed)."""
        gen = torch.Generator("cpu").manual_seed(seed)
        return sample_z(n, self.z_dim, self.config.model.z_prior, gen, "cpu", truncation).to(self.device)

    def sample(self, n: int, classes=None, seed: int = 0, batch_size: int = 1000,
               truncation: Optional[float] = None) -> dict[str, np.ndarray]:
        """n samples with noise from `seed`.

        Images come back as {"images": uint8 (n, H, W, C)}, vectors as {"samples": float32 (n, D)}.
        Conditional models also return "labels" (n,): `classes` (one class, or one per sample, by
        number or by name), or, when None, every class in turn (balanced).
        """
        self._noise_model("samples")
        if n < 1:
            raise ConfigError(f"n must be at least 1, got {n}")
        labels = self.labels(n, classes)
        return self.outputs(self.noise(n, seed, truncation), labels, batch_size)

    def interpolate(self, steps: int = 8, rows: int = 1, seed: int = 0, classes=None,
                    truncation: Optional[float] = None) -> dict[str, np.ndarray]:
        """`rows` walks of `steps` samples each, from one noise vector to another along the sphere
        (slerp): {"images" or "samples": (rows * steps, ...), "labels" when conditional}, row by
        row. A conditional model keeps one class per row (every class in turn by default)."""
        self._noise_model("latent space to walk")
        if steps < 2 or rows < 1:
            raise ConfigError(f"an interpolation needs steps >= 2 and rows >= 1, got steps={steps}, rows={rows}")
        ends = self.noise(2 * rows, seed, truncation)  # (2 rows, z_dim): start and end of each walk
        t = torch.linspace(0.0, 1.0, steps, device=self.device)
        z = torch.cat([slerp(ends[2 * r], ends[2 * r + 1], t) for r in range(rows)])  # (rows * steps, z_dim)
        row_labels = self.labels(rows, classes)
        labels = row_labels.repeat_interleave(steps) if row_labels is not None else None
        return self.outputs(z, labels, 1000)

    @torch.no_grad()
    def outputs(self, z: torch.Tensor, labels: Optional[torch.Tensor], batch_size: int = 1000) -> dict[str, np.ndarray]:
        """The samples of given noise (N, z_dim) and labels (N,) or None, as `sample` returns them."""
        was = self.training
        self.eval()
        outs = []
        for i in range(0, len(z), batch_size):
            c = labels[i:i + batch_size].to(self.device) if labels is not None else None
            x = self.G(z[i:i + batch_size], c).float()
            outs.append(to_uint8(x).permute(0, 2, 3, 1).cpu() if self.is_image else x.cpu())
        self.train(was)
        result = {"images" if self.is_image else "samples": torch.cat(outs).numpy()}
        if labels is not None and not self.paired:
            result["labels"] = labels.cpu().numpy().astype(np.int64)
        return result

    # ---- image-to-image models ---------------------------------------------------------------------

    def inputs(self, images: np.ndarray, masks: Optional[np.ndarray] = None, degrade: bool = False,
               seed: int = 0) -> torch.Tensor:
        """G's inputs (N, *cond_shape at the images' size) float32 for uint8 images (N, H, W, C).

        As given (the default), the images are what the model restores: low-resolution images for
        super-resolution (upsampled here by the factor, bicubic, as in training), noisy images for
        denoising, and for inpainting the images with `masks` (N, H, W) on the 0..255 scale, 128 or
        more (white) where pixels are missing. With `degrade`, the images are clean and the training degradation is
        applied first (its random holes or noise from `seed`): to see what the model does to a
        known image."""
        deg = self.degradation
        if deg is None:
            raise ConfigError("this model makes images from noise: inputs and translate are for image-to-image "
                              "models (trained with data.degrade)")
        x = self._model_images(images)
        self.check_input_size(*x.shape[-2:], grown_by=1 if degrade else deg.scale)
        if degrade:
            deg.check_size(*x.shape[-2:])
            return deg(x, torch.Generator().manual_seed(seed))
        return deg.given(x, masks)

    def check_input_size(self, h: int, w: int, grown_by: int = 1) -> None:
        """A ConfigError when images of h x w px, grown by `grown_by` first (super-resolution), do not
        fit the model's stride."""
        need = 2 ** int(getattr(self.G, "depth", 0))
        if (h * grown_by) % need == 0 and (w * grown_by) % need == 0:
            return
        unit = need // math.gcd(need, grown_by)
        grown = f" (they are grown {grown_by}x first)" if grown_by > 1 else ""
        raise ConfigError(f"this model halves its images {int(math.log2(need))} times, so the images it is given must "
                          f"have sides that are multiples of {unit} px{grown}; got {h}x{w} px. Crop or pad them")

    def _model_images(self, images: np.ndarray) -> torch.Tensor:
        """uint8 (N, H, W[, C]) -> float32 (N, C, H, W) in [-1, 1], checked against the model's channels."""
        a = np.asarray(images)
        if a.dtype != np.uint8:
            raise ConfigError(f"images must be uint8 (N, H, W, C), got {a.dtype}")
        if a.ndim == 3:
            a = a[..., None]
        if a.ndim != 4 or a.shape[-1] != self.shape[0]:
            raise ConfigError(f"images of shape {a.shape} do not fit this model, which reads (N, H, W, {self.shape[0]}) "
                              f"images ({'grayscale' if self.shape[0] == 1 else 'RGB'})")
        return torch.from_numpy(np.array(a, dtype=np.uint8)).permute(0, 3, 1, 2).float().mul(2.0 / 255.0).sub(1.0)

    @torch.no_grad()
    def translate(self, inputs: torch.Tensor, batch_size: int = 256) -> np.ndarray:
        """G's outputs for inputs (N, *cond_shape) float in model units (from `inputs`, or a
        degradation) as uint8 images (N, H, W, C). The model is fully convolutional: any size whose
        sides it can halve its depth times."""
        if not self.paired:
            raise ConfigError("this model makes images from noise; translate is for image-to-image models "
                              "(trained with data.degrade)")
        if inputs.dim() != 4 or inputs.shape[1] != self.cond_shape[0]:
            raise ConfigError(f"inputs of shape {tuple(inputs.shape)} do not fit this model, which reads "
                              f"(N, {self.cond_shape[0]}, H, W)")
        was = self.training
        self.eval()
        outs = []
        for i in range(0, len(inputs), batch_size):
            c = inputs[i:i + batch_size].to(self.device)
            z = torch.zeros(len(c), self.z_dim, device=self.device)  # the U-Net ignores z
            outs.append(to_uint8(self.G(z, c).float()).permute(0, 2, 3, 1).cpu())
        self.train(was)
        return torch.cat(outs).numpy() if outs else np.zeros((0, *inputs.shape[-2:], self.shape[0]), np.uint8)

    def class_index(self, name_or_index) -> int:
        """A class given by number or by name (e.g. "Bag" or "bag" for Fashion-MNIST) -> its index."""
        if isinstance(name_or_index, str) and not name_or_index.lstrip("-").isdigit():
            names = list(self.class_names or [])
            folded = {n.lower(): i for i, n in enumerate(names)}
            if name_or_index.lower() in folded:
                return folded[name_or_index.lower()]
            raise ConfigError(f"no class named {name_or_index!r}; this model's classes: {self._listed()}."
                              + close_match_hint(name_or_index, names))
        return int(name_or_index)

    def _listed(self) -> str:
        names = list(self.class_names or [])
        return ", ".join(f"{i} {n}" for i, n in enumerate(names)) or f"0..{self.n_classes - 1} (no names)"

    def labels(self, n: int, classes=None) -> Optional[torch.Tensor]:
        """Labels (n,) for `classes`: None -> every class in turn; one class, or one per sample."""
        if not self.n_classes:
            if classes is not None:
                raise ConfigError("this model is unconditional: sample it without a class")
            return None
        if classes is None:
            return torch.arange(n) % self.n_classes
        items = [classes] if isinstance(classes, (str, int, np.integer)) else list(np.asarray(classes).reshape(-1))
        labels = torch.tensor([self.class_index(c if isinstance(c, str) else int(c)) for c in items], dtype=torch.int64)
        if labels.numel() == 1:
            labels = labels.expand(n).clone()
        if labels.numel() != n:
            raise ConfigError(f"got {labels.numel()} classes for {n} samples; give one class or one per sample")
        bad = labels[(labels < 0) | (labels >= self.n_classes)]
        if bad.numel():
            raise ConfigError(f"class {int(bad[0])} is out of range; this model's classes: {self._listed()}")
        return labels


EXPORT_FORMAT = "ganland-generator"  # the metadata marker of an exported generator file
EXPORT_VERSION = 1


def load(run_or_file: str | Path, device: str = "cpu", ema: bool = True) -> Generator:
    """The generator of a run folder's newest checkpoint, of one checkpoint file, or of a file
    written by `export` (.safetensors). Uses the EMA generator when the run kept one and `ema` is
    true. Nothing is unpickled. (A numpy-sine run folder gives its NumPy generator, which samples
    and is scored the same way but is not an nn.Module.)"""
    path = Path(run_or_file)
    if path.is_dir() and is_numpy_run(path):  # seed 002's engine: its own kind of generator
        from .numpy_gan.train import SineGenerator

        return SineGenerator(path)
    if path.is_dir():
        ck = latest_checkpoint(path)
    elif path.suffix == ".safetensors" and path.is_file():
        ck = _read_export(path)
    elif path.is_file():
        ck = load_checkpoint(path)
    else:
        raise CheckpointError(f"{path} is neither a run folder, a checkpoint file nor an exported .safetensors file")
    cfg = load_config(yaml_load(ck["config_yaml"], f"{path} config"))
    try:
        info = ck["data_info"]
        shape, n_classes, step = tuple(int(n) for n in info["shape"]), int(info["n_classes"]), int(ck["counters"]["step"])
        is_image, class_names = bool(info["is_image"]), info.get("class_names")
        cond_shape = tuple(int(n) for n in info["cond_shape"]) if info.get("cond_shape") else None
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise CheckpointError(f"{ck.get('path', path)}: damaged checkpoint contents ({type(e).__name__}: {e})") from None
    G, _ = build_models(cfg, shape, n_classes, cond_shape)
    state = ck["G_ema"] if (ema and ck.get("G_ema") is not None) else ck["G"]
    try:
        G.load_state_dict(state)
    except (RuntimeError, TypeError, AttributeError) as e:
        raise CheckpointError(f"{ck.get('path', path)}: weights do not fit the model its config describes "
                              f"(different model or ganland version?): {' '.join(str(e).split())[:300]}") from None
    model = Generator(G, cfg, shape, n_classes if cfg.model.conditional else 0, class_names, is_image, step,
                      cond_shape)
    return model.to(resolve_device(device)).eval()


def export(run_or_checkpoint: str | Path, out: str | Path, ema: bool = True) -> Path:
    """Write a run's generator (the EMA one when kept and `ema`) to a .safetensors file: the weights,
    and in its metadata the resolved config, the data description and the step, so that
    `ganland.load(out)` rebuilds it anywhere without the run folder. Returns the file's path."""
    from safetensors.torch import save_file

    from .training.checkpoint import atomic_write

    out = Path(out)
    if out.suffix != ".safetensors":
        raise ConfigError(f"{out}: an exported generator is a .safetensors file; give --out NAME.safetensors")
    model = load(run_or_checkpoint, ema=ema)
    if not isinstance(model, Generator):
        raise ConfigError(f"{run_or_checkpoint} is a numpy-sine run: its generator is already one file of NumPy "
                          "arrays, weights.npz in the run folder (ganland.numpy_gan.load_weights reads it); export "
                          "is for torch runs")
    tensors = {k: v.detach().contiguous().cpu() for k, v in model.G.state_dict().items()}
    metadata = {"format": EXPORT_FORMAT, "format_version": str(EXPORT_VERSION), "ganland_version": __version__,
                "config_yaml": model.config.to_yaml(), "step": str(model.step), "ema": str(bool(ema)).lower(),
                "data_info": json.dumps({"shape": list(model.shape), "n_classes": model.n_classes,
                                         "class_names": model.class_names, "is_image": model.is_image,
                                         "cond_shape": list(model.cond_shape) if model.paired else None})}
    tmp = out.with_name(f".{out.name}.tmp")
    save_file(tensors, str(tmp), metadata=metadata)
    atomic_write(out, tmp.read_bytes())
    tmp.unlink()
    return out


def _read_export(path: Path) -> dict:
    """An exported file as the parts of a checkpoint that `load` reads."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file, safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"{path} is not a readable .safetensors file ({e})") from None
    if meta.get("format") != EXPORT_FORMAT:
        raise CheckpointError(f"{path} is a .safetensors file but not a ganland generator (no '{EXPORT_FORMAT}' "
                              "marker in its metadata); write one with `ganland export RUN --out FILE.safetensors`")
    if int(meta.get("format_version", "0")) > EXPORT_VERSION:
        raise CheckpointError(f"{path} was written by a newer ganland (format {meta['format_version']}): upgrade")
    try:
        info = json.loads(meta["data_info"])
        return {"config_yaml": meta["config_yaml"], "data_info": info, "G": tensors, "G_ema": None,
                "counters": {"step": int(meta["step"])}, "path": str(path)}
    except (KeyError, ValueError) as e:
        raise CheckpointError(f"{path}: damaged generator metadata ({type(e).__name__}: {e})") from None
