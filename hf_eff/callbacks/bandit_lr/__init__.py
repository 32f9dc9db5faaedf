"""Hot swapping (Bache, DeCoste & Smyth, arXiv 1412.6599): the learning rate is chosen online, by racing rates from
a shared snapshot (default) or by a bandit over per-episode rewards (the paper's D-UCB, ``bandit="ducb"``).

One job per module: ``config`` (the settings, checked), ``policies`` (the bandits, knowing nothing of training),
``racing`` (the racing selector's plan and decisions, knowing nothing of training either),
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
from hf_eff.callbacks.bandit_lr.racing import RacingPolicy
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
    "RacingPolicy",
    "SlidingWindowUCB",
    "make_bandit",
    "register_bandit",
]
