"""Hot swapping (Bache, DeCoste & Smyth, arXiv 1412.6599): a bandit picks the learning rate of every episode.

One job per module: ``config`` (the settings, checked), ``policies`` (the bandits, knowing nothing of training),
``callback`` (the ``TrainerCallback`` that plays them), ``trainer`` (the Trainer that forwards its metrics to the
``report_to`` integrations).
"""

from hf_eff.callbacks.bandit_lr.callback import BanditLRCallback
from hf_eff.callbacks.bandit_lr.config import BanditLRConfig
from hf_eff.callbacks.bandit_lr.policies import (
    BANDITS,
    UCB1,
    BanditPolicy,
    DiscountedUCB,
    EpsilonGreedy,
    GaussianThompsonSampling,
    SlidingWindowUCB,
    make_bandit,
    register_bandit,
)
from hf_eff.callbacks.bandit_lr.trainer import BanditLRTrainer, BanditLRTrainerMixin


__all__ = [
    "BANDITS",
    "UCB1",
    "BanditLRCallback",
    "BanditLRConfig",
    "BanditLRTrainer",
    "BanditLRTrainerMixin",
    "BanditPolicy",
    "DiscountedUCB",
    "EpsilonGreedy",
    "GaussianThompsonSampling",
    "SlidingWindowUCB",
    "make_bandit",
    "register_bandit",
]
