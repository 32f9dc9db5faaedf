"""A Trainer mixin that sends :class:`BanditLRCallback`'s episode metrics to every ``report_to`` integration.

Why a mixin: Trainer hands each log entry to its callbacks in order, and the integrations (TensorBoard, W&B,
MLflow, ...) are always registered before user callbacks, so metrics a callback adds in ``on_log`` never reach
them. Without this mixin the callback still works fully; the learning rate it plays is visible everywhere as the
usual ``learning_rate`` entry, and its per-episode metrics (``bandit_lr/*``) land in ``trainer.state.log_history``,
``trainer_state.json`` and the console, but not in the integrations.
"""

from transformers import Trainer

from hf_eff.callbacks.bandit_lr import BanditLRCallback


__all__ = ["BanditLRTrainer", "BanditLRTrainerMixin"]


class BanditLRTrainerMixin:
    """Put first in the bases of a ``Trainer`` subclass: ``class MyTrainer(BanditLRTrainerMixin, Trainer)``."""

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        for callback in self.callback_handler.callbacks:
            if isinstance(callback, BanditLRCallback):
                logs = {**logs, **callback.pop_pending_logs()}
        super().log(logs, start_time)


class BanditLRTrainer(BanditLRTrainerMixin, Trainer):
    """``Trainer`` whose logs, as seen by every integration, include the bandit's episode metrics."""
