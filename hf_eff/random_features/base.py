"""What every random feature map shares: seeded randomness kept in buffers, input checks, bounded-memory batching."""

import math
from collections.abc import Callable

import torch
from torch import nn


_FLOAT_DTYPES = (torch.float32, torch.float64)


def seeded_generator(seed: int) -> torch.Generator:
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"seed must be an int, got {type(seed).__name__}")
    return torch.Generator(device="cpu").manual_seed(seed)


def random_signs(shape: tuple[int, ...], generator: torch.Generator) -> torch.Tensor:
    """Rademacher (+1 / -1) entries as int8: exact in every float dtype, a quarter of float32's bytes."""
    return (torch.randint(0, 2, shape, generator=generator, device="cpu", dtype=torch.int8) * 2 - 1).to(torch.int8)


def check_positive_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value}")
    return value


class RandomFeatureMap(nn.Module):
    """A data-independent map z: R^d -> R^n_components with <z(x), z(y)> an unbiased estimate of a kernel.

    The randomness is drawn once from ``seed`` (CPU generator, so the same on every device) and kept in
    persistent buffers: a saved model reproduces its features exactly. ``forward`` takes an (n, d) float tensor
    and processes it in row batches so the widest intermediate stays bounded, whatever n is.
    """

    # the widest intermediate (rows x width) materialised at once, in elements: bounds memory on large inputs
    workspace_elements = 1 << 23

    def __init__(self, n_features_in: int, n_components: int, seed: int = 0, batch_size: int | None = None):
        super().__init__()
        self.n_features_in = check_positive_int(n_features_in, "n_features_in")
        self.n_components = check_positive_int(n_components, "n_components")
        seeded_generator(seed)  # validates the seed
        self.seed = seed
        self.batch_size = None if batch_size is None else check_positive_int(batch_size, "batch_size")

    # subclasses: the randomness as named CPU tensors (a pure function of the constructor arguments) ...
    def sample_buffers(self) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    # ... and the map of one batch of already-validated rows
    def transform_batch(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def workspace_width(self) -> int:
        """Elements per input row of the widest intermediate; sets the default batch size."""
        return self.n_components

    def derived(self, name: str, build: Callable[[], torch.Tensor], dtype: torch.dtype | None = None) -> torch.Tensor:
        """``build()`` (a function of this module's buffers) on their device, cast to ``dtype``, computed once.

        For layouts and dtypes of the buffers that the fast path wants but a checkpoint should not store. The key
        holds every buffer's version, so in-place writes (``load_state_dict``, ``from_pretrained``) rebuild it;
        ``.to()`` / ``.double()`` clear the cache and pickling drops it.
        """
        buffers = tuple(self.buffers())  # a composite map's derived data depends on its stages' buffers
        versions = tuple((b.data_ptr(), b._version) for b in buffers)
        cache = self.__dict__.setdefault("_derived", {})
        entry = cache.get((name, dtype))
        if entry is None or entry[0] != versions:
            device = buffers[0].device if buffers else None
            entry = cache[name, dtype] = (versions, build().to(device=device, dtype=dtype))
        return entry[1]

    def __getstate__(self):
        return {**super().__getstate__(), "_derived": {}}

    def _apply(self, fn, *args, **kwargs):
        self.__dict__["_derived"] = {}
        return super()._apply(fn, *args, **kwargs)

    def _register_sampled_buffers(self) -> None:
        for name, tensor in self.sample_buffers().items():
            self.register_buffer(name, tensor, persistent=True)

    def rows_per_batch(self) -> int:
        if self.batch_size is not None:
            return self.batch_size
        return max(1, self.workspace_elements // max(1, self.workspace_width()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.check_input(x)
        compute = x if x.dtype in _FLOAT_DTYPES else x.float()
        rows = self.rows_per_batch()
        if compute.shape[0] <= rows:
            out = self.transform_batch(compute)
        else:
            out = torch.cat([self.transform_batch(chunk) for chunk in compute.split(rows)])
        return out.to(x.dtype)

    def check_input(self, x: torch.Tensor) -> torch.Tensor:
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
        if not x.is_floating_point():
            raise TypeError(f"x must hold floating-point values, got dtype {x.dtype}")
        if x.ndim != 2 or x.shape[1] != self.n_features_in:
            raise ValueError(f"x must have shape (n_samples, {self.n_features_in}) for this map, got {tuple(x.shape)}")
        buffer = next(self.buffers(), None)
        if buffer is not None and buffer.device != x.device:
            raise ValueError(f"x is on {x.device} but the feature map is on {buffer.device}; move one of them")
        if not torch.isfinite(x).all():
            raise ValueError("x contains NaN or infinite values; random feature maps need finite input")
        return x

    def extra_repr(self) -> str:
        return f"n_features_in={self.n_features_in}, n_components={self.n_components}, seed={self.seed}"


def scaled_input(x: torch.Tensor, gamma: float) -> torch.Tensor:
    """sqrt(gamma) * x: folds gamma into the input so maps only deal with (<x, y> + coef0) ** degree."""
    return x if gamma == 1 else x * math.sqrt(gamma)
