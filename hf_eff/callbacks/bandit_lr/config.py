"""``BanditLRConfig``: the settings of hot swapping, checked once, and their JSON form saved in checkpoints."""

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from hf_eff.callbacks.bandit_lr.policies import BANDITS, BanditPolicy, make_bandit
from hf_eff.callbacks.bandit_lr.racing import RacingPolicy


__all__ = ["BanditLRConfig"]

MODES = ("absolute", "multiplier")
REWARDS = ("probe_loss", "train_loss")
REWARD_SCALINGS = ("running", "none")
REJECTED_REWARDS = ("zero", "observed")


def _is_int_at_least_1(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def _check_arms(arms: Sequence[float]) -> list[float]:
    if isinstance(arms, (str, bytes)) or not isinstance(arms, Sequence):
        raise TypeError(f"arms must be a sequence of learning rates, got {type(arms).__name__}")
    if len(arms) == 0:
        raise ValueError("arms must hold at least one learning rate, got an empty sequence")
    values = []
    for i, arm in enumerate(arms):
        if isinstance(arm, bool) or not isinstance(arm, (int, float)) or not math.isfinite(arm) or arm <= 0:
            raise ValueError(f"arms must be positive finite numbers, got arms[{i}] = {arm!r}")
        values.append(float(arm))
    if len(set(values)) != len(values):
        raise ValueError(f"arms must be distinct, got {values}")
    return values


@dataclass
class BanditLRConfig:
    """The settings of :class:`~hf_eff.callbacks.bandit_lr.BanditLRCallback` (see it for what each one does),
    checked on construction.

    The probe set and its collator are not settings but data: they are arguments of the callback. ``bandit`` is a
    policy name or a :class:`BanditPolicy` instance; ``None`` only inside a callback rebuilt from a checkpoint made
    with an unregistered policy (the instance then comes from the callback given to the Trainer).
    """

    arms: Sequence[float]
    episode_steps: int | None = None
    mode: str = "absolute"
    bandit: str | BanditPolicy | None = "race"
    bandit_kwargs: dict[str, Any] = field(default_factory=dict)
    reward: str = "probe_loss"
    probe_batch_size: int = 64
    backtrack: bool = False
    reward_bound: float = 3.0
    reward_scaling: str = "running"
    rejected_reward: str = "zero"
    seed: int = 0

    def __post_init__(self) -> None:
        self.arms = _check_arms(self.arms)
        if self.episode_steps is not None and not _is_int_at_least_1(self.episode_steps):
            raise ValueError(
                f"episode_steps must be an int >= 1 or None (derived from max_steps), got {self.episode_steps!r}"
            )
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {self.mode!r}")
        if self.reward not in REWARDS:
            raise ValueError(f"reward must be one of {REWARDS}, got {self.reward!r}")
        if not _is_int_at_least_1(self.probe_batch_size):
            raise ValueError(f"probe_batch_size must be an int >= 1, got {self.probe_batch_size!r}")
        bound = self.reward_bound
        if isinstance(bound, bool) or not isinstance(bound, (int, float)) or not math.isfinite(bound) or bound <= 0:
            raise ValueError(f"reward_bound must be a positive finite number, got {bound!r}")
        if self.rejected_reward not in REJECTED_REWARDS:
            raise ValueError(f"rejected_reward must be one of {REJECTED_REWARDS}, got {self.rejected_reward!r}")
        if self.reward_scaling not in REWARD_SCALINGS:
            raise ValueError(f"reward_scaling must be one of {REWARD_SCALINGS}, got {self.reward_scaling!r}")
        self.bandit_kwargs = dict(self.bandit_kwargs or {})
        self.backtrack = bool(self.backtrack)
        self.reward_bound = float(bound)
        if isinstance(self.bandit, BanditPolicy):
            if self.bandit.num_arms != len(self.arms):
                raise ValueError(f"the bandit has {self.bandit.num_arms} arms but {len(self.arms)} arms were given")
            if self.bandit_kwargs:
                raise ValueError("bandit_kwargs only apply to a bandit given by name, not to a BanditPolicy instance")
        elif self.bandit is not None and not isinstance(self.bandit, str):
            raise TypeError(
                f"bandit must be a policy name or a BanditPolicy instance, got {type(self.bandit).__name__}"
            )
        elif self.bandit is not None:
            self.make_policy()  # checks the name and bandit_kwargs now rather than when training starts
        if self.races and self.reward != "probe_loss":
            raise ValueError(
                "the racing selector compares branches from one snapshot on the probe set, so it needs "
                f"reward='probe_loss', got reward={self.reward!r}; use a bandit such as bandit='ducb' for train_loss"
            )

    @property
    def races(self) -> bool:
        """Whether the selector races arms from shared snapshots (:class:`RacingPolicy`) instead of a bandit."""
        policy_class = type(self.bandit) if isinstance(self.bandit, BanditPolicy) else BANDITS.get(self.bandit)
        return policy_class is not None and issubclass(policy_class, RacingPolicy)

    def make_policy(self) -> BanditPolicy | None:
        """The policy instance given, or a fresh one built from its name (``None`` if there is neither)."""
        if self.bandit is None or isinstance(self.bandit, BanditPolicy):
            return self.bandit
        return make_bandit(self.bandit, len(self.arms), seed=self.seed, **self.bandit_kwargs)

    def to_json_args(self, policy: BanditPolicy | None) -> dict[str, Any]:
        """These settings as JSON keyword arguments of the callback, with ``policy`` described by its registered
        name and configuration (``bandit=None`` for a policy Trainer cannot rebuild by name)."""
        registered = policy is not None and BANDITS.get(policy.name) is type(policy)
        return {
            "arms": list(self.arms),
            "episode_steps": self.episode_steps,
            "mode": self.mode,
            "bandit": policy.name if registered else None,
            "bandit_kwargs": policy.config() if registered else {},
            "reward": self.reward,
            "probe_batch_size": self.probe_batch_size,
            "backtrack": self.backtrack,
            "reward_bound": self.reward_bound,
            "reward_scaling": self.reward_scaling,
            "rejected_reward": self.rejected_reward,
            "seed": self.seed,
        }
