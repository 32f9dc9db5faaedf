"""Per-instance dynamic learning rates (Saxena, Vyas & DeCoste, "Training With Data Dependent Dynamic Learning
Rates", arXiv 2105.13464), as a ``TrainerCallback``.

Every training row ``i`` has a learned, positive rate ``alpha_i = exp(s_i)`` (times a per-class term with
``per_class=True``) that scales its share of the update: the training loss is ``mean_i alpha_i * l_i``, so with
plain SGD ``alpha_i`` is exactly a per-instance learning rate (with momentum or Adam only approximately: Adam's
normalisation cancels a global scale of all rates but keeps their ratios). The rates are learned online by the
one-step hypergradient of a reference loss ``L_ref`` [hf_eff reading of the abstract; the paper's method section is
unverified]::

    theta_{t+1} = theta_t - lr * mean_i alpha_i grad l_i(theta_t)
    dL_ref(theta_{t+1}) / d alpha_i = -(lr / |B|) <grad L_ref(theta_{t+1}), grad l_i(theta_t)>
    s_i <- s_i - rate_lr * alpha_i * dL_ref / d alpha_i,  clamped to [log min_rate, log max_rate]

A row whose gradient points against the reference loss's (typically a mislabelled one) gets a smaller rate; the
rates can be exported as a dataset column to find such rows. ``L_ref`` is the next training mini-batch
(``meta_objective="next_batch"``; the weighted training loss Trainer descends, so no extra pass) or a batch of a
held-out / target-distribution ``meta_dataset`` (``"meta_set"``: personalisation toward that distribution).

Design choices, with their reasons:

- **Output layer only.** The inner products are taken over the output layer's parameters (weight and bias), where
  a sample's gradient is the outer product of the gradient of its loss w.r.t. the logits and the layer's input:
  both are captured during the normal forward/backward, so ``next_batch`` costs no extra forward or backward pass
  (one layer-sized matrix product per step), and ``meta_set`` one forward of a meta batch. The full-network inner
  product would need per-sample gradients of every layer (~3x a step) [hf_eff choice; spec option (ii)].
- **Judged by the steps that follow.** The per-sample gradients of step t's batch are kept while the next
  ``horizon`` optimizer steps run; each step's (all-reduced, accumulated, clipped) gradient is a reference, and the
  row's inner products with them are averaged. ``horizon=1`` is exactly the ``theta_t`` / ``theta_{t+1}`` pair of
  the rule; one batch holds few rows like the one being judged, so that single inner product is noisy, and the
  default 16 separated flipped from clean labels far better (measured: AUROC ~0.92 vs ~0.75 on digits) [hf_eff
  choice]. The update changes the rate of the row's next visit.
- **Scaled hypergradients.** The size of ``<grad L_ref, grad l_i>`` shrinks by orders of magnitude during training
  and depends on the optimiser; ``hypergradient_scaling="rms"`` divides it by a running RMS so ``rate_lr`` keeps
  its meaning [hf_eff choice]; ``"raw"`` is the literal rule above.
- **Per-class rates** take the mean of their members' steps (a class is in every batch; a sum would let class
  rates run away).

Cost per optimizer step (measured by ``hf-eff bench instance_lr``: about 1.1-1.2x a plain step on small
classifiers): ``next_batch``: one extra backward from the per-sample losses to the logits, plus ``horizon``
output-layer-sized products ``O(horizon * B * T * H * V)`` for the inner products; ``meta_set``: plus one forward of
``meta_batch_size`` examples. Memory: ``O(N)`` floats for the rates (every rank holds all of them), plus the output
layer's input and logit gradients of ``horizon`` steps' batches (``horizon * B * T * (H + V)`` floats: small for
classifiers, large for LMs with big vocabularies, where ``horizon=1`` is the frugal choice).

Distributed runs: every rank computes the hypergradients of its own rows against the all-reduced reference
gradient; the (row, step) pairs of all ranks are gathered and applied in rank order, so every rank holds the same
rates. DeepSpeed / FSDP (sharded output layer) are not supported.
"""

import inspect
import math
from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import nn

from hf_eff.callbacks.instance_lr.config import InstanceLRConfig
from hf_eff.callbacks.instance_lr.losses import per_sample_loss, resolve_task
from hf_eff.callbacks.instance_lr.per_sample import PerSampleCallback, log_bounds
from hf_eff.distributed import all_reduce_, broadcast_, get_rank, get_world_size, is_distributed


__all__ = ["InstanceLRCallback"]

RMS_MOMENTUM = 0.9


def gather_rows(tensor: torch.Tensor) -> torch.Tensor:
    """Every rank's ``tensor`` (first dimensions may differ), concatenated in rank order, on every rank.

    Built from sum all-reduces only: each rank writes its rows into its own slot of a zero buffer. That sends
    ``world_size`` times the rows, fine for the few hundred scores of a step.
    """
    if not is_distributed():
        return tensor
    world, rank = get_world_size(), get_rank()
    lengths = torch.zeros(world, dtype=torch.long)
    lengths[rank] = tensor.shape[0]
    all_reduce_(lengths)
    slots = torch.zeros((world, int(lengths.max()), *tensor.shape[1:]), dtype=tensor.dtype)
    slots[rank, : tensor.shape[0]] = tensor
    all_reduce_(slots)
    return torch.cat([slots[r, : int(lengths[r])] for r in range(world)])


def find_head(model: nn.Module, name: str | None) -> nn.Linear:
    """The output layer: ``name`` if given, else the output embeddings, else the last ``nn.Linear``."""
    if name is not None:
        try:
            head = model.get_submodule(name)
        except AttributeError as error:
            raise ValueError(f"head_module={name!r} is not a submodule of {type(model).__name__}") from error
    else:
        getter = getattr(model, "get_output_embeddings", None)
        head = getter() if getter is not None else None
        if not isinstance(head, nn.Linear):
            linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
            head = linears[-1] if linears else None
    if not isinstance(head, nn.Linear):
        raise ValueError(f"the output layer must be an nn.Linear (set head_module), got {type(head).__name__}")
    if not head.weight.requires_grad:
        raise ValueError("the output layer's weight must be trainable: its gradient is the hypergradient's reference")
    return head


def _forward_arguments(model: nn.Module) -> set[str] | None:
    """Names ``model.forward`` accepts, as Trainer's ``remove_unused_columns`` sees them (``None``: any)."""
    parameters = inspect.signature(model.forward).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        return None
    return set(parameters)


class InstanceLRCallback(PerSampleCallback):
    """Learn a dynamic learning rate per training instance (see the module docstring).

    Use with :class:`~hf_eff.callbacks.instance_lr.trainer.InstanceLRTrainer` (or its mixin) and a training set
    carrying a row index (:func:`~hf_eff.callbacks.instance_lr.add_sample_index`)::

        train = add_sample_index(train)
        callback = InstanceLRCallback(rate_lr=0.1, corrupt_column="is_corrupt")
        InstanceLRTrainer(model, args, train_dataset=train, callbacks=[callback]).train()
        train = callback.add_values_column(train)  # column "instance_lr": low = the model trusts it least

    Args:
        config: an :class:`InstanceLRConfig` (or pass its fields as keyword arguments).
        meta_dataset: with ``meta_objective="meta_set"``, the held-out or target-distribution examples (a
            ``datasets.Dataset``, torch map-style dataset or list of dicts; rows collate into model inputs plus
            ``label_column``).
        meta_collator: collate function of ``meta_dataset`` (default ``transformers.default_data_collator``).
    """

    config_class = InstanceLRConfig
    checkpoint_name = "instance_lr"
    log_prefix = "instance_lr"
    live_attributes = ("meta_dataset", "meta_collator")  # handed to a callback Trainer rebuilds on resume

    def __init__(
        self,
        config: InstanceLRConfig | None = None,
        *,
        meta_dataset: Any = None,
        meta_collator: Callable[[list], Mapping[str, Any]] | None = None,
        **config_kwargs: Any,
    ):
        super().__init__(config, **config_kwargs)
        if meta_dataset is not None and self.config.meta_objective != "meta_set":
            raise ValueError("meta_dataset is only used with meta_objective='meta_set'")
        self.meta_dataset, self.meta_collator = meta_dataset, meta_collator
        self.log_rates: torch.Tensor | None = None
        self.class_log_rates: torch.Tensor | None = None
        self._counters = torch.zeros(4, dtype=torch.float64)  # rms mean square, updates, meta epoch, meta position
        self._pending: list[
            dict[str, torch.Tensor]
        ] = []  # output-layer data of recent micro-batches awaiting references
        self._new_records: list[dict[str, torch.Tensor]] = []  # this step's micro-batches
        self._head: nn.Linear | None = None
        self._hook = None
        self._head_io: tuple[torch.Tensor, torch.Tensor] | None = None
        self._task: str | None = None

    # ---------------------------------------------------------------- state
    def _needs_classes(self) -> bool:
        return self.config.per_class

    def _create_state(self) -> None:
        start = math.log(self.config.init_rate)
        self.log_rates = torch.full((self.num_samples,), start)
        if self.config.per_class:
            self.class_log_rates = torch.full((self.num_classes,), start)

    def _load_state(self, tensors: dict[str, torch.Tensor]) -> None:
        self.log_rates = tensors["log_rates"].float().clone()
        self.class_log_rates = tensors["class_log_rates"].float().clone() if self.config.per_class else None
        if self.config.per_class and self.class_log_rates.numel() != self.num_classes:
            raise ValueError(
                f"the checkpoint has {self.class_log_rates.numel()} class rates, the model {self.num_classes}"
            )
        self._counters = tensors["counters"].double().clone()

    def _sync_state(self) -> None:
        for tensor in (self.log_rates, self.class_log_rates, self._counters):
            if tensor is not None:
                broadcast_(tensor)

    def checkpoint_tensors(self) -> dict[str, torch.Tensor]:
        tensors = {"log_rates": self.log_rates, "counters": self._counters}
        if self.class_log_rates is not None:
            tensors["class_log_rates"] = self.class_log_rates
        return tensors

    def rank_local_tensors(self) -> dict[str, torch.Tensor]:
        return {f"pending.{k}.{name}": t for k, record in enumerate(self._pending) for name, t in record.items()}

    def load_rank_local_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        records: dict[int, dict[str, torch.Tensor]] = {}
        for key, tensor in tensors.items():
            _, k, name = key.split(".")
            records.setdefault(int(k), {})[name] = tensor
        self._pending = [records[k] for k in sorted(records)]

    @property
    def rates(self) -> torch.Tensor:
        """The instance term ``exp(s_i)`` of every training row (without the class term)."""
        return self.log_rates.exp()

    def row_values(self) -> torch.Tensor:
        return self.rates

    def sample_log_rates(self, indices: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        log_rates = self.log_rates[indices]
        if self.class_log_rates is not None:
            log_rates = log_rates + self.class_log_rates[labels.cpu()]
        return log_rates

    # ---------------------------------------------------------------- setup
    def _setup(self, model, trainer, args) -> None:
        if self.config.meta_objective == "meta_set" and not self.meta_dataset:
            raise ValueError("meta_objective='meta_set' needs a non-empty meta_dataset")
        if self._hook is not None:
            self._hook.remove()
        self._head = find_head(model, self.config.head_module)
        self._hook = self._head.register_forward_hook(self._capture) if self.config.update_rates else None
        self._new_records = []

    def _capture(self, module, inputs, output) -> None:
        self._head_io = (inputs[0], output)

    def on_train_end(self, args, state, control, **kwargs):
        if self._hook is not None:
            self._hook.remove()
            self._hook = None
        self._head_io = None

    # ---------------------------------------------------------------- the training loss (called by the mixin)
    def training_loss(self, model: nn.Module, logits: torch.Tensor, labels: torch.Tensor, indices: torch.Tensor):
        indices = self.check_indices(indices)
        if self._task is None:
            self._task = resolve_task(self.config.task, logits, labels, model)
        losses = per_sample_loss(logits, labels, self._task)
        rates = self.sample_log_rates(indices, labels).exp().to(losses)
        if self.config.update_rates and torch.is_grad_enabled():
            self._record(indices, labels, losses)
        return (rates * losses).mean()

    def _record(self, indices: torch.Tensor, labels: torch.Tensor, losses: torch.Tensor) -> None:
        if self._head_io is None:
            raise RuntimeError("the output layer was not called in this forward pass; set head_module")
        head_input, head_output = self._head_io
        self._head_io = None
        (logit_grads,) = torch.autograd.grad(losses.sum(), head_output, retain_graph=True)
        record = {
            "indices": indices,
            "inputs": head_input.detach(),
            "logit_grads": logit_grads.detach(),
            "dots": torch.zeros(len(indices)),
            "age": torch.zeros((), dtype=torch.long),
        }
        if self.class_log_rates is not None:
            record["labels"] = labels.detach().cpu()
        self._new_records.append(record)

    # ---------------------------------------------------------------- the rate update
    def on_pre_optimizer_step(self, args, state, control, model=None, optimizer=None, **kwargs):
        if not self.config.update_rates:
            return
        pending = self._pending
        if pending:
            weight_grad, bias_grad = self._reference_gradient(model)
            for record in pending:
                along = record["inputs"].to(weight_grad) @ weight_grad.T  # the reference seen through each input
                if bias_grad is not None:
                    along = along + bias_grad
                record["dots"] += (record["logit_grads"].to(along) * along).flatten(1).sum(1).cpu().float()
                record["age"] += 1
        done = [r for r in pending if int(r["age"]) >= self.config.horizon]
        self._pending = [r for r in pending if int(r["age"]) < self.config.horizon] + self._new_records
        self._new_records = []
        if not done:
            return
        indices = torch.cat([r["indices"] for r in done])
        # -dL_ref/ds_i up to lr / |B|: alpha_i times the mean inner product with the next `horizon` references
        scores = torch.cat(
            [
                self.sample_log_rates(r["indices"], r.get("labels")).exp() * r["dots"] / self.config.horizon
                for r in done
            ]
        )
        labels = torch.cat([r["labels"] for r in done]) if self.class_log_rates is not None else None
        indices, scores = gather_rows(indices), gather_rows(scores)
        labels = gather_rows(labels) if labels is not None else None
        self._apply(indices, labels, scores, self._learning_rate(optimizer))

    def _reference_gradient(self, model) -> tuple[torch.Tensor, torch.Tensor | None]:
        if self.config.meta_objective == "meta_set":
            return self._meta_gradient(model)
        weight, bias = self._head.weight, self._head.bias
        if weight.grad is None:
            raise RuntimeError("the output layer has no gradient at the optimizer step")
        return weight.grad.detach().float(), None if bias is None or bias.grad is None else bias.grad.detach().float()

    def _learning_rate(self, optimizer) -> float:
        if optimizer is None:
            return 1.0
        for group in optimizer.param_groups:
            if any(p is self._head.weight for p in group["params"]):
                return float(group["lr"])
        return float(optimizer.param_groups[0]["lr"])

    def _apply(self, indices, labels, scores, learning_rate: float) -> None:
        config, counters = self.config, self._counters
        if config.hypergradient_scaling == "rms":
            counters[0] = RMS_MOMENTUM * counters[0] + (1 - RMS_MOMENTUM) * scores.double().pow(2).mean()
            counters[1] += 1
            mean_square = counters[0] / (1 - RMS_MOMENTUM ** counters[1])
            if mean_square <= 0:
                return
            steps = config.rate_lr * scores / math.sqrt(mean_square)
        else:
            counters[1] += 1
            steps = config.rate_lr * learning_rate * scores / max(len(scores), 1)
        low, high = log_bounds(config.min_rate, config.max_rate)
        self.log_rates.index_add_(0, indices, steps.float()).clamp_(low, high)
        if self.class_log_rates is not None:
            sums = torch.zeros_like(self.class_log_rates).index_add_(0, labels, steps.float())
            counts = torch.bincount(labels, minlength=self.num_classes).clamp(min=1)
            self.class_log_rates.add_(sums / counts).clamp_(low, high)

    # ---------------------------------------------------------------- the meta set
    def _meta_gradient(self, model) -> tuple[torch.Tensor, torch.Tensor | None]:
        batch = self._next_meta_batch(model)
        labels = batch.pop(self.config.label_column)
        was_training = model.training
        model.eval()  # no dropout noise, no batch-norm statistics from the meta set
        try:
            with torch.enable_grad():
                outputs = model(**batch)
                logits = outputs["logits"] if isinstance(outputs, Mapping) else outputs[0]
                if self._head_io is None:
                    raise RuntimeError("the output layer was not called on the meta batch; set head_module")
                head_input, head_output = self._head_io
                self._head_io = None
                losses = per_sample_loss(
                    logits, labels, self._task or resolve_task(self.config.task, logits, labels, model)
                )
                (logit_grads,) = torch.autograd.grad(losses.mean(), head_output)
        finally:
            model.train(was_training)
        width = head_input.shape[-1]
        weight_grad = (
            logit_grads.reshape(-1, logit_grads.shape[-1]).T.float() @ head_input.detach().reshape(-1, width).float()
        )
        bias_grad = (
            logit_grads.reshape(-1, logit_grads.shape[-1]).sum(0).float() if self._head.bias is not None else None
        )
        return weight_grad, bias_grad

    def _next_meta_batch(self, model) -> dict[str, Any]:
        from transformers import default_data_collator

        size, counters = len(self.meta_dataset), self._counters
        epoch, position = int(counters[2]), int(counters[3])
        order = torch.randperm(size, generator=torch.Generator().manual_seed(self.config.seed + epoch))
        take = [int(i) for i in order[position : position + self.config.meta_batch_size]]
        position += len(take)
        if position >= size:
            epoch, position = epoch + 1, 0
        counters[2], counters[3] = epoch, position
        rows = [self.meta_dataset[i] for i in take]
        accepted = _forward_arguments(model)
        keep = None if accepted is None else accepted | {self.config.label_column, "label", "label_ids"}
        drop = {self.config.index_column, self.config.corrupt_column}
        rows = [{k: v for k, v in row.items() if (keep is None or k in keep) and k not in drop} for row in rows]
        batch = dict((self.meta_collator or default_data_collator)(rows))
        if self.config.label_column not in batch:
            raise ValueError(f"meta_dataset rows must collate into a batch with {self.config.label_column!r}")
        device = next(model.parameters()).device
        return {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}
