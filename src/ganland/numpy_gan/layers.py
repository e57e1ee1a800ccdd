"""Layers with hand-written backward passes: Dense, ReLU, LeakyReLU, Tanh, Sigmoid, Sequential.

Every layer works on a whole mini-batch at once, x (N, n_in) -> y (N, n_out), with no Python loop
over samples; seed 002's one-sample-at-a-time schedule is N = 1. `forward(x)` caches what
`backward` needs; `backward(grad_y)` returns the loss's gradient with respect to x (N, n_in) and
writes the gradients of the layer's parameters (summed over the batch) into `Parameter.grad`.
The mean over the batch is taken once, in the loss (`losses.bce_grad` divides by N).
"""
from __future__ import annotations

import math

import numpy as np

from ..errors import ConfigError

DTYPES = {"float64": np.float64, "float32": np.float32}  # float64 for gradient checks


def as_dtype(dtype) -> np.dtype:
    """"float64" / "float32" (or the numpy types) -> np.dtype; anything else is a ConfigError."""
    name = np.dtype(dtype).name if not isinstance(dtype, str) else dtype
    if name not in DTYPES:
        raise ConfigError(f"dtype {dtype!r} is not supported by the NumPy engine; use 'float64' or 'float32'")
    return np.dtype(DTYPES[name])


class Parameter:
    """A parameter array and its gradient (same shape and dtype), like torch's `.data` / `.grad`.

    Optimizers and clipping update `data` in place, so views of it (see `pack`) stay valid.
    """

    __slots__ = ("name", "data", "grad", "is_bias")

    def __init__(self, name: str, data: np.ndarray, is_bias: bool = False):
        self.name = name
        self.data = data
        self.grad = np.zeros_like(data)
        self.is_bias = is_bias

    def __repr__(self) -> str:
        return f"Parameter({self.name!r}, shape={self.data.shape}, dtype={self.data.dtype})"


def pack(params: list[Parameter], name: str = "flat") -> Parameter:
    """Move `params` into one contiguous buffer (and their grads into another) -> a Parameter
    whose data/grad are the whole buffers.

    Each parameter's data and grad become views into the buffers, so an optimizer step or weight
    clipping on the returned Parameter is one NumPy call for the whole network.
    """
    if not params:
        raise ConfigError("pack: no parameters to pack; give at least one layer with weights")
    dtype = params[0].data.dtype
    if any(p.data.dtype != dtype for p in params):
        raise ConfigError("pack: all parameters need one dtype; build every layer with the same dtype")
    total = sum(p.data.size for p in params)
    flat = Parameter(name, np.empty(total, dtype=dtype))
    start = 0
    for p in params:
        stop = start + p.data.size
        flat.data[start:stop] = p.data.ravel()
        flat.grad[start:stop] = p.grad.ravel()
        p.data = flat.data[start:stop].reshape(p.data.shape)
        p.grad = flat.grad[start:stop].reshape(p.grad.shape)
        start = stop
    return flat


class Layer:
    """Base class: forward(x) -> y caches what backward needs; backward(grad_y) -> grad_x."""

    def forward(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def backward(self, grad_y: np.ndarray, param_grads: bool = True, input_grad: bool = True):
        """grad_y (N, n_out) -> grad_x (N, n_in) (None when not input_grad); fills Parameter.grad
        when param_grads."""
        raise NotImplementedError

    def parameters(self) -> list[Parameter]:
        return []


class Dense(Layer):
    """y = x @ W + b with W (n_in, n_out) and b (1, n_out), the seed's shapes."""

    def __init__(self, W: np.ndarray, b: np.ndarray, name: str = "dense"):
        if W.ndim != 2 or b.shape != (1, W.shape[1]) or W.dtype != b.dtype:
            raise ConfigError(f"Dense {name}: need W (n_in, n_out) and b (1, n_out) of one dtype, "
                              f"got W {W.shape} {W.dtype} and b {b.shape} {b.dtype}")
        self.W = Parameter(f"{name}.W", W)
        self.b = Parameter(f"{name}.b", b, is_bias=True)
        self.x: np.ndarray | None = None

    @classmethod
    def seed_uniform(cls, n_in: int, n_out: int, rng: np.random.Generator, dtype=np.float64,
                     name: str = "dense") -> "Dense":
        """Seed 002's `weight_initializer`: W ~ U(-s, s), s = sqrt(2 / (n_in + n_out)), and the
        bias drawn the same way as a (1, n_out) matrix, so its s = sqrt(2 / (1 + n_out))."""
        s_w, s_b = math.sqrt(2.0 / (n_in + n_out)), math.sqrt(2.0 / (1 + n_out))
        W = rng.uniform(-s_w, s_w, (n_in, n_out)).astype(dtype)
        b = rng.uniform(-s_b, s_b, (1, n_out)).astype(dtype)
        return cls(W, b, name)

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.x = x  # (N, n_in)
        y = x @ self.W.data  # (N, n_out)
        y += self.b.data
        return y

    def backward(self, grad_y: np.ndarray, param_grads: bool = True, input_grad: bool = True):
        if param_grads:
            np.matmul(self.x.T, grad_y, out=self.W.grad)  # (n_in, n_out): summed over the batch
            if grad_y.shape[0] == 1:
                self.b.grad[...] = grad_y  # (1, n_out): a copy is cheaper than a sum over one row
            else:
                np.add.reduce(grad_y, axis=0, keepdims=True, out=self.b.grad)  # (1, n_out)
        return grad_y @ self.W.data.T if input_grad else None  # (N, n_in)

    def parameters(self) -> list[Parameter]:
        return [self.W, self.b]


class ReLU(Layer):
    """y = max(x, 0); dy/dx = 1 where x > 0, else 0 (the seed's dReLU returned ReLU(x))."""

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.y = np.maximum(x, 0)
        return self.y

    def backward(self, grad_y: np.ndarray, param_grads: bool = True, input_grad: bool = True):
        return grad_y * (self.y > 0)  # y > 0 exactly where x > 0


class LeakyReLU(Layer):
    """y = x where x >= 0, slope * x elsewhere; dy/dx = 1 or slope (0 <= slope <= 1)."""

    def __init__(self, slope: float = 0.2):
        if not 0.0 <= slope <= 1.0:
            raise ConfigError(f"LeakyReLU: slope must lie in [0, 1], got {slope!r}")
        self.slope = slope

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.x = x
        return np.maximum(x, self.slope * x)  # = x for x >= 0, slope * x for x < 0

    def backward(self, grad_y: np.ndarray, param_grads: bool = True, input_grad: bool = True):
        return np.where(self.x >= 0, grad_y, self.slope * grad_y)


class Tanh(Layer):
    """y = tanh(x); dy/dx = 1 - y^2 from the cached *output* (the seed applied it to tanh(y))."""

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.y = np.tanh(x)
        return self.y

    def backward(self, grad_y: np.ndarray, param_grads: bool = True, input_grad: bool = True):
        return grad_y * (1 - self.y * self.y)


class Sigmoid(Layer):
    """y = 1 / (1 + exp(-x)), computed as exp(-log(1 + exp(-x))) so it never overflows;
    dy/dx = y (1 - y) from the cached output (the seed applied it to sigmoid(y))."""

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.y = np.exp(-np.logaddexp(0, -x))
        return self.y

    def backward(self, grad_y: np.ndarray, param_grads: bool = True, input_grad: bool = True):
        return grad_y * (self.y * (1 - self.y))


class Sequential(Layer):
    """Layers applied in order. Its parameters live in one flat buffer (`self.flat`, see `pack`),
    named "<layer index>.W" / "<layer index>.b" as in torch's state dicts."""

    def __init__(self, layers: list[Layer]):
        self.layers = list(layers)
        for i, layer in enumerate(self.layers):
            for p in layer.parameters():
                p.name = f"{i}.{p.name.rsplit('.', 1)[-1]}"
        params = self.parameters()
        self.flat = pack(params) if params else None

    def forward(self, x: np.ndarray) -> np.ndarray:
        for layer in self.layers:
            x = layer.forward(x)
        return x

    def backward(self, grad_y: np.ndarray, param_grads: bool = True, input_grad: bool = True):
        """grad_y (N, n_out) -> grad of the input (N, n_in). param_grads=False computes only the
        input gradient (the G step's pass through D); input_grad=False skips the first layer's
        input gradient (nothing needs dL/dz)."""
        last = len(self.layers) - 1
        for i in range(last, -1, -1):
            grad_y = self.layers[i].backward(grad_y, param_grads, input_grad or i > 0)
        return grad_y

    def parameters(self) -> list[Parameter]:
        return [p for layer in self.layers for p in layer.parameters()]

    def state_dict(self) -> dict[str, np.ndarray]:
        """{name: copy of the array}, e.g. {"0.W": (n_in, n_out), "0.b": (1, n_out), ...}."""
        return {p.name: p.data.copy() for p in self.parameters()}

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        """Copy arrays into the parameters in place (names and shapes must match exactly)."""
        params = {p.name: p for p in self.parameters()}
        if set(state) != set(params):
            raise ConfigError(f"load_state_dict: expected the keys {sorted(params)}, got {sorted(state)}; "
                              "build the network with the same sizes as the one that was saved")
        for name, p in params.items():
            value = np.asarray(state[name])
            if value.shape != p.data.shape:
                raise ConfigError(f"load_state_dict: {name} has shape {value.shape}, the network needs "
                                  f"{p.data.shape}; build the network with the saved sizes")
            p.data[...] = value
