"""What every stateful hf_eff callback shares: metrics for the Trainer's logs, objects that survive a resume, and
the one Trainer mixin that connects them to ``report_to`` integrations.

Three problems each method-specific callback would otherwise solve again:

- **Metrics.** A callback learns something (an arm's reward, a SWAP phase change) between log entries. It queues
  the numbers with :meth:`HfEffCallback.queue_logs`; they join the Trainer's next log entry. Trainer shows each
  entry to the integrations (TensorBoard, W&B, ...) before any user callback can add to it, so a callback alone can
  only complete ``trainer.state.log_history`` afterwards; :class:`HfEffTrainerMixin` merges the queued metrics
  earlier, in ``Trainer.log``, so the integrations see them too.
- **Resume.** With ``restore_callback_states_from_checkpoint=True`` Trainer rebuilds a stateful callback from the
  JSON of its ``state()`` (``type(cb)(**state["args"])``), which cannot carry a dataset, a collate function or a
  policy object. A subclass names such attributes in ``live_attributes``; the instance the user gave the Trainer
  registers them (keyed by the model, weakly) and the rebuilt instance adopts those it lacks when training begins.
- **Files in checkpoints.** State too big for JSON (a backtracking snapshot) goes into a file of the checkpoint
  folder, written in ``on_save`` to :func:`checkpoint_folder`; on resume, :func:`resumed_checkpoint` finds it again
  (the folder given to ``train(resume_from_checkpoint=...)`` with :class:`HfEffTrainerMixin`, else the checkpoint
  of the resumed step in ``output_dir``).
- **Trainer requirements.** A callback never sees the batch or the loss; methods that need them ship a Trainer
  mixin, and their callback calls :meth:`HfEffCallback.require_trainer` in ``on_train_begin`` to fail with one
  clear message on a plain ``Trainer`` instead of training wrongly.
"""

import contextvars
import json
import os
import weakref
from typing import Any, ClassVar, TypeVar

from torch import nn
from transformers import Trainer, TrainerCallback, TrainerControl, TrainerState, TrainingArguments
from transformers.trainer_callback import ExportableState
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR, get_last_checkpoint


__all__ = [
    "HfEffCallback",
    "HfEffTrainer",
    "HfEffTrainerMixin",
    "checkpoint_folder",
    "current_trainer",
    "resumed_checkpoint",
]

CallbackT = TypeVar("CallbackT", bound=TrainerCallback)

# model -> {callback class: {attribute name: live object}}; weak, so nothing outlives the model it trained
_LIVE_OBJECTS: "weakref.WeakKeyDictionary[nn.Module, dict[type, dict[str, Any]]]" = weakref.WeakKeyDictionary()
# the HfEffTrainerMixin Trainer whose ``train()`` is running in this context (callbacks cannot see the Trainer)
_CURRENT_TRAINER: contextvars.ContextVar["HfEffTrainerMixin | None"] = contextvars.ContextVar(
    "hf_eff_current_trainer", default=None
)
TRAINER_STATE_NAME = "trainer_state.json"  # Trainer's name for it (transformers.trainer.TRAINER_STATE_NAME)
# the checkpoint folder that running ``train()`` resumes from (set by HfEffTrainerMixin)
_RESUMED_FROM: contextvars.ContextVar[str | None] = contextvars.ContextVar("hf_eff_resumed_from", default=None)


def current_trainer() -> "HfEffTrainerMixin | None":
    """The :class:`HfEffTrainerMixin` Trainer whose ``train()`` is running, or ``None`` (e.g. a plain Trainer)."""
    return _CURRENT_TRAINER.get()


def checkpoint_folder(args: TrainingArguments, state: TrainerState) -> str:
    """The folder of the checkpoint Trainer writes at ``state.global_step`` (where ``on_save`` adds files)."""
    return os.path.join(args.output_dir, f"{PREFIX_CHECKPOINT_DIR}-{state.global_step}")


def resumed_checkpoint(args: TrainingArguments, state: TrainerState) -> str | None:
    """The checkpoint folder the running ``train()`` resumed from, for callbacks whose state lives in files there.

    Callbacks are not told the folder. A :class:`HfEffTrainerMixin` Trainer records it; with another Trainer this is
    the checkpoint of the resumed step in ``output_dir`` (``None`` if there is no such folder or at step 0).
    """
    recorded = _RESUMED_FROM.get()
    if recorded is not None:
        return recorded
    if state.global_step == 0:
        return None
    folder = checkpoint_folder(args, state)
    return folder if os.path.isdir(folder) else None


class HfEffCallback(TrainerCallback, ExportableState):
    """Base of hf_eff's stateful callbacks.

    Subclasses call ``super().__init__()``, implement ``state()`` (``ExportableState``), and when they override
    ``on_init_end``, ``on_train_begin`` or ``on_log`` call the ``super()`` method too (at the start of
    ``on_train_begin``, so that live objects are adopted before the subclass checks its setup; at the end of
    ``on_log``, so that metrics queued while handling the entry join it).

    Class attribute ``live_attributes``: names of attributes JSON cannot carry (a probe dataset, a collator, a
    policy object). A rebuilt instance should hold ``None`` for them; :meth:`adopt_live_objects` fills them in.
    """

    live_attributes: ClassVar[tuple[str, ...]] = ()

    def __init__(self) -> None:
        self._pending_logs: dict[str, float] = {}

    # ----------------------------------------------------------------------------------------------------------
    # metrics for the Trainer's log entries
    def queue_logs(self, logs: dict[str, float]) -> None:
        """Add metrics to the Trainer's next log entry (a later value for the same name replaces an earlier one)."""
        self._pending_logs.update(logs)

    def pop_pending_logs(self) -> dict[str, float]:
        """The metrics queued since the last call, removed from the queue (what ``Trainer.log`` merges)."""
        logs, self._pending_logs = self._pending_logs, {}
        return logs

    def on_log(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, logs=None, **kwargs):
        if logs is not None and self._pending_logs:
            # Trainer has already recorded this entry and shown it to the callbacks listed before this one (the
            # integrations, unless HfEffTrainerMixin merged the metrics earlier); complete the recorded entry
            queued = self.pop_pending_logs()
            logs.update(queued)
            if state.log_history:
                state.log_history[-1].update(queued)

    # ----------------------------------------------------------------------------------------------------------
    # objects JSON cannot carry across a resume
    def register_live_objects(self, model: nn.Module | None) -> None:
        """Remember this instance's ``live_attributes`` for a rebuilt instance training the same model."""
        if model is not None and self.live_attributes:
            live = {name: getattr(self, name) for name in self.live_attributes}
            _LIVE_OBJECTS.setdefault(model, {})[type(self)] = live

    def adopt_live_objects(self, model: nn.Module | None) -> list[str]:
        """Fill in the ``live_attributes`` this instance lacks (``None``) from the instance registered for
        ``model``; returns the names filled in."""
        live = _LIVE_OBJECTS.get(model, {}).get(type(self), {}) if model is not None else {}
        adopted = []
        for name, value in live.items():
            if getattr(self, name, None) is None and value is not None:
                setattr(self, name, value)
                adopted.append(name)
        return adopted

    def on_init_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, model=None, **kwargs):
        self.register_live_objects(model)

    def on_train_begin(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, model=None, **kwargs
    ):
        self.adopt_live_objects(model)
        self.register_live_objects(model)

    # ----------------------------------------------------------------------------------------------------------
    # Trainer requirements
    def require_trainer(self, mixin: type, suggestion: str | None = None) -> "HfEffTrainerMixin":
        """Return the running Trainer if it is a ``mixin`` subclass holding this callback, else raise a
        ``ValueError`` telling the user which Trainer to use. Call it in ``on_train_begin``.

        ``suggestion``: a ready-made Trainer to name in the message (e.g. ``"hf_eff.callbacks.swap.SWAPTrainer"``).
        """
        trainer = current_trainer()
        if isinstance(trainer, mixin) and self in trainer.callback_handler.callbacks:
            return trainer
        name = type(self).__name__
        found = "a plain Trainer" if trainer is None else type(trainer).__name__
        use = f"{suggestion}, or " if suggestion else ""
        raise ValueError(
            f"{name} needs a Trainer with {mixin.__module__}.{mixin.__qualname__} but runs in {found}; use "
            f"{use}class MyTrainer({mixin.__qualname__}, Trainer)"
        )


class HfEffTrainerMixin:
    """Trainer mixin for hf_eff callbacks: forwards their queued metrics to every ``report_to`` integration and
    lets them check (:meth:`HfEffCallback.require_trainer`) that they run in a Trainer that supports them.

    Put mixins left of ``Trainer``: ``class MyTrainer(HfEffTrainerMixin, Trainer)``. Every method a mixin overrides
    calls ``super()``, so mixins compose: a method-specific mixin subclasses this one (``class
    SWAPTrainerMixin(HfEffTrainerMixin)`` overriding ``compute_loss`` or ``training_step``), and combining several,
    ``class MyTrainer(SWAPTrainerMixin, PerInstanceLRTrainerMixin, Trainer)``, runs each override once, left to
    right, down to ``Trainer`` (Python's MRO puts this shared base after all its subclasses). This mixin only wraps
    ``train`` (to announce itself to callbacks) and ``log`` (to merge their metrics); a mixin whose override must
    see the merged metrics goes left of it, which subclassing it ensures.
    """

    def train(self, *args: Any, **kwargs: Any):
        checkpoint = kwargs.get("resume_from_checkpoint", args[0] if args else None)
        if checkpoint is True:
            checkpoint = get_last_checkpoint(self.args.output_dir)  # Trainer raises if there is none
        if checkpoint:
            _check_trainer_state(str(checkpoint))
        token = _CURRENT_TRAINER.set(self)
        resumed = _RESUMED_FROM.set(str(checkpoint) if checkpoint else None)
        try:
            return super().train(*args, **kwargs)
        finally:
            _RESUMED_FROM.reset(resumed)
            _CURRENT_TRAINER.reset(token)

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        for callback in self.hf_eff_callbacks():
            logs = {**logs, **callback.pop_pending_logs()}
        super().log(logs, start_time)

    def hf_eff_callbacks(self, cls: type[CallbackT] = HfEffCallback) -> list[CallbackT]:
        """The callbacks of class ``cls`` (by default every hf_eff callback) this Trainer holds, in order. After a
        resume these are the rebuilt instances, not those passed to the constructor."""
        return [callback for callback in self.callback_handler.callbacks if isinstance(callback, cls)]


def _check_trainer_state(checkpoint: str) -> None:
    """Name the file when the checkpoint's trainer_state.json (which holds every stateful callback's state) is cut
    short; Trainer would fail with a bare ``JSONDecodeError``."""
    path = os.path.join(checkpoint, TRAINER_STATE_NAME)
    if os.path.isfile(path):
        try:
            with open(path, encoding="utf-8") as handle:
                json.load(handle)
        except ValueError as error:  # JSONDecodeError and UnicodeDecodeError
            raise ValueError(
                f"{path} is truncated or corrupted ({error}); resume from an earlier checkpoint"
            ) from error


class HfEffTrainer(HfEffTrainerMixin, Trainer):
    """``Trainer`` whose log entries, as every integration sees them, include hf_eff callbacks' metrics."""
