"""SWAP (Stochastic Weight Averaging in Parallel) as a ``TrainerCallback``: the phase machine and its decisions.

Gupta, Akle Serrano & DeCoste, "Stochastic Weight Averaging in Parallel: Large-Batch Training that Generalizes
Well" (ICLR 2020, arXiv 2001.02312). One ``trainer.train()`` runs the three phases:

1. synchronous data-parallel training with the large batch of ``TrainingArguments`` until the training accuracy
   reaches ``stop_accuracy``, ``phase1_stop_fn`` says so, or the phase-1 budget (``max_steps`` /
   ``num_train_epochs``) is used up, whichever comes first;
2. every worker (process) continues alone from the phase-1 weights with a small batch, its own data order and
   its own learning-rate schedule, without any communication;
3. the workers' weights are averaged (one all-reduce), BatchNorm statistics are recomputed on training data, and
   the averaged model is evaluated and saved.

This callback owns the state (phase, worker, progress, history; saved in every checkpoint) and decides when a phase
ends; it logs the phase boundaries and the workers' divergence. It cannot do the job alone: a callback never sees
the batch, the loss, the DDP wrapper or the data loader, and SWAP changes all four between phases. The mechanics
live in :class:`~hf_eff.callbacks.swap.trainer.SWAPTrainerMixin`; used with a plain ``Trainer`` this callback
raises at the start of training instead of silently training without SWAP.
"""

import logging
import math
import weakref
from typing import Any

import torch
from transformers import TrainerControl, TrainerState, TrainingArguments

from hf_eff.callbacks.base import HfEffCallback
from hf_eff.callbacks.swap.config import SWAPConfig
from hf_eff.distributed import all_reduce_, get_rank, get_world_size


logger = logging.getLogger(__name__)

__all__ = ["SWAPCallback"]

PHASE_LARGE_BATCH, PHASE_WORKERS, PHASE_AVERAGE = 1, 2, 3


class SWAPCallback(HfEffCallback):
    """Run SWAP inside one ``trainer.train()`` of a :class:`~hf_eff.callbacks.swap.trainer.SWAPTrainer`.

    Give either a :class:`SWAPConfig` or its fields as keyword arguments::

        trainer = SWAPTrainer(model, args, train_dataset=train, eval_dataset=test,
                              callbacks=[SWAPCallback(phase2_learning_rate=0.01, phase2_batch_size=32,
                                                      phase2_steps=500, stop_accuracy=0.9)])

    After ``train()`` the trainer's model is the averaged one. Read-outs: :attr:`phase`, :attr:`history`.
    """

    def __init__(self, config: SWAPConfig | None = None, **kwargs: Any):
        super().__init__()
        if config is None:
            unknown = set(kwargs) - SWAPConfig.field_names()
            if unknown:
                raise TypeError(f"unknown SWAPCallback arguments {sorted(unknown)}; see SWAPConfig for the fields")
            config = SWAPConfig(**kwargs)
        elif kwargs:
            raise TypeError("give either a SWAPConfig or keyword arguments, not both")
        elif not isinstance(config, SWAPConfig):
            raise TypeError(f"config must be a SWAPConfig, got {type(config).__name__}")
        self.config = config
        # progress (saved in checkpoints)
        self.phase = PHASE_LARGE_BATCH
        self.worker = 0  # the worker this process trains now (its rank, or the current one in a sequential run)
        self.num_workers: int | None = None
        self.phase1_end_step: int | None = None
        self.phase2_steps_per_worker: int | None = None
        self.worker_steps = 0  # optimizer steps of the current worker
        self.worker_batches = 0  # micro-batches the current worker has drawn (its data-order position)
        self.averaged = False
        self.history: list[dict[str, Any]] = []
        # transient
        self._trainer_ref: weakref.ReferenceType | None = None
        self._correct: torch.Tensor | None = None
        self._seen: torch.Tensor | None = None
        self._stop_reason: str | None = None
        self._warned_eval = False

    # ------------------------------------------------------------------------------------------------------------
    # checkpointing
    def state(self) -> dict[str, Any]:
        return {"args": self.config.to_json_dict(), "attributes": {"progress": self.progress}}

    @property
    def progress(self) -> dict[str, Any]:
        """The JSON-serialisable phase state saved in every checkpoint."""
        return {
            "phase": self.phase,
            "num_workers": self.num_workers,
            "phase1_end_step": self.phase1_end_step,
            "phase2_steps_per_worker": self.phase2_steps_per_worker,
            "worker": self.worker,
            "worker_steps": self.worker_steps,
            "worker_batches": self.worker_batches,
            "averaged": self.averaged,
            "history": [dict(record) for record in self.history],
        }

    @progress.setter
    def progress(self, value: dict[str, Any]) -> None:
        expected = set(self.progress)
        if not isinstance(value, dict) or set(value) != expected:
            raise ValueError(f"SWAPCallback progress must have the keys {sorted(expected)}, got {value!r:.200}")
        if value["phase"] not in (PHASE_LARGE_BATCH, PHASE_WORKERS, PHASE_AVERAGE):
            raise ValueError(f"saved SWAP phase must be 1, 2 or 3, got {value['phase']!r}")
        for key, item in value.items():
            setattr(self, key, [dict(record) for record in item] if key == "history" else item)

    # ------------------------------------------------------------------------------------------------------------
    # the trainer handle
    @property
    def trainer(self):
        """The SWAPTrainerMixin Trainer running this callback (set when training begins)."""
        trainer = self._trainer_ref() if self._trainer_ref is not None else None
        if trainer is None:
            raise ValueError("SWAPCallback is not attached to a running SWAPTrainer")
        return trainer

    @property
    def sequential(self) -> bool:
        """True when this single process runs all workers one after another."""
        return get_world_size() == 1

    # ------------------------------------------------------------------------------------------------------------
    # Trainer events
    def on_train_begin(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs):
        super().on_train_begin(args, state, control, **kwargs)
        from hf_eff.callbacks.swap.trainer import SWAPTrainerMixin  # (trainer.py imports this module)

        # one clear error on a plain Trainer: SWAP must not silently train as ordinary large-batch training
        trainer = self.require_trainer(SWAPTrainerMixin, "hf_eff.SWAPTrainer")
        self._trainer_ref = weakref.ref(trainer)
        self._check_setup(args)
        self._correct = self._seen = None  # a resumed run starts a fresh accuracy window
        trainer._swap_train_begin()
        if self.phase == PHASE_AVERAGE:
            control.should_training_stop = True

    def on_step_end(self, args, state, control, **kwargs):
        if self.phase == PHASE_LARGE_BATCH:
            if self._phase1_should_end(state, epoch_end=False):
                self._end_phase1(state, control)
        elif self.phase == PHASE_WORKERS:
            self.worker_steps += 1
            control.should_evaluate = False  # a gathered evaluation would mix the workers' different models
            if self.worker_steps >= self.phase2_steps_per_worker:
                self._end_worker(state, control)

    def on_epoch_end(self, args, state, control, **kwargs):
        if self.phase == PHASE_LARGE_BATCH and self._phase1_should_end(state, epoch_end=True):
            self._end_phase1(state, control)
        elif self.phase == PHASE_WORKERS:
            control.should_evaluate = False

    def pop_pending_logs(self) -> dict[str, float]:
        """SWAP metrics queued since the last call; in phase 2 every entry also says which worker it is."""
        logs = super().pop_pending_logs()
        if self.phase == PHASE_WORKERS:
            logs.setdefault("swap/phase", float(PHASE_WORKERS))
            logs.setdefault("swap/worker", float(self.worker))
        return logs

    # ------------------------------------------------------------------------------------------------------------
    # phase 1: training accuracy and the stopping criteria
    @property
    def measures_accuracy(self) -> bool:
        return self.phase == PHASE_LARGE_BATCH and self.config.stop_accuracy is not None

    @torch.no_grad()
    def record_predictions(self, logits: torch.Tensor | None, labels: torch.Tensor | None) -> None:
        """Count correct top-1 predictions of a phase-1 training batch (labels -100 are ignored)."""
        if logits is None or labels is None:
            raise ValueError(
                "stop_accuracy needs the model to return `logits` and the training batches to hold `labels`; "
                "use phase1_stop_fn or the phase-1 step budget to end phase 1 for this model"
            )
        predictions = logits.argmax(dim=-1)
        if predictions.shape != labels.shape:
            raise ValueError(
                f"stop_accuracy compares argmax(logits) {tuple(predictions.shape)} with labels {tuple(labels.shape)}; "
                "their shapes differ (is this a classification model?)"
            )
        valid = labels != -100
        correct = ((predictions == labels) & valid).sum().double()
        seen = valid.sum().double()
        if self._correct is None:
            self._correct, self._seen = correct, seen
        else:
            self._correct, self._seen = self._correct + correct, self._seen + seen

    def _window_accuracy(self) -> float | None:
        """Training accuracy over all processes since the previous check (a collective: call on every rank)."""
        counts = torch.zeros(2, dtype=torch.float64)
        if self._correct is not None:
            counts += torch.stack([self._correct, self._seen]).cpu()
        all_reduce_(counts, "sum")
        self._correct = self._seen = None
        return None if counts[1] == 0 else float(counts[0] / counts[1])

    def _phase1_should_end(self, state: TrainerState, *, epoch_end: bool) -> bool:
        """Every rank reaches the same answer (the checks are collectives or depend on the step only)."""
        config, reason = self.config, None
        if config.stop_accuracy is not None:
            interval = config.accuracy_check_steps
            due = epoch_end if interval is None else (not epoch_end and state.global_step % interval == 0)
            if due:
                accuracy = self._window_accuracy()
                if accuracy is not None:
                    self.queue_logs({"swap/train_accuracy": accuracy})
                    if accuracy >= config.stop_accuracy:
                        reason = f"train accuracy {accuracy:.4f} >= {config.stop_accuracy}"
                        self.queue_logs({"swap/phase1_train_accuracy": accuracy})
        stop_fn = config.phase1_stop_fn
        if reason is None and not epoch_end and stop_fn is not None and _any_rank(bool(stop_fn(state))):
            reason = "phase1_stop_fn"
        if reason is None and not epoch_end and state.global_step >= self.trainer._swap_phase1_budget:
            reason = f"phase-1 budget of {self.trainer._swap_phase1_budget} steps"
        if reason is not None:
            self._stop_reason = reason
        return reason is not None

    def _end_phase1(self, state: TrainerState, control: TrainerControl) -> None:
        reason = self._stop_reason
        logger.info("SWAP: phase 1 ends at step %d (%s); %d workers start phase 2", state.global_step, reason,
                    self.num_workers)  # fmt: skip
        self.phase = PHASE_WORKERS
        self.phase1_end_step = state.global_step
        self.history.append({"event": "phase1_end", "global_step": state.global_step, "reason": reason})
        self.queue_logs({"swap/phase": float(PHASE_WORKERS), "swap/phase1_steps": float(state.global_step)})
        self.trainer._swap_begin_phase2()
        control.should_log = True

    # ------------------------------------------------------------------------------------------------------------
    # phase 2: workers
    def _end_worker(self, state: TrainerState, control: TrainerControl) -> None:
        distance = self.trainer._swap_finish_worker()
        record = {"event": "worker_end", "global_step": state.global_step, "worker": self.worker}
        record["distance_from_start"] = distance
        self.history.append(record)
        self.queue_logs({f"swap/worker{self.worker}_distance_from_start": distance})
        control.should_log = True
        if self.sequential and self.worker + 1 < self.num_workers:
            self.worker += 1
            self.worker_steps = self.worker_batches = 0
            self.trainer._swap_start_worker(fresh=True)
        else:
            self.phase = PHASE_AVERAGE
            control.should_training_stop = True

    # ------------------------------------------------------------------------------------------------------------
    # checks
    def _check_setup(self, args: TrainingArguments) -> None:
        world_size = get_world_size()
        if args.deepspeed or args.fsdp:
            raise ValueError(
                "SWAP is not supported with DeepSpeed ZeRO or FSDP: parameters and optimizer state are sharded "
                "across processes, so the independent per-worker replicas that phase 2 trains do not exist"
            )
        if args.load_best_model_at_end:
            raise ValueError(
                "load_best_model_at_end=True would replace SWAP's averaged model by a checkpoint; set it to False"
            )
        requested = self.config.num_workers
        if world_size > 1:
            if requested not in (None, world_size):
                raise ValueError(
                    f"num_workers={requested} but this run has {world_size} processes: SWAP runs one worker per "
                    "process (set num_workers=None or to the world size; several processes per worker are not "
                    "supported)"
                )
            workers = world_size
        else:
            if requested is None or requested < 2:
                raise ValueError(
                    "a single-process SWAP run needs num_workers >= 2 (the workers then run one after another "
                    f"from the same phase-1 state); got num_workers={requested!r}. Launch several processes "
                    "(torchrun --nproc_per_node W) for parallel workers"
                )
            workers = requested
        if self.num_workers not in (None, workers):
            raise ValueError(f"resuming a SWAP run of {self.num_workers} workers with {workers} workers")
        self.num_workers = workers
        if not self.sequential:
            self.worker = get_rank()  # restored progress is rank 0's: each process is its own worker
        if args.eval_strategy != "no" and not self._warned_eval:
            self._warned_eval = True
            logger.info("SWAPCallback: evaluations are skipped in phase 2 (they would mix different workers)")


def _any_rank(flag: bool) -> bool:
    """True on every rank when ``flag`` is true on at least one: the same decision everywhere."""
    return bool(all_reduce_(torch.tensor([float(flag)]), "sum").item() > 0)


def phase2_steps_from_epochs(config: SWAPConfig, num_examples: int, num_workers: int, grad_accum: int) -> int:
    """Optimizer steps per worker for ``config.phase2_epochs`` passes over a worker's data."""
    pool = num_examples if config.phase2_data_order == "full" else num_examples // num_workers
    batches = pool // config.phase2_batch_size
    if batches == 0:
        raise ValueError(
            f"phase2_batch_size ({config.phase2_batch_size}) exceeds the {pool} examples of a worker's data"
        )
    return max(1, math.ceil(config.phase2_epochs * batches / grad_accum))
