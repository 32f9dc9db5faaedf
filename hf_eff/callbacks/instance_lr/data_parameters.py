"""Data Parameters (Saxena, Tuzel & DeCoste, NeurIPS 2019), the verified baseline of per-instance learning rates.

Mechanism, as in the official code (``apple/ml-data-parameters``: ``main_cifar.py``, ``utils.py``,
``optimizer/sparse_sgd.py``): each training row and/or class has a learnable log-temperature ``s``; the logits of a
sample are divided by ``sigma = exp(s_class[label]) + exp(s_row)`` (the joint curriculum; or either term alone)
before the cross-entropy, so a large ``sigma`` flattens the softmax and shrinks that sample's gradient, an adaptive
per-sample learning rate. The class term is the one of the sample's *labelled* class (``class_parameters[target]``
in the official code). The ``s`` are learned by plain gradient descent on the same training loss (no meta set)
with a sparse SGD (momentum 0.9, lr 0.1) that moves only entries with a non-zero gradient, i.e. batch members;
``0.5 * wd * sum(s**2)`` over the batch members is added to the loss (optimiser weight decay 0); every ``s`` is
clamped to ``[log min_temperature, log max_temperature]`` after each step.

hf_eff additions: for token tasks the per-sample temperature divides all of that sample's logits; under DDP the
gradients of the data parameters (which are not part of the DDP module) are averaged over ranks before the step,
like the model's, so every rank holds the same values. ``row_values()`` (logged and exported) is each row's
temperature ``exp(s_row)``: a *larger* value means the row counts *less*.
"""

import math
from typing import Any

import torch

from hf_eff.callbacks.instance_lr.config import DataParametersConfig
from hf_eff.callbacks.instance_lr.losses import per_sample_loss, resolve_task
from hf_eff.callbacks.instance_lr.per_sample import PerSampleCallback, log_bounds
from hf_eff.distributed import all_reduce_, broadcast_


__all__ = ["DataParametersCallback"]


class SparseMomentumSGD:
    """SGD with momentum over one tensor that skips (in value and momentum) entries whose gradient is exactly 0:
    the rows and classes absent from the batch do not move."""

    def __init__(self, parameter: torch.Tensor, lr: float, momentum: float):
        self.parameter, self.lr, self.momentum = parameter, lr, momentum
        self.buffer = torch.zeros_like(parameter)

    @torch.no_grad()
    def step(self) -> None:
        grad = self.parameter.grad
        if grad is None:
            return
        moving = grad != 0
        self.buffer[moving] = self.momentum * self.buffer[moving] + grad[moving]
        self.parameter[moving] -= self.lr * self.buffer[moving]
        self.parameter.grad = None


class DataParametersCallback(PerSampleCallback):
    """Learn a temperature per training row and/or class (Data Parameters); use with ``InstanceLRTrainer``.

    Args:
        config: a :class:`~hf_eff.callbacks.instance_lr.config.DataParametersConfig` (or its fields as keywords).
    """

    config_class = DataParametersConfig
    checkpoint_name = "data_parameters"
    log_prefix = "data_parameters"

    def __init__(self, config: DataParametersConfig | None = None, **config_kwargs: Any):
        super().__init__(config, **config_kwargs)
        self.instance_log_temperatures: torch.Tensor | None = None
        self.class_log_temperatures: torch.Tensor | None = None
        self._optimizers: dict[str, SparseMomentumSGD] = {}
        self._task: str | None = None

    def _needs_classes(self) -> bool:
        return self.config.learn_class

    def _create_state(self) -> None:
        config = self.config
        instance = torch.full((self.num_samples,), math.log(config.init_instance))
        classes = torch.full((self.num_classes,), math.log(config.init_class)) if config.learn_class else None
        self._install(instance, classes, {})

    def _install(self, instance, classes, buffers: dict[str, torch.Tensor]) -> None:
        config = self.config
        self.instance_log_temperatures = instance.requires_grad_(config.learn_instance)
        self.class_log_temperatures = classes.requires_grad_(True) if classes is not None else None
        self._optimizers = {}
        if config.learn_instance:
            self._optimizers["instance"] = SparseMomentumSGD(instance, config.lr_instance, config.momentum)
        if classes is not None:
            self._optimizers["class"] = SparseMomentumSGD(classes, config.lr_class, config.momentum)
        for name, buffer in buffers.items():
            self._optimizers[name].buffer.copy_(buffer)

    def _load_state(self, tensors: dict[str, torch.Tensor]) -> None:
        classes = tensors.get("class_log_temperatures")
        if self.config.learn_class and (classes is None or classes.numel() != self.num_classes):
            raise ValueError(f"the checkpoint has no class temperatures for {self.num_classes} classes")
        buffers = {
            name: tensors[f"momentum.{name}"] for name in ("instance", "class") if f"momentum.{name}" in tensors
        }
        self._install(
            tensors["instance_log_temperatures"].float().clone(),
            classes.float().clone() if self.config.learn_class else None,
            buffers,
        )

    def _sync_state(self) -> None:
        with torch.no_grad():
            for tensor in (self.instance_log_temperatures, self.class_log_temperatures):
                if tensor is not None:
                    broadcast_(tensor)
            for optimizer in self._optimizers.values():
                broadcast_(optimizer.buffer)

    def checkpoint_tensors(self) -> dict[str, torch.Tensor]:
        tensors = {"instance_log_temperatures": self.instance_log_temperatures.detach()}
        if self.class_log_temperatures is not None:
            tensors["class_log_temperatures"] = self.class_log_temperatures.detach()
        tensors.update({f"momentum.{name}": opt.buffer for name, opt in self._optimizers.items()})
        return tensors

    def row_values(self) -> torch.Tensor:
        return self.instance_log_temperatures.detach().exp()

    def temperatures(self, indices: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        """``sigma`` of each sample (differentiable w.r.t. the learned parameters)."""
        config = self.config
        parts = []
        if config.learn_class:
            parts.append(self.class_log_temperatures[labels.cpu()].exp())
        if config.learn_instance:
            parts.append(self.instance_log_temperatures[indices].exp())
        return parts[0] if len(parts) == 1 else parts[0] + parts[1]

    def training_loss(self, model, logits: torch.Tensor, labels: torch.Tensor, indices: torch.Tensor):
        indices = self.check_indices(indices)
        if self._task is None:
            self._task = resolve_task(self.config.task, logits, labels, model)
        sigma = self.temperatures(indices, labels).to(logits.device)
        scaled = logits / sigma.view(-1, *([1] * (logits.dim() - 1)))
        loss = per_sample_loss(scaled, labels, self._task).mean()
        config = self.config
        if config.learn_instance and config.wd_instance > 0:
            loss = loss + 0.5 * config.wd_instance * self.instance_log_temperatures[indices].pow(2).sum()
        if config.learn_class and config.wd_class > 0:
            loss = loss + 0.5 * config.wd_class * self.class_log_temperatures[labels.cpu()].pow(2).sum()
        return loss

    def on_pre_optimizer_step(self, args, state, control, **kwargs):
        low, high = log_bounds(self.config.min_temperature, self.config.max_temperature)
        for optimizer in self._optimizers.values():
            if optimizer.parameter.grad is None:  # every rank must join the all-reduce
                optimizer.parameter.grad = torch.zeros_like(optimizer.parameter)
            all_reduce_(optimizer.parameter.grad, "mean")
            optimizer.step()
            with torch.no_grad():
                optimizer.parameter.clamp_(low, high)
