"""TEMPORARY stand-ins for shared plumbing that is landing on ``main`` (``hf_eff/distributed.py``,
``hf_eff/callbacks/base.py``). SWAP uses only what is here; delete this module once those exist and import them.

Nothing in this module is SWAP-specific.
"""

import torch
import torch.distributed as dist


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    return dist.get_rank() if is_distributed() else 0


def world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def _collective(tensor: torch.Tensor, op) -> torch.Tensor:
    """Run ``op`` on ``tensor`` in place, through the device the backend needs (NCCL cannot reduce CPU tensors)."""
    if dist.get_backend() == "nccl" and tensor.device.type == "cpu":
        moved = tensor.cuda()
        op(moved)
        tensor.copy_(moved.cpu())
    else:
        op(tensor)
    return tensor


def all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    """Sum ``tensor`` in place over all processes (a no-op in a single process)."""
    if is_distributed():
        _collective(tensor, lambda t: dist.all_reduce(t, op=dist.ReduceOp.SUM))
    return tensor


def broadcast(tensor: torch.Tensor, src: int = 0) -> torch.Tensor:
    if is_distributed():
        _collective(tensor, lambda t: dist.broadcast(t, src=src))
    return tensor


def any_rank(flag: bool) -> bool:
    """True on every rank when ``flag`` is true on at least one: the same decision everywhere."""
    if not is_distributed():
        return bool(flag)
    value = torch.tensor([1.0 if flag else 0.0])
    _collective(value, lambda t: dist.all_reduce(t, op=dist.ReduceOp.MAX))
    return bool(value.item() > 0)


def barrier() -> None:
    if is_distributed():
        dist.barrier()


def unwrap_optimizer(optimizer):
    """The torch optimizer inside accelerate's ``AcceleratedOptimizer`` (or the optimizer itself)."""
    return getattr(optimizer, "optimizer", optimizer)


def unwrap_scheduler(lr_scheduler):
    return getattr(lr_scheduler, "scheduler", lr_scheduler)
