"""``BanditLRTrainer``: a ``Trainer`` that sends :class:`BanditLRCallback`'s episode metrics to every ``report_to``
integration.

Nothing here is specific to the bandit any more: :class:`~hf_eff.callbacks.base.HfEffTrainerMixin` forwards the
metrics of every hf_eff callback. Without it the callback still works fully; the learning rate it plays is visible
everywhere as the usual ``learning_rate`` entry, and its per-episode metrics (``bandit_lr/*``) land in
``trainer.state.log_history``, ``trainer_state.json`` and the console, but not in the integrations.
"""

from hf_eff.callbacks.base import HfEffTrainer, HfEffTrainerMixin


__all__ = ["BanditLRTrainer", "BanditLRTrainerMixin"]

BanditLRTrainerMixin = HfEffTrainerMixin  # the name it had before the mixin served every hf_eff callback


class BanditLRTrainer(HfEffTrainer):
    """``Trainer`` whose logs, as seen by every integration, include the bandit's episode metrics."""
