"""The Trainer side of SWAP: what a callback cannot do, done inside one ``trainer.train()``.

:class:`SWAPCallback` decides when phases end; this mixin changes what a callback cannot reach:

- **the batch**: in phase 2 ``get_batch_samples`` draws the worker's own small batches (its own shuffle, seeded by
  ``(phase2_seed, worker)``, resumable by position) instead of the large-batch loader, which stays untouched;
- **gradient sync**: in phase 2 ``training_step`` runs the unwrapped model, bypassing the DDP wrapper, so there is
  no gradient all-reduce and no BatchNorm buffer broadcast; the workers never communicate;
- **the learning-rate schedule**: the phase-1 schedule spans the phase-1 budget of ``TrainingArguments``; each
  worker gets a fresh phase-2 schedule (``phase2_lr_scheduler_type`` from ``phase2_learning_rate``);
- **the run length**: ``max_steps`` is extended by the phase-2 steps (times W in a single process);
- **checkpoints**: every worker writes its replica and optimizer state (safetensors) next to the Trainer's files,
  and a resume puts each back *after* DDP has broadcast rank 0's weights;
- **phase 3**: after the loop, average (one all-reduce), recompute BatchNorm statistics with ``model(**batch)``
  passes over the training data, evaluate, and save a ``from_pretrained``-loadable folder with a model card;
- **logging** (through :class:`~hf_eff.callbacks.base.HfEffTrainerMixin`): SWAP's metrics join each log entry
  before the ``report_to`` integrations see it.

Put the mixin first: ``class MyTrainer(SWAPTrainerMixin, MyOtherMixin, Trainer)``; every override calls
``super()``.

Limits, by design or not done yet: a map-style training set is needed (workers index it); one process per worker
(no multi-device workers); every param group gets ``phase2_learning_rate``; in phase 2 the ``epoch`` the Trainer
logs still counts epochs of the large-batch loader, and with gradient accumulation the last step of each such
epoch accumulates fewer micro-batches, exactly as Trainer does in phase 1; a resumed run restarts the phase-1
accuracy window; the phase-2 loss has no ``num_items_in_batch`` (each worker's own batch mean).
"""

import copy
import logging
import math
import os
from typing import Any

import torch
from torch.utils.data import DataLoader
from transformers import Trainer, set_seed
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

from hf_eff.callbacks._utils import unwrap_optimizer
from hf_eff.callbacks.base import HfEffTrainerMixin
from hf_eff.callbacks.swap.averaging import (
    average_across_processes,
    floating_state,
    recompute_batchnorm,
    squared_distance,
)
from hf_eff.callbacks.swap.callback import (
    PHASE_AVERAGE,
    PHASE_LARGE_BATCH,
    PHASE_WORKERS,
    SWAPCallback,
    phase2_steps_from_epochs,
)
from hf_eff.callbacks.swap.checkpoint import (
    load_model_tensors,
    load_optimizer_state,
    load_tensors,
    model_tensors,
    save_optimizer_state,
    save_tensors,
    swap_path,
)
from hf_eff.callbacks.swap.data import WorkerBatchSampler, derived_seed
from hf_eff.distributed import all_reduce_, broadcast_, get_world_size


logger = logging.getLogger(__name__)

__all__ = ["SWAPTrainer", "SWAPTrainerMixin"]

_RNG_STREAM = 0x5EED  # separates the workers' generator seeds from their data-order seeds
_SQ_NORMS_KEY = "__sum_of_squared_norms__"


class SWAPTrainerMixin(HfEffTrainerMixin):
    """Trainer mixin running SWAP's phases; needs exactly one :class:`SWAPCallback` in ``callbacks``. Built on
    :class:`~hf_eff.callbacks.base.HfEffTrainerMixin` (SWAP's metrics reach every ``report_to`` integration)."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        found = [cb for cb in self.callback_handler.callbacks if isinstance(cb, SWAPCallback)]
        if len(found) != 1:
            raise ValueError(f"{type(self).__name__} needs exactly one SWAPCallback in callbacks, got {len(found)}")
        self._swap = found[0]
        self._swap_phase1_budget: int | None = None
        self._swap_resume_dir: str | None = None
        self._swap_start_state: dict[str, torch.Tensor] | None = None  # phase-1 weights, every worker's start
        self._swap_start_optimizer: dict[str, Any] | None = None  # phase-1 optimizer state ("carry")
        self._swap_sum: dict[str, torch.Tensor] | None = None  # sequential runs: finished workers' tensor sum
        self._swap_sq_norms = 0.0  # sequential runs: sum of finished workers' squared parameter norms
        self._swap_batches = None

    @property
    def swap_callback(self) -> SWAPCallback:
        return self._swap

    # ------------------------------------------------------------------------------------------------------------
    # run length and schedules
    def set_initial_training_values(self, args, dataloader):
        values = list(super().set_initial_training_values(args, dataloader))
        updates_per_epoch, max_steps = values[1], values[6]
        swap = self._swap
        swap._check_setup(args)
        if not hasattr(self.train_dataset, "__len__") or isinstance(
            self.train_dataset, torch.utils.data.IterableDataset
        ):
            raise ValueError("SWAP needs a map-style train_dataset: phase-2 workers draw their own shuffles of it")
        self._swap_phase1_budget = max_steps
        config = swap.config
        steps = config.phase2_steps or phase2_steps_from_epochs(
            config, len(self.train_dataset), swap.num_workers, args.gradient_accumulation_steps
        )
        swap.phase2_steps_per_worker = swap.phase2_steps_per_worker or steps
        max_steps += swap.phase2_steps_per_worker * (swap.num_workers if swap.sequential else 1)
        values[0] = math.ceil(max_steps / updates_per_epoch)  # epochs of the large-batch loader to cover the run
        values[6] = max_steps
        return tuple(values)

    def create_scheduler(self, num_training_steps: int, optimizer=None):
        if self.lr_scheduler is None and self._swap.phase == PHASE_WORKERS:  # resuming inside phase 2
            self.lr_scheduler = self._swap_phase2_scheduler(optimizer or self.optimizer)
            self._created_lr_scheduler = True
            return self.lr_scheduler
        return super().create_scheduler(self._swap_phase1_budget or num_training_steps, optimizer)

    def _swap_phase2_scheduler(self, optimizer):
        from transformers import get_scheduler

        config = self._swap.config
        for group in optimizer.param_groups:
            group["lr"] = group["initial_lr"] = config.phase2_learning_rate
        return get_scheduler(
            config.phase2_lr_scheduler_type,
            optimizer=optimizer,
            num_warmup_steps=config.phase2_warmup_steps,
            num_training_steps=self._swap.phase2_steps_per_worker,
        )

    # ------------------------------------------------------------------------------------------------------------
    # the training loop
    def get_batch_samples(self, epoch_iterator, num_batches: int, device: torch.device):
        swap = self._swap
        if swap.phase == PHASE_LARGE_BATCH:
            return super().get_batch_samples(epoch_iterator, num_batches, device)
        if swap.phase == PHASE_AVERAGE:
            return [], None
        batches = [next(self._swap_batches) for _ in range(num_batches)]
        swap.worker_batches += num_batches
        # None: the loss is this worker's own batch mean (no token count averaged across the other workers)
        return batches, None

    def training_step(self, model, inputs, num_items_in_batch=None):
        if self._swap.phase == PHASE_WORKERS:
            model = self.model  # bypass the DDP wrapper: no gradient all-reduce, no buffer broadcast
        return super().training_step(model, inputs, num_items_in_batch)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        swap = self._swap
        if not (swap.measures_accuracy and model.training):
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        labels = inputs.get(self.label_names[0] if self.label_names else "labels")
        loss, outputs = super().compute_loss(model, inputs, True, num_items_in_batch)
        if isinstance(outputs, dict):
            logits = outputs.get("logits")
        else:
            logits = outputs[1] if len(outputs) > 1 else None
        swap.record_predictions(logits, labels)
        return (loss, outputs) if return_outputs else loss

    # ------------------------------------------------------------------------------------------------------------
    # phase transitions (called by SWAPCallback)
    def _swap_begin_phase2(self) -> None:
        if not self._swap.sequential:  # every worker starts from exactly the same state, buffers included
            for tensor in self.model.state_dict().values():
                broadcast_(tensor, src=0)
        self._swap_start_state = model_tensors(self.model)
        if self._swap.config.phase2_optimizer_state == "carry":
            self._swap_start_optimizer = copy.deepcopy(unwrap_optimizer(self.optimizer).state_dict())
        self._swap_start_worker(fresh=True)

    def _swap_start_worker(self, fresh: bool) -> None:
        swap = self._swap
        if fresh:
            optimizer = unwrap_optimizer(self.optimizer)
            if swap.sequential and swap.worker > 0:
                load_model_tensors(self.model, self._swap_start_state)
                if self._swap_start_optimizer is not None:
                    optimizer.load_state_dict(copy.deepcopy(self._swap_start_optimizer))
            if swap.config.phase2_optimizer_state == "reset":
                optimizer.state.clear()
            set_seed(derived_seed(self._swap_seed, swap.worker, _RNG_STREAM))
            self.lr_scheduler = self._swap_phase2_scheduler(self.optimizer)
            self.callback_handler.lr_scheduler = self.lr_scheduler
            self.model.zero_grad(set_to_none=True)
        dataset, collator = self._swap_training_data()
        sampler = WorkerBatchSampler(
            len(dataset),
            swap.config.phase2_batch_size,
            seed=self._swap_seed,
            worker=swap.worker,
            num_workers=swap.num_workers,
            order=swap.config.phase2_data_order,
            start=swap.worker_batches,
        )
        loader = DataLoader(
            dataset,
            batch_sampler=sampler,
            collate_fn=collator,
            num_workers=self.args.dataloader_num_workers,
            pin_memory=self.args.dataloader_pin_memory,
        )
        self._swap_batches = iter(loader)

    def _swap_finish_worker(self) -> float:
        """Close the current worker; return its distance from the phase-1 weights."""
        distance = math.sqrt(squared_distance(self.model, self._swap_start_state))
        if self._swap.sequential:
            with torch.no_grad():
                state = floating_state(self.model)
                if self._swap_sum is None:
                    self._swap_sum = {name: tensor.detach().clone() for name, tensor in state.items()}
                else:
                    for name, tensor in state.items():
                        self._swap_sum[name].add_(tensor)
            self._swap_sq_norms += _squared_norm(self.model)
        return distance

    @property
    def _swap_seed(self) -> int:
        seed = self._swap.config.phase2_seed
        return self.args.seed if seed is None else seed

    def _swap_training_data(self):
        """The training set and collator exactly as Trainer prepares them (unused columns removed)."""
        import datasets

        dataset, collator = self.train_dataset, self.data_collator
        if isinstance(dataset, datasets.Dataset):
            dataset = self._remove_unused_columns(dataset, description="training")
        else:
            collator = self._get_collator_with_removed_columns(collator, description="training")
        return dataset, collator

    # ------------------------------------------------------------------------------------------------------------
    # phase 3
    def train(self, resume_from_checkpoint=None, trial=None, ignore_keys_for_eval=None, **kwargs):
        output = super().train(
            resume_from_checkpoint=resume_from_checkpoint,
            trial=trial,
            ignore_keys_for_eval=ignore_keys_for_eval,
            **kwargs,
        )
        swap = self._swap
        if swap.phase != PHASE_AVERAGE:
            logger.warning(
                "SWAP: training stopped in phase %d before every worker finished phase 2 (another callback or the "
                "step budget ended it); the model is NOT averaged",
                swap.phase,
            )
            return output
        output.metrics.update(self.swap_average())
        return output

    def swap_average(self) -> dict[str, float]:
        """Phase 3: average the workers, recompute BatchNorm statistics, evaluate and save. Returns the metrics."""
        swap, config = self._swap, self._swap.config
        if swap.averaged:
            raise ValueError("this SWAP run is already averaged")
        workers = swap.num_workers
        with torch.no_grad():
            if swap.sequential:
                sq_norms = self._swap_sq_norms
                for name, tensor in floating_state(self.model).items():
                    tensor.copy_(self._swap_sum[name] / workers)
                self._swap_sum = None
            else:
                sq_norms_tensor = torch.tensor([_squared_norm(self.model)], dtype=torch.float64)
                average_across_processes(self.model)
                sq_norms = float(all_reduce_(sq_norms_tensor, "sum")[0])
        # mean over workers of |theta_w - mean|^2 = mean of |theta_w|^2 - |mean|^2
        spread = math.sqrt(max(sq_norms / workers - _squared_norm(self.model), 0.0))
        bn_batches = self._swap_recompute_batchnorm()
        swap.averaged = True
        metrics = {
            "swap/phase": float(PHASE_AVERAGE),
            "swap/num_workers": float(workers),
            "swap/worker_distance_to_mean": spread,
            "swap/bn_batches": float(bn_batches),
        }
        swap.history.append({"event": "averaged", "global_step": self.state.global_step, **metrics})
        self.log(dict(metrics))
        if config.evaluate_averaged_model and self.eval_dataset is not None:
            metrics.update(self.evaluate(metric_key_prefix="eval_swap"))
        if config.save_averaged_model:
            self._swap_save(metrics)
        return metrics

    def _swap_recompute_batchnorm(self) -> int:
        config = self._swap.config
        dataset, collator = self._swap_training_data()
        loader = DataLoader(
            dataset,
            batch_size=config.bn_batch_size or self.args.per_device_train_batch_size,
            shuffle=False,
            collate_fn=collator,
            num_workers=self.args.dataloader_num_workers,
        )
        label_names = set(self.label_names or ["labels"])

        def batches():
            for index, batch in enumerate(loader):
                if config.bn_max_batches is not None and index >= config.bn_max_batches:
                    return
                yield {k: v for k, v in self._prepare_inputs(batch).items() if k not in label_names}

        used = recompute_batchnorm(self.model, batches())
        if not self._swap.sequential:  # same statistics on every rank, bit for bit
            with torch.no_grad():
                for _name, buffer in self.model.named_buffers():
                    broadcast_(buffer, src=0)
        return used

    def _swap_save(self, metrics: dict[str, float]) -> None:
        from hf_eff.modelcard import render_model_card

        output_dir = self._swap.config.averaged_model_dir or os.path.join(self.args.output_dir, "swap_averaged")
        if self.args.should_save:
            model = self.model
            if not hasattr(model, "save_pretrained"):
                raise TypeError(
                    f"save_averaged_model=True needs a transformers PreTrainedModel (got {type(model).__name__}); "
                    "set save_averaged_model=False and save the averaged model yourself"
                )
            model.save_pretrained(output_dir)
            if self.processing_class is not None:
                self.processing_class.save_pretrained(output_dir)
            card = render_model_card(
                "swap",
                {"tags": ["swap", "stochastic-weight-averaging"], "metrics": _quality_metrics(metrics)},
                model_class=type(model).__name__,
                swap=self._swap.config.to_json_dict(),
                progress=self._swap.progress,
                per_device_train_batch_size=self.args.per_device_train_batch_size,
                world_size=get_world_size(),
                learning_rate=self.args.learning_rate,
                metrics=metrics,
            )
            card.save(os.path.join(output_dir, "README.md"))
        self.accelerator.wait_for_everyone()

    # ------------------------------------------------------------------------------------------------------------
    # checkpoints and resume
    def _save_checkpoint(self, model, trial) -> None:
        super()._save_checkpoint(model, trial)
        swap = self._swap
        if swap.phase == PHASE_LARGE_BATCH or swap.averaged:
            return
        checkpoint = os.path.join(
            self._get_output_dir(trial=trial), f"{PREFIX_CHECKPOINT_DIR}-{self.state.global_step}"
        )
        save_tensors(model_tensors(self.model), swap_path(checkpoint, f"worker-{swap.worker}"))
        if not self.args.save_only_model:
            optimizer = unwrap_optimizer(self.optimizer)
            save_optimizer_state(optimizer.state_dict(), swap_path(checkpoint, f"worker-{swap.worker}-optimizer"))
        if self.args.should_save:
            save_tensors(self._swap_start_state, swap_path(checkpoint, "phase1"))
            if self._swap_start_optimizer is not None:
                save_optimizer_state(self._swap_start_optimizer, swap_path(checkpoint, "phase1-optimizer"))
            if self._swap_sum is not None:
                sq_norms = torch.tensor(self._swap_sq_norms, dtype=torch.float64)
                save_tensors({**self._swap_sum, _SQ_NORMS_KEY: sq_norms}, swap_path(checkpoint, "worker-sum"))
        self.accelerator.wait_for_everyone()

    def _load_from_checkpoint(self, resume_from_checkpoint, model=None):
        self._swap_resume_dir = resume_from_checkpoint
        return super()._load_from_checkpoint(resume_from_checkpoint, model)

    def _load_callback_state(self) -> None:
        # Trainer may rebuild callbacks from their JSON args (restore_callback_states_from_checkpoint=True); SWAP
        # keeps the instance it was given (with its phase1_stop_fn and the user's reference) and restores its
        # progress whatever that flag says: resuming phase 2 as phase 1 would silently break the run
        super()._load_callback_state()
        for callback in list(self.callback_handler.callbacks):
            if isinstance(callback, SWAPCallback) and callback is not self._swap:
                self.callback_handler.remove_callback(callback)
        if self._swap not in self.callback_handler.callbacks:
            self.callback_handler.add_callback(self._swap)
        saved = self.state.stateful_callbacks.get(type(self._swap).__name__)
        if isinstance(saved, list):
            saved = saved[0] if saved else None
        if saved:
            self._swap.progress = saved["attributes"]["progress"]

    def _swap_train_begin(self) -> None:
        """Called from ``SWAPCallback.on_train_begin``: after DDP wrapping and the Trainer's checkpoint loading."""
        swap = self._swap
        if swap.averaged:
            raise ValueError("this trainer's SWAP run has finished (the model is averaged); build a new one to train")
        if swap.phase == PHASE_LARGE_BATCH:
            return
        checkpoint = self._swap_resume_dir
        if checkpoint is None:
            raise ValueError(f"SWAP is in phase {swap.phase} but training was not resumed from a checkpoint")
        device = self.args.device
        load_model_tensors(self.model, load_tensors(swap_path(checkpoint, f"worker-{swap.worker}"), device))
        # every file the checkpoint must hold is read, so that a lost or damaged one fails naming itself
        if not self.args.save_only_model:
            optimizer_state = load_optimizer_state(swap_path(checkpoint, f"worker-{swap.worker}-optimizer"))
            unwrap_optimizer(self.optimizer).load_state_dict(optimizer_state)
        self._swap_start_state = load_tensors(swap_path(checkpoint, "phase1"), device)
        if swap.config.phase2_optimizer_state == "carry":
            self._swap_start_optimizer = load_optimizer_state(swap_path(checkpoint, "phase1-optimizer"))
        if swap.sequential and (swap.worker > 0 or swap.phase == PHASE_AVERAGE):
            tensors = load_tensors(swap_path(checkpoint, "worker-sum"), device)
            self._swap_sq_norms = float(tensors.pop(_SQ_NORMS_KEY))
            self._swap_sum = tensors
        if swap.phase == PHASE_WORKERS:
            self._swap_start_worker(fresh=False)


class SWAPTrainer(SWAPTrainerMixin, Trainer):
    """``Trainer`` that runs SWAP; pass ``callbacks=[SWAPCallback(...)]``."""


def _quality_metrics(metrics: dict[str, float]) -> list[str]:
    """The evaluation metrics worth a card's metadata (not runtimes or throughputs)."""
    speed = ("_runtime", "_per_second")
    return sorted(
        k.removeprefix("eval_swap_") for k in metrics if k.startswith("eval_swap_") and not k.endswith(speed)
    )


def _squared_norm(model: torch.nn.Module) -> float:
    return float(sum(parameter.detach().double().pow(2).sum().cpu() for parameter in model.parameters()))
