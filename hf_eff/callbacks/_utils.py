"""Plumbing shared by hf_eff callbacks: reach the torch optimizer and scheduler behind accelerate's wrappers, snapshot
and restore everything an optimizer step changes, and measure the loss on a small probe set on every rank.

Callbacks receive accelerate's ``AcceleratedOptimizer`` / ``AcceleratedScheduler`` and the unwrapped model (see
HF_CONVENTIONS §0, item 8). Probe-set losses are computed in eval mode under ``no_grad``, each rank on its share of
the batches, and all-reduced, so that every rank gets the same numbers and takes the same decision.
"""

import copy
import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from hf_eff.distributed import all_reduce_, get_rank, get_world_size


__all__ = [
    "ProbeLoss",
    "batch_size_of",
    "build_probe_batches",
    "evaluate_probe_loss",
    "example_losses",
    "restore_training_state",
    "snapshot_training_state",
    "unwrap_optimizer",
    "unwrap_scheduler",
]

IGNORE_INDEX = -100  # the label transformers' losses ignore (padding, prompt tokens)


def unwrap_optimizer(optimizer: torch.optim.Optimizer | None) -> torch.optim.Optimizer | None:
    """The innermost torch optimizer: accelerate's ``AcceleratedOptimizer`` (itself an ``Optimizer``) wraps it."""
    while isinstance(getattr(optimizer, "optimizer", None), torch.optim.Optimizer):
        optimizer = optimizer.optimizer
    return optimizer


def unwrap_scheduler(lr_scheduler: Any) -> Any:
    """The torch scheduler behind accelerate's ``AcceleratedScheduler`` (which keeps it in ``.scheduler``)."""
    return getattr(lr_scheduler, "scheduler", lr_scheduler)


def snapshot_training_state(model: nn.Module, optimizer: Any = None, lr_scheduler: Any = None) -> dict[str, Any]:
    """Copies of everything a training step changes: weights and buffers, optimizer state, scheduler, and the AMP
    grad scaler (which accelerate's ``AcceleratedOptimizer`` holds). In memory; costs one more copy of each."""
    scaler = getattr(optimizer, "scaler", None)
    return {
        "model": {name: tensor.detach().clone() for name, tensor in model.state_dict().items()},
        "optimizer": copy.deepcopy(optimizer.state_dict()) if optimizer is not None else None,
        "scheduler": copy.deepcopy(lr_scheduler.state_dict()) if lr_scheduler is not None else None,
        "scaler": copy.deepcopy(scaler.state_dict()) if scaler is not None else None,
    }


def restore_training_state(
    snapshot: dict[str, Any], model: nn.Module, optimizer: Any = None, lr_scheduler: Any = None
) -> None:
    """Put back what :func:`snapshot_training_state` copied (in place, so the Trainer keeps its objects)."""
    with torch.no_grad():
        model.load_state_dict(snapshot["model"])
    if snapshot["optimizer"] is not None:
        optimizer.load_state_dict(snapshot["optimizer"])
    if snapshot["scheduler"] is not None:
        lr_scheduler.load_state_dict(snapshot["scheduler"])
    if snapshot["scaler"] is not None:
        optimizer.scaler.load_state_dict(snapshot["scaler"])


def build_probe_batches(
    dataset: Any, model: nn.Module, batch_size: int, collator: Callable[[list], dict[str, Any]] | None = None
) -> list[dict[str, Any]]:
    """Collate ``dataset`` into batches once (every rank builds all of them; each evaluates its share), leaving the
    global random generators untouched.

    Columns of a ``datasets.Dataset`` that ``model.forward`` does not accept (labels aside) are dropped, as Trainer
    does; the default collator is ``transformers.default_data_collator``.
    """
    from torch.utils.data import DataLoader
    from transformers import default_data_collator

    if hasattr(dataset, "column_names") and hasattr(dataset, "remove_columns"):  # a datasets.Dataset
        accepted = set(inspect.signature(model.forward).parameters) | {"label", "labels", "label_ids"}
        unused = [column for column in dataset.column_names if column not in accepted]
        if unused:
            dataset = dataset.remove_columns(unused)
    # a DataLoader draws its workers' base seed from the global torch generator, even without shuffling, unless
    # given its own: building the batches must not change the training run's random stream (dropout, sampling),
    # or a run that builds them at another step (after a resume) would train differently
    loader = DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=False,
        collate_fn=collator or default_data_collator,
        generator=torch.Generator(),
    )
    return list(loader)


def batch_size_of(batch: dict[str, Any]) -> int:
    """The number of examples in a collated batch (the first dimension of its labels, else of any tensor)."""
    for key in ("labels", "label", "label_ids", *batch):
        value = batch.get(key)
        if isinstance(value, torch.Tensor) and value.dim() > 0:
            return value.shape[0]
    raise ValueError(f"cannot tell the batch size of a probe batch with keys {sorted(batch)}")


def _labels_of(batch: dict[str, Any]) -> torch.Tensor:
    for key in ("labels", "label", "label_ids"):
        if isinstance(batch.get(key), torch.Tensor):
            return batch[key]
    raise ValueError(f"per-example losses need labels in the batch (keys: {sorted(batch)})")


def _is_causal_lm(model: nn.Module) -> bool:
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

    name = type(model).__name__
    return name.endswith("ForCausalLM") or name in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES.values()


def example_losses(logits: torch.Tensor, labels: torch.Tensor, *, shift_labels: bool = False) -> torch.Tensor:
    """One loss per example, shape ``(batch,)``, float64.

    - labels ``(batch,)`` with logits ``(batch, classes)``: cross-entropy; with float labels and ``(batch,)`` or
      ``(batch, 1)`` logits: squared error (regression);
    - labels ``(batch, tokens)`` with logits ``(batch, tokens, vocab)``: the mean cross-entropy over the example's
      tokens whose label is not ``-100`` (0 for an example without any); ``shift_labels=True`` for causal language
      models, whose logits at position ``t`` predict the label at ``t + 1``.
    """
    logits = logits.detach().float()
    if labels.dim() == 1 and labels.is_floating_point():
        return (logits.reshape(labels.shape[0], -1).squeeze(-1) - labels.float()).pow(2).double()
    if labels.dim() == 1:
        return nn.functional.cross_entropy(logits, labels, reduction="none").double()
    if labels.dim() == 2 and logits.dim() == 3:
        if shift_labels:
            logits, labels = logits[:, :-1], labels[:, 1:]
        tokens = nn.functional.cross_entropy(
            logits.reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=IGNORE_INDEX, reduction="none"
        ).view(labels.shape)
        counted = (labels != IGNORE_INDEX).double().sum(-1)
        return tokens.double().sum(-1) / counted.clamp(min=1)
    raise ValueError(
        "per-example losses are defined for class labels (batch,), float regression targets (batch,) or token "
        f"labels (batch, tokens); got labels {tuple(labels.shape)} and logits {tuple(logits.shape)}; pass "
        "loss_per_example= to evaluate_probe_loss"
    )


def _logits_loss_per_example(shift_labels: bool) -> Callable[[Any, dict[str, Any]], torch.Tensor]:
    def loss_per_example(outputs: Any, batch: dict[str, Any]) -> torch.Tensor:
        return example_losses(outputs["logits"], _labels_of(batch), shift_labels=shift_labels)

    return loss_per_example


@dataclass
class ProbeLoss:
    """The probe set's mean loss (the model's own loss, weighted by batch size), and optionally one loss per
    example in dataset order (float64, on the CPU, identical on every rank)."""

    mean: float
    per_example: torch.Tensor | None = None


@torch.no_grad()
def evaluate_probe_loss(
    model: nn.Module,
    batches: Sequence[dict[str, Any]],
    *,
    per_example: bool = False,
    loss_per_example: Callable[[Any, dict[str, Any]], torch.Tensor] | None = None,
    shift_labels: bool | None = None,
) -> ProbeLoss:
    """Evaluate ``model`` on ``batches`` in eval mode (training mode is restored), each rank on its share
    (``batches[rank::world_size]``), and all-reduce the results.

    ``per_example=True`` also returns one loss per example, by default from the outputs' ``logits`` and the batch's
    labels (:func:`example_losses`; ``shift_labels`` defaults to whether ``model`` is a causal LM); a custom
    ``loss_per_example(outputs, batch) -> (batch,)`` replaces that.
    """
    rank, world_size = get_rank(), get_world_size()
    device = next(model.parameters()).device
    sizes = [batch_size_of(batch) for batch in batches]
    offsets = [sum(sizes[:i]) for i in range(len(sizes))]
    total = torch.zeros(2, dtype=torch.float64, device=device)  # (sum of example losses, examples)
    losses = torch.zeros(sum(sizes), dtype=torch.float64, device=device) if per_example else None
    if per_example and loss_per_example is None:
        loss_per_example = _logits_loss_per_example(_is_causal_lm(model) if shift_labels is None else shift_labels)
    was_training = model.training
    model.eval()
    try:
        for index in range(rank, len(batches), world_size):
            batch = {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in batches[index].items()}
            outputs = model(**batch)
            loss = outputs["loss"] if isinstance(outputs, dict) else outputs[0]
            if loss is None:
                raise ValueError(
                    "the model returned no loss on a probe batch: the probe set must include the labels "
                    f"(batch keys: {sorted(batch)})"
                )
            count = sizes[index]
            total += torch.stack([loss.detach().double() * count, torch.tensor(count, device=device).double()])
            if losses is not None:
                losses[offsets[index] : offsets[index] + count] = loss_per_example(outputs, batch).to(losses)
    finally:
        model.train(was_training)
    all_reduce_(total)
    if losses is not None:
        all_reduce_(losses)  # each example was filled in by exactly one rank; the others hold 0 there
    return ProbeLoss(float(total[0] / total[1]), None if losses is None else losses.cpu())
