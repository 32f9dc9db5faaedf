"""The Trainer mixin that lets a per-instance callback see what a callback never sees: each sample's row index
and its own loss.

It keeps the index column through ``remove_unused_columns`` (and any collator), pops it before the model's
``forward`` (training and evaluation), computes the per-sample loss and lets the callback weight it, and saves the
callback's tensors with every checkpoint as safetensors (``<checkpoint>/instance_lr.safetensors``, plus one file
per rank for rank-local state), reading them back on ``resume_from_checkpoint``.

Loss scale: the returned loss is the mean over the micro-batch's samples, so Trainer divides it by the number of
gradient-accumulation steps (``loss_is_scaled_for_ga = False``) and DDP averages over ranks: the gradient is that of
the mean over the whole accumulated, global batch, as with a plain ``Trainer`` on a classifier.
"""

import json
import logging
import os
from collections.abc import Mapping

import torch
from transformers import Trainer

from hf_eff.callbacks._state_file import read_safetensors, save_safetensors_atomically
from hf_eff.callbacks.base import TRAINER_STATE_NAME, HfEffTrainerMixin
from hf_eff.callbacks.instance_lr.collator import IndexPreservingCollator
from hf_eff.callbacks.instance_lr.per_sample import PerSampleCallback


logger = logging.getLogger(__name__)

__all__ = ["InstanceLRTrainer", "InstanceLRTrainerMixin"]


class InstanceLRTrainerMixin(HfEffTrainerMixin):
    """Put first in the bases: ``class MyTrainer(InstanceLRTrainerMixin, Trainer)``. Needs exactly one
    :class:`InstanceLRCallback` or :class:`DataParametersCallback` in ``callbacks``."""

    loss_is_scaled_for_ga = False

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        column = self.per_sample_callback.config.index_column
        if not isinstance(self.data_collator, IndexPreservingCollator):
            self.data_collator = IndexPreservingCollator(self.data_collator, column)
        self._per_sample_restored: dict[str, dict[str, dict[str, torch.Tensor]]] = {}

    @property
    def per_sample_callback(self) -> PerSampleCallback:
        found = self.hf_eff_callbacks(PerSampleCallback)
        if len(found) != 1:
            raise ValueError(
                f"{type(self).__name__} needs exactly one InstanceLRCallback or DataParametersCallback in callbacks, "
                f"found {len(found)}"
            )
        return found[0]

    def _set_signature_columns_if_needed(self) -> None:
        super()._set_signature_columns_if_needed()
        column = self.per_sample_callback.config.index_column
        if column not in self._signature_columns:
            self._signature_columns.append(column)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        callback = self.per_sample_callback
        column, label_column = callback.config.index_column, callback.config.label_column
        if not model.training:  # evaluation: the stock loss, without the index
            inputs = {k: v for k, v in inputs.items() if k != column}
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        inputs = dict(inputs)
        if column not in inputs:
            raise ValueError(
                f"the training batch has no {column!r}: add the row index to the training set with "
                "hf_eff.callbacks.instance_lr.add_sample_index(train_dataset), and keep it in your collator's output"
            )
        if label_column not in inputs:
            raise ValueError(f"the training batch has no {label_column!r}: per-sample losses need the labels")
        indices, labels = inputs.pop(column), inputs.pop(label_column)
        outputs = model(**inputs)
        logits = outputs["logits"] if isinstance(outputs, Mapping) else outputs[0]
        loss = callback.training_loss(self.accelerator.unwrap_model(model), logits, labels, indices)
        return (loss, outputs) if return_outputs else loss

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        callback = self.per_sample_callback
        if callback.num_samples is not None:  # the rates' statistics join every log entry, integrations included
            callback.queue_logs(callback.summary())
        super().log(logs, start_time)

    def prediction_step(self, model, inputs, prediction_loss_only, ignore_keys=None):
        column = self.per_sample_callback.config.index_column
        inputs = {k: v for k, v in inputs.items() if k != column}
        return super().prediction_step(model, inputs, prediction_loss_only, ignore_keys=ignore_keys)

    # ---------------------------------------------------------------- checkpoints
    def _save_checkpoint(self, model, trial) -> None:
        super()._save_checkpoint(model, trial)
        callback = self.per_sample_callback
        if callback.num_samples is None:
            return
        folder = os.path.join(self._get_output_dir(trial=trial), f"checkpoint-{self.state.global_step}")
        os.makedirs(folder, exist_ok=True)
        name = callback.checkpoint_name
        if self.args.should_save:
            tensors = {k: v.contiguous() for k, v in callback.checkpoint_tensors().items()}
            tensors["num_samples"] = torch.tensor([callback.num_samples])
            save_safetensors_atomically(tensors, os.path.join(folder, f"{name}.safetensors"), {"format": "pt"})
        local = callback.rank_local_tensors()
        if local:
            local = {k: v.detach().cpu().contiguous() for k, v in local.items()}
            path = os.path.join(folder, f"{name}_rank{self.args.process_index}.safetensors")
            save_safetensors_atomically(local, path, {"format": "pt", "world_size": str(self.args.world_size)})

    def _load_from_checkpoint(self, resume_from_checkpoint, model=None) -> None:
        super()._load_from_checkpoint(resume_from_checkpoint, model)
        if model is not None:  # loading weights only (e.g. the best model), not resuming
            return
        callback = self.per_sample_callback
        name = callback.checkpoint_name
        path = os.path.join(resume_from_checkpoint, f"{name}.safetensors")
        what = f"{type(callback).__name__} values"
        if not os.path.isfile(path):
            if _ran_with(resume_from_checkpoint, type(callback).__name__):  # written, then lost: never start afresh
                raise FileNotFoundError(
                    f"{path} not found, but the checkpoint was written by a run with {type(callback).__name__}: "
                    "its values are lost; restore the file or resume from an earlier checkpoint"
                )
            logger.warning(f"{path} not found: {type(callback).__name__} starts from fresh values")
            return
        local = os.path.join(resume_from_checkpoint, f"{name}_rank{self.args.process_index}.safetensors")
        # handed to whichever callback instance starts training (Trainer may rebuild it from its JSON state)
        self._per_sample_restored[name] = {
            "shared": read_safetensors(path, what)[0],
            "local": read_safetensors(local, f"{what} of this rank")[0] if os.path.isfile(local) else {},
        }


def _ran_with(checkpoint: str, callback_name: str) -> bool:
    """Whether the checkpoint's trainer_state.json lists ``callback_name`` among its stateful callbacks (a run
    that adds the method to a checkpoint of a plain run legitimately has no values file)."""
    path = os.path.join(checkpoint, TRAINER_STATE_NAME)
    if not os.path.isfile(path):
        return False
    with open(path, encoding="utf-8") as handle:
        return callback_name in json.load(handle).get("stateful_callbacks", {})


class InstanceLRTrainer(InstanceLRTrainerMixin, Trainer):
    """``Trainer`` that trains with per-instance learning rates (or Data Parameters): pass the callback in
    ``callbacks`` and a training set with a row index column."""
