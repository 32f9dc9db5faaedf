"""``SWAPConfig``: every SWAP setting that is not already a ``TrainingArguments`` field, with its checks.

The split follows what a user already knows: ``TrainingArguments`` describe phase 1 exactly as they describe any
run (per-device batch size, learning rate and schedule, ``max_steps`` / ``num_train_epochs`` as the phase-1
budget, gradient accumulation, seed); this config adds the phase-1 stopping criteria, phase 2 (the per-worker
refinement: batch, length, learning-rate schedule, data order, optimizer state) and phase 3 (BatchNorm
recompute, saving). Its JSON-serialisable fields are the ``args`` Trainer rebuilds the callback from.
"""

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from typing import Any


PHASE2_DATA_ORDERS = ("full", "shard")
PHASE2_OPTIMIZER_STATES = ("reset", "carry")
# schedules of transformers.get_scheduler that need nothing but warm-up and length
PHASE2_SCHEDULES = ("cosine", "linear", "constant", "constant_with_warmup", "cosine_with_restarts", "polynomial")


@dataclass(kw_only=True)
class SWAPConfig:
    """Settings of SWAP (Gupta, Akle Serrano & DeCoste, ICLR 2020) beyond the phase-1 ``TrainingArguments``.

    Phase 1 ends at the first of: ``stop_accuracy`` reached, ``phase1_stop_fn`` returning true, or the phase-1
    budget of ``TrainingArguments`` (``max_steps`` / ``num_train_epochs``) used up.

    Args:
        phase2_learning_rate: peak learning rate of every phase-2 worker (the paper's workers restart with a lower
            peak than phase 1 and decay to about zero; the exact values are not verified).
        phase2_batch_size: per-worker micro-batch size of phase 2 (the "small" batch).
        phase2_steps: optimizer steps of each worker in phase 2. Give this or ``phase2_epochs``.
        phase2_epochs: phase-2 length in passes over each worker's data (converted to steps at the switch).
        num_workers: W. ``None``: one worker per process (``accelerate launch`` / ``torchrun``); in a single
            process it must be given (>= 2) and the workers run one after another from the same phase-1 state
            (sequential SWAP: the same averaged model as W processes, W times slower). In a multi-process run it
            must equal the world size (several processes per worker are not supported).
        stop_accuracy: tau, the training accuracy (fraction in (0, 1]) that ends phase 1 [the paper's criterion;
            that it is *training* accuracy is a reading]. Measured for free on the phase-1 batches as they are
            trained (``argmax(logits) == labels``, ``-100`` labels ignored), summed over all processes, over the
            window since the previous check. Needs a model returning ``logits`` and batches with labels.
        accuracy_check_steps: check the accuracy every this many optimizer steps; ``None``: at each epoch end.
        phase1_stop_fn: ``fn(state: TrainerState) -> bool`` called after every phase-1 step; true ends phase 1.
            Ranks are combined with "any", so every process switches at the same step. Not saved in checkpoints:
            give the Trainer the same callback when resuming.
        phase2_lr_scheduler_type: shape of the phase-2 schedule, restarted for every worker (one of
            ``PHASE2_SCHEDULES``); default ``"cosine"``, decaying to zero at the end of phase 2.
        phase2_warmup_steps: linear warm-up steps at the start of each worker's schedule.
        phase2_data_order: ``"full"``: every worker shuffles the whole training set with its own seed (as the DDP
            peer implementation does); ``"shard"``: worker w only sees the examples ``i % W == w``.
        phase2_optimizer_state: ``"reset"`` starts each worker's optimizer from an empty state (as the peer
            implementation re-creates it); ``"carry"`` continues from the phase-1 state (momentum, Adam moments).
            Which one the paper used is not verified.
        phase2_seed: seed of the workers' data orders and random generators (worker w uses a stream derived from
            ``(phase2_seed, w)``, the same in single-process and multi-process runs); ``None``: ``args.seed``.
        bn_batch_size: batch size of the BatchNorm recompute pass; ``None``: the phase-1 per-device batch size.
        bn_max_batches: at most this many batches in the recompute pass; ``None``: one full pass.
        evaluate_averaged_model: run ``Trainer.evaluate`` on the averaged model (when an eval set is given).
        save_averaged_model: save the averaged model (``save_pretrained`` + model card) from the main process.
        averaged_model_dir: where; ``None``: ``<output_dir>/swap_averaged``.
    """

    phase2_learning_rate: float
    phase2_batch_size: int
    phase2_steps: int | None = None
    phase2_epochs: float | None = None
    num_workers: int | None = None
    stop_accuracy: float | None = None
    accuracy_check_steps: int | None = None
    phase1_stop_fn: Callable[[Any], bool] | None = field(default=None, repr=False)
    phase2_lr_scheduler_type: str = "cosine"
    phase2_warmup_steps: int = 0
    phase2_data_order: str = "full"
    phase2_optimizer_state: str = "reset"
    phase2_seed: int | None = None
    bn_batch_size: int | None = None
    bn_max_batches: int | None = None
    evaluate_averaged_model: bool = True
    save_averaged_model: bool = True
    averaged_model_dir: str | None = None

    def __post_init__(self):
        _check_number("phase2_learning_rate", self.phase2_learning_rate, minimum=0.0, strict=True)
        _check_int("phase2_batch_size", self.phase2_batch_size, minimum=1)
        if (self.phase2_steps is None) == (self.phase2_epochs is None):
            raise ValueError(
                "give exactly one of phase2_steps and phase2_epochs (the length of each worker's phase 2), got "
                f"phase2_steps={self.phase2_steps!r}, phase2_epochs={self.phase2_epochs!r}"
            )
        _check_int("phase2_steps", self.phase2_steps, minimum=1, optional=True)
        _check_number("phase2_epochs", self.phase2_epochs, minimum=0.0, strict=True, optional=True)
        _check_int("num_workers", self.num_workers, minimum=1, optional=True)
        if self.stop_accuracy is not None:
            _check_number("stop_accuracy", self.stop_accuracy, minimum=0.0, strict=True)
            if self.stop_accuracy > 1:
                raise ValueError(f"stop_accuracy is a fraction in (0, 1], got {self.stop_accuracy!r}")
        _check_int("accuracy_check_steps", self.accuracy_check_steps, minimum=1, optional=True)
        if self.phase1_stop_fn is not None and not callable(self.phase1_stop_fn):
            raise TypeError(f"phase1_stop_fn must be callable, got {type(self.phase1_stop_fn).__name__}")
        _check_choice("phase2_lr_scheduler_type", self.phase2_lr_scheduler_type, PHASE2_SCHEDULES)
        _check_int("phase2_warmup_steps", self.phase2_warmup_steps, minimum=0)
        _check_choice("phase2_data_order", self.phase2_data_order, PHASE2_DATA_ORDERS)
        _check_choice("phase2_optimizer_state", self.phase2_optimizer_state, PHASE2_OPTIMIZER_STATES)
        _check_int("phase2_seed", self.phase2_seed, minimum=0, optional=True)
        _check_int("bn_batch_size", self.bn_batch_size, minimum=1, optional=True)
        _check_int("bn_max_batches", self.bn_max_batches, minimum=1, optional=True)
        for name in ("evaluate_averaged_model", "save_averaged_model"):
            if not isinstance(getattr(self, name), bool):
                raise TypeError(f"{name} must be a bool, got {getattr(self, name)!r}")
        if self.averaged_model_dir is not None and not isinstance(self.averaged_model_dir, str):
            raise TypeError(f"averaged_model_dir must be a str or None, got {type(self.averaged_model_dir).__name__}")

    def to_json_dict(self) -> dict[str, Any]:
        """The JSON-serialisable fields (everything but ``phase1_stop_fn``), as saved in checkpoints."""
        return {k: v for k, v in asdict(self).items() if k != "phase1_stop_fn"}

    @classmethod
    def field_names(cls) -> set[str]:
        return {f.name for f in fields(cls)}


def _check_int(name: str, value: Any, *, minimum: int, optional: bool = False) -> None:
    if value is None and optional:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}{' or None' if optional else ''}, got {value!r}")


def _check_number(name: str, value: Any, *, minimum: float, strict: bool, optional: bool = False) -> None:
    if value is None and optional:
        return
    valid = (
        not isinstance(value, bool)
        and isinstance(value, (int, float))
        and math.isfinite(value)
        and (value > minimum if strict else value >= minimum)
    )
    if not valid:
        bound = f"> {minimum}" if strict else f">= {minimum}"
        raise ValueError(f"{name} must be a finite number {bound}{' or None' if optional else ''}, got {value!r}")


def _check_choice(name: str, value: Any, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"{name} must be one of {choices}, got {value!r}")
