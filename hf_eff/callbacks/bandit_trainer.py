"""Deprecated module path: ``BanditLRTrainer`` now lives in :mod:`hf_eff.callbacks.bandit_lr`."""

import warnings

from hf_eff.callbacks.bandit_lr.trainer import BanditLRTrainer, BanditLRTrainerMixin


__all__ = ["BanditLRTrainer", "BanditLRTrainerMixin"]

warnings.warn(
    "hf_eff.callbacks.bandit_trainer is deprecated and will be removed in the next release; import from "
    "hf_eff.callbacks.bandit_lr instead",
    DeprecationWarning,
    stacklevel=2,
)
