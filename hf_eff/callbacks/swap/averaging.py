"""Phase 3 of SWAP as plain torch: average the workers' weights, recompute BatchNorm statistics.

- Averaging covers every floating-point tensor of the ``state_dict`` (parameters and buffers); BatchNorm running
  statistics are then recomputed rather than averaged, as the paper prescribes. Integer buffers are left alone.
  Across processes the tensors are flattened into one buffer per dtype, so the average is one all-reduce.
- The BatchNorm recompute resets the running statistics, sets ``momentum=None`` (a cumulative average over the
  pass; ``0`` would freeze them) and runs forward passes in train mode under ``no_grad``. Unlike
  ``torch.optim.swa_utils.update_bn`` it takes any batch and a forward function, so Hugging Face dict batches
  (``model(**batch)``) work.
"""

from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import nn

from hf_eff.distributed import all_reduce_


def floating_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """The model's floating-point parameters and buffers by ``state_dict`` name (views sharing their storage)."""
    return {name: tensor for name, tensor in model.state_dict().items() if tensor.is_floating_point()}


@torch.no_grad()
def average_across_processes(model: nn.Module) -> None:
    """Replace every floating tensor of ``model`` by its mean over all processes, in place (one all-reduce per
    dtype; a no-op in a single process)."""
    by_dtype: dict[torch.dtype, list[torch.Tensor]] = {}
    for tensor in floating_state(model).values():
        by_dtype.setdefault(tensor.dtype, []).append(tensor)
    for tensors in by_dtype.values():
        flat = torch.cat([tensor.reshape(-1) for tensor in tensors])
        all_reduce_(flat, "mean")
        offset = 0
        for tensor in tensors:
            tensor.copy_(flat[offset : offset + tensor.numel()].view_as(tensor))
            offset += tensor.numel()


@torch.no_grad()
def squared_distance(model: nn.Module, reference: dict[str, torch.Tensor]) -> float:
    """Squared L2 distance between the model's parameters and ``reference`` (parameters only, not buffers)."""
    total = torch.zeros((), dtype=torch.float64)
    for name, parameter in model.named_parameters():
        if name in reference:
            total += (parameter.detach().double() - reference[name].double()).pow(2).sum().cpu()
    return float(total)


def batchnorm_layers(model: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    return [
        module
        for module in model.modules()
        if isinstance(module, nn.modules.batchnorm._BatchNorm) and module.track_running_stats
    ]


@torch.no_grad()
def recompute_batchnorm(
    model: nn.Module,
    batches: Iterable[Any],
    forward: Callable[[nn.Module, Any], Any] | None = None,
) -> int:
    """Recompute the running mean/variance of every BatchNorm layer from ``batches``; return the batches used.

    ``forward(model, batch)`` runs one batch (default ``model(**batch)`` for dicts, ``model(batch)`` otherwise).
    Models without BatchNorm are left untouched and no batch is drawn.
    """
    layers = batchnorm_layers(model)
    if not layers:
        return 0
    forward = forward or _default_forward
    momenta = [layer.momentum for layer in layers]
    was_training = model.training
    for layer in layers:
        layer.reset_running_stats()
        layer.momentum = None  # cumulative moving average: every batch of the pass weighs the same
    model.train()
    used = 0
    try:
        for batch in batches:
            forward(model, batch)
            used += 1
    finally:
        for layer, momentum in zip(layers, momenta):
            layer.momentum = momentum
        model.train(was_training)
    if used == 0:
        raise ValueError("recompute_batchnorm got no batches: the BatchNorm statistics would be left reset")
    return used


def _default_forward(model: nn.Module, batch: Any) -> Any:
    return model(**batch) if isinstance(batch, dict) else model(batch)
