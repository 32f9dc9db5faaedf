"""TEMPORARY stand-ins for shared plumbing that is landing in ``hf_eff/distributed.py`` and
``hf_eff/callbacks/base.py``; delete this module once those are on main and switch the imports.

- rank / world size / gathers of variable-length tensors / broadcast (torch.distributed, gloo-safe);
- the link from a model to the Trainer mixin that trains it, which a callback (rebuilt on resume or not) uses to
  check that it runs under the mixin, to reach the training set and to receive state read from a checkpoint.
"""

import weakref
from typing import Any

import torch
import torch.distributed as dist


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def gather_cat(tensor: torch.Tensor) -> torch.Tensor:
    """Concatenate ``tensor`` (any first-dimension length) from every rank, in rank order, on every rank."""
    if not is_distributed():
        return tensor
    sizes = [torch.zeros(1, dtype=torch.long) for _ in range(world_size())]
    dist.all_gather(sizes, torch.tensor([tensor.shape[0]]))
    longest = int(max(size.item() for size in sizes))
    padded = torch.zeros((longest, *tensor.shape[1:]), dtype=tensor.dtype)
    padded[: tensor.shape[0]] = tensor
    parts = [torch.empty_like(padded) for _ in sizes]
    dist.all_gather(parts, padded)
    return torch.cat([part[: int(size.item())] for part, size in zip(parts, sizes)])


def all_reduce_mean_(tensor: torch.Tensor) -> torch.Tensor:
    if is_distributed():
        dist.all_reduce(tensor)
        tensor /= world_size()
    return tensor


def broadcast_(tensor: torch.Tensor, src: int = 0) -> torch.Tensor:
    if is_distributed():
        dist.broadcast(tensor, src)
    return tensor


_TRAINERS: "weakref.WeakKeyDictionary[torch.nn.Module, weakref.ref]" = weakref.WeakKeyDictionary()


def bind_trainer(model: torch.nn.Module, trainer: Any) -> None:
    _TRAINERS[model] = weakref.ref(trainer)


def bound_trainer(model: torch.nn.Module | None) -> Any:
    ref = _TRAINERS.get(model) if model is not None else None
    return ref() if ref is not None else None
