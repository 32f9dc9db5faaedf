"""The few ``torch.distributed`` operations hf_eff needs, in one place, each a no-op outside a multi-process run.

Methods that must make the same decision on every rank (a bandit's arm, a sparse mask, a closed-form solve) sum,
average or broadcast small tensors. The details that are easy to get wrong live here once: asking whether a process
group exists at all, moving a tensor to the device the backend communicates on (NCCL only moves CUDA tensors; gloo
only CPU ones) and back in place, averaging on backends without ``ReduceOp.AVG`` (gloo), broadcasting bool tensors,
and telling the user *what* differs between ranks instead of letting a collective hang or silently diverge.

Nothing here imports transformers: engines and models use it as well as callbacks.
"""

import os
from typing import Any

import torch
import torch.distributed as dist


__all__ = [
    "all_gather_object",
    "all_reduce_",
    "broadcast_",
    "broadcast_object",
    "check_same_on_all_ranks",
    "get_rank",
    "get_world_size",
    "is_distributed",
    "world_size_problem",
]

REDUCE_OPS = ("sum", "mean")


def _initialized() -> bool:
    return dist.is_available() and dist.is_initialized()


def get_rank() -> int:
    """This process's rank in the default group; 0 outside a distributed run."""
    return dist.get_rank() if _initialized() else 0


def get_world_size() -> int:
    """The number of processes in the default group; 1 outside a distributed run."""
    return dist.get_world_size() if _initialized() else 1


def is_distributed() -> bool:
    """True in an initialised process group of more than one process (the only case where collectives matter)."""
    return get_world_size() > 1


def _backend_device() -> torch.device:
    """The device the default group's backend communicates on: the current CUDA device for NCCL, else the CPU."""
    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def _communicate_in_place(tensor: torch.Tensor, collective) -> torch.Tensor:
    """Run ``collective`` on ``tensor`` (in place), through a copy on the backend's device (and as uint8 for bool)
    when the tensor cannot be communicated as it is."""
    device = _backend_device()
    if tensor.device == device and tensor.dtype != torch.bool and tensor.is_contiguous():
        collective(tensor)
        return tensor
    moved = tensor.to(device=device, dtype=torch.uint8 if tensor.dtype == torch.bool else tensor.dtype).contiguous()
    collective(moved)
    tensor.copy_(moved.to(tensor.device, tensor.dtype))
    return tensor


def all_reduce_(tensor: torch.Tensor, op: str = "sum") -> torch.Tensor:
    """Sum (``op="sum"``) or average (``op="mean"``) ``tensor`` over all ranks, in place; returns it.

    Works for tensors on any device: one the backend cannot communicate on is reduced through a copy. ``"mean"``
    needs a floating dtype (it divides by the world size).
    """
    if op not in REDUCE_OPS:
        raise ValueError(f"op must be one of {REDUCE_OPS}, got {op!r}")
    if not isinstance(tensor, torch.Tensor):
        raise TypeError(f"all_reduce_ reduces a torch.Tensor in place, got {type(tensor).__name__}")
    if op == "mean" and not tensor.is_floating_point():
        raise TypeError(f"op='mean' needs a floating-point tensor, got {tensor.dtype}")
    if not is_distributed():
        return tensor
    _communicate_in_place(tensor, dist.all_reduce)  # SUM: gloo has no AVG
    if op == "mean":
        tensor.div_(get_world_size())
    return tensor


def broadcast_(tensor: torch.Tensor, src: int = 0) -> torch.Tensor:
    """Overwrite ``tensor`` (in place) with rank ``src``'s values on every rank; returns it. Bool tensors work."""
    if not isinstance(tensor, torch.Tensor):
        raise TypeError(f"broadcast_ overwrites a torch.Tensor in place, got {type(tensor).__name__}")
    if not is_distributed():
        return tensor
    _communicate_in_place(tensor, lambda moved: dist.broadcast(moved, src=src))
    return tensor


def broadcast_object(value: Any, src: int = 0) -> Any:
    """Rank ``src``'s ``value`` (a small picklable Python object), returned on every rank. Sent in memory only."""
    if not is_distributed():
        return value
    holder = [value]
    dist.broadcast_object_list(holder, src=src, device=_backend_device())
    return holder[0]


def all_gather_object(value: Any) -> list[Any]:
    """Every rank's ``value`` (a small picklable Python object), as a list indexed by rank; ``[value]`` outside a
    distributed run. Every rank must call it (it is a collective)."""
    if not is_distributed():
        return [value]
    gathered: list[Any] = [None] * get_world_size()
    dist.all_gather_object(gathered, value)
    return gathered


def _equal(a: Any, b: Any) -> bool:
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        return (
            isinstance(a, torch.Tensor)
            and isinstance(b, torch.Tensor)
            and a.dtype == b.dtype
            and torch.equal(a.cpu(), b.cpu())
        )
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_equal(a[key], b[key]) for key in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b))
    return bool(a == b)


def check_same_on_all_ranks(value: Any, name: str) -> None:
    """Raise a ``ValueError`` naming ``name`` (and the ranks and values that differ) unless ``value`` is equal on
    every rank. ``value``: a small picklable object (numbers, strings, lists, dicts, tensors). Every rank must call
    it (it is a collective); outside a distributed run it does nothing.
    """
    if not is_distributed():
        return
    gathered = all_gather_object(value)
    differing = [rank for rank, other in enumerate(gathered) if not _equal(other, gathered[0])]
    if differing:
        shown = ", ".join(f"rank {rank}: {gathered[rank]!r:.200}" for rank in [0, *differing])
        raise ValueError(f"{name} must be the same on every rank, but it differs ({shown})")


def world_size_problem(world_size: int, expected: int | None = None) -> str | None:
    """Why a run's ``world_size`` (what the training loop joined: ``TrainingArguments.world_size``,
    ``Accelerator.num_processes``) is not what was launched, or ``None`` when it is; for scripts to check at
    start-up, before any work.

    The launcher's count is ``WORLD_SIZE`` (set by ``torchrun`` and ``accelerate launch --multi_gpu``); ``expected``
    is the user's own count (an ``--expected_world_size`` flag): the only way to catch ``accelerate launch --cpu
    --num_processes 2``, which starts one process and sets no ``WORLD_SIZE``.
    """
    launched = int(os.environ.get("WORLD_SIZE", "1"))
    expected = launched if expected is None else expected
    if world_size == launched == expected:
        return None
    return (
        f"expected {expected} processes; the launcher started {launched} and the training loop joined {world_size}. "
        "On CPU start N processes with `torchrun --nproc_per_node N` or `accelerate launch --multi_gpu "
        "--num_processes N` (`accelerate launch --cpu --num_processes N` starts one), and set use_cpu"
    )
