"""Deprecated module path: the bandit policies now live in :mod:`hf_eff.callbacks.bandit_lr.policies`."""

import warnings

from hf_eff.callbacks.bandit_lr.policies import *  # noqa: F403
from hf_eff.callbacks.bandit_lr.policies import __all__  # noqa: F401


warnings.warn(
    "hf_eff.callbacks.bandits is deprecated and will be removed in the next release; import from "
    "hf_eff.callbacks.bandit_lr instead",
    DeprecationWarning,
    stacklevel=2,
)
