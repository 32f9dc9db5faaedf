"""Multi-armed bandit policies behind one small interface, for choosing among a discrete set of options online.

:class:`BanditLRCallback` uses them to pick a learning rate per episode (Bache et al., "Hot Swapping for Online
Adaptation of Optimization Hyperparameters", arXiv 1412.6599). Nothing here knows about training: a policy is asked
for an arm (:meth:`BanditPolicy.select`), told the reward it earned (:meth:`BanditPolicy.update`), and can describe,
save and restore itself as plain JSON (:meth:`BanditPolicy.state_dict`), its random generator included, so that a
resumed run makes the same choices as an uninterrupted one.

Policies (rewards are assumed to lie in ``[-reward_bound, reward_bound]``):

- :class:`DiscountedUCB` (default, as in the paper): UCB on exponentially discounted statistics, so old rewards fade
  and the preferred arm can drift (Garivier & Moulines 2008).
- :class:`SlidingWindowUCB`: UCB on the last ``window`` plays only (same paper).
- :class:`UCB1`: the stationary classic (Auer et al. 2002).
- :class:`EpsilonGreedy`: the best empirical mean, or a uniformly random arm with probability ``epsilon``.
- :class:`GaussianThompsonSampling`: a Gaussian posterior per arm, sampled (optionally discounted).

To add a policy, subclass :class:`BanditPolicy`, implement ``select`` and ``update``, list the names of the JSON
attributes that make up its statistics in ``_state_fields``, and register it with :func:`register_bandit` so that it
can be named by a string (and therefore saved in a Trainer checkpoint).
"""

import math
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any

import numpy as np


__all__ = [
    "BANDITS",
    "BanditPolicy",
    "DiscountedUCB",
    "EpsilonGreedy",
    "GaussianThompsonSampling",
    "SlidingWindowUCB",
    "UCB1",
    "make_bandit",
    "register_bandit",
]


def _check_positive(name: str, value: float) -> None:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")


def _check_unit_interval(name: str, value: float, *, closed_right: bool) -> None:
    upper_ok = value <= 1 if closed_right else value < 1
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not (value > 0 and upper_ok):
        interval = "(0, 1]" if closed_right else "(0, 1)"
        raise ValueError(f"{name} must be in {interval}, got {value!r}")


class BanditPolicy(ABC):
    """A policy over ``num_arms`` arms.

    Subclasses keep their statistics in plain Python attributes named in ``_state_fields`` (floats, ints, lists)
    so that :meth:`state_dict` is JSON-serialisable. Randomness comes only from ``self.rng`` (a seeded numpy
    ``Generator``), whose state is saved too: two policies built with the same seed and fed the same rewards make
    identical choices, on every rank of a distributed run.
    """

    name: str = ""
    _state_fields: tuple[str, ...] = ()

    @property
    def _per_arm_fields(self) -> tuple[str, ...]:
        """State fields holding one entry per arm (checked on load)."""
        return self._state_fields

    def __init__(self, num_arms: int, *, seed: int = 0):
        if not isinstance(num_arms, int) or isinstance(num_arms, bool) or num_arms < 1:
            raise ValueError(f"num_arms must be a positive int, got {num_arms!r}")
        if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
            raise ValueError(f"seed must be a non-negative int, got {seed!r}")
        self.num_arms = num_arms
        self.seed = seed
        self.rng = np.random.default_rng(seed)
        self.rounds = 0  # how many rewards have been received

    # -- the interface ---------------------------------------------------------------------------------------
    @abstractmethod
    def select(self) -> int:
        """The arm to play next."""

    @abstractmethod
    def update(self, arm: int, reward: float) -> None:
        """Record ``reward`` for ``arm`` (the arm that was played)."""

    def arm_statistics(self) -> list[dict[str, float]]:
        """Per-arm numbers worth logging (e.g. ``count``, ``mean``, ``index``); one dict per arm."""
        return [{} for _ in range(self.num_arms)]

    def config(self) -> dict[str, Any]:
        """Constructor keyword arguments besides ``num_arms`` and ``seed`` (JSON-serialisable)."""
        return {}

    # -- persistence -----------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue exactly where this policy is: statistics and random generator state."""
        state = {field: _json_copy(getattr(self, field)) for field in ("rounds", *self._state_fields)}
        state["rng"] = _json_copy(self.rng.bit_generator.state)
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        expected = {"rounds", "rng", *self._state_fields}
        if not isinstance(state, dict) or set(state) != expected:
            got = sorted(state) if isinstance(state, dict) else type(state).__name__
            raise ValueError(f"state for {type(self).__name__} must have the keys {sorted(expected)}, got {got}")
        for field in ("rounds", *self._state_fields):
            value = _json_copy(state[field])
            if field in self._per_arm_fields and (not isinstance(value, list) or len(value) != self.num_arms):
                raise ValueError(
                    f"state field {field!r} of {type(self).__name__} must be a list of length {self.num_arms} "
                    f"(one entry per arm), got {value!r:.80}"
                )
            setattr(self, field, value)
        self.rng.bit_generator.state = _json_copy(state["rng"])

    # -- helpers for subclasses ------------------------------------------------------------------------------
    def _check_update(self, arm: int, reward: float) -> float:
        if not isinstance(arm, (int, np.integer)) or isinstance(arm, bool) or not 0 <= arm < self.num_arms:
            raise ValueError(f"arm must be an int in [0, {self.num_arms}), got {arm!r}")
        reward = float(reward)
        if not math.isfinite(reward):
            raise ValueError(f"reward must be finite, got {reward!r}")
        self.rounds += 1
        return reward

    def _argmax(self, scores: Sequence[float]) -> int:
        """Index of the largest score; ties are broken at random (with this policy's generator)."""
        best = max(scores)
        ties = [arm for arm, score in enumerate(scores) if score == best]
        return ties[0] if len(ties) == 1 else int(self.rng.choice(ties))

    def _unplayed(self, counts: Sequence[float]) -> int | None:
        """An arm never played yet, chosen at random among them, or ``None``."""
        unplayed = [arm for arm, count in enumerate(counts) if count == 0]
        if not unplayed:
            return None
        return unplayed[0] if len(unplayed) == 1 else int(self.rng.choice(unplayed))


def _json_copy(value: Any) -> Any:
    """A deep copy made of plain JSON types (tuples become lists, numpy scalars become Python numbers)."""
    if isinstance(value, dict):
        return {str(key): _json_copy(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_copy(item) for item in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


class _UCBBase(BanditPolicy):
    """Shared parts of the UCB family: index = mean + exploration bonus, unplayed arms first."""

    def __init__(self, num_arms: int, *, reward_bound: float = 1.0, seed: int = 0):
        super().__init__(num_arms, seed=seed)
        _check_positive("reward_bound", reward_bound)
        self.reward_bound = float(reward_bound)

    @abstractmethod
    def _counts_and_sums(self) -> tuple[list[float], list[float]]: ...

    @abstractmethod
    def _bonus(self, count: float, counts: list[float]) -> float: ...

    def indices(self) -> list[float]:
        """The upper confidence index of every arm (``inf`` for an arm with no (remaining) plays)."""
        counts, sums = self._counts_and_sums()
        return [
            math.inf if count <= 0 else total / count + self._bonus(count, counts)
            for count, total in zip(counts, sums)
        ]

    def select(self) -> int:
        counts, _ = self._counts_and_sums()
        unplayed = self._unplayed(counts)
        return unplayed if unplayed is not None else self._argmax(self.indices())

    def arm_statistics(self) -> list[dict[str, float]]:
        counts, sums = self._counts_and_sums()
        return [
            {"count": count, "mean": total / count if count > 0 else 0.0, "index": index}
            for count, total, index in zip(counts, sums, self.indices())
        ]


class DiscountedUCB(_UCBBase):
    """Discounted UCB (D-UCB, Garivier & Moulines 2008), the policy of the hot-swapping paper.

    With discount ``gamma`` the statistics are ``N_a = sum_s gamma^(t-s) [a_s = a]`` and
    ``S_a = sum_s gamma^(t-s) r_s [a_s = a]``, and the arm maximising
    ``S_a / N_a + 2 B sqrt(xi log(sum_a' N_a') / N_a)`` is played (``B`` = ``reward_bound``). Old rewards fade
    with a horizon of about ``1 / (1 - gamma)`` plays, so an arm that became better is found again. The defaults
    ``gamma=0.95, xi=0.6`` are hf_eff's choice, not values from the paper (which are unverified).
    """

    name = "ducb"
    _state_fields = ("discounted_counts", "discounted_sums")

    def __init__(
        self, num_arms: int, *, gamma: float = 0.95, xi: float = 0.6, reward_bound: float = 1.0, seed: int = 0
    ):
        super().__init__(num_arms, reward_bound=reward_bound, seed=seed)
        _check_unit_interval("gamma", gamma, closed_right=True)
        _check_positive("xi", xi)
        self.gamma, self.xi = float(gamma), float(xi)
        self.discounted_counts = [0.0] * num_arms
        self.discounted_sums = [0.0] * num_arms

    def config(self) -> dict[str, Any]:
        return {"gamma": self.gamma, "xi": self.xi, "reward_bound": self.reward_bound}

    def _counts_and_sums(self):
        return self.discounted_counts, self.discounted_sums

    def _bonus(self, count, counts):
        total = sum(counts)
        return 2 * self.reward_bound * math.sqrt(self.xi * math.log(total) / count) if total > 1 else 0.0

    def update(self, arm: int, reward: float) -> None:
        reward = self._check_update(arm, reward)
        self.discounted_counts = [self.gamma * count for count in self.discounted_counts]
        self.discounted_sums = [self.gamma * total for total in self.discounted_sums]
        self.discounted_counts[arm] += 1.0
        self.discounted_sums[arm] += reward


class SlidingWindowUCB(_UCBBase):
    """Sliding-window UCB (SW-UCB, Garivier & Moulines 2008): UCB over the last ``window`` plays only.

    Index ``mean_a + B sqrt(xi log(min(t, window)) / N_a)`` with ``N_a`` and ``mean_a`` computed in the window;
    an arm absent from the window is played first.
    """

    name = "swucb"
    _state_fields = ("history",)
    _per_arm_fields = ()

    def __init__(self, num_arms: int, *, window: int = 20, xi: float = 0.6, reward_bound: float = 1.0, seed: int = 0):
        super().__init__(num_arms, reward_bound=reward_bound, seed=seed)
        if not isinstance(window, int) or isinstance(window, bool) or window < 1:
            raise ValueError(f"window must be a positive int, got {window!r}")
        _check_positive("xi", xi)
        self.window, self.xi = window, float(xi)
        self.history: list[list[float]] = []  # [[arm, reward], ...], the last `window` plays

    def config(self) -> dict[str, Any]:
        return {"window": self.window, "xi": self.xi, "reward_bound": self.reward_bound}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.history = [[int(arm), float(reward)] for arm, reward in self.history]

    def _counts_and_sums(self):
        counts, sums = [0.0] * self.num_arms, [0.0] * self.num_arms
        for arm, reward in self.history:
            counts[arm] += 1.0
            sums[arm] += reward
        return counts, sums

    def _bonus(self, count, counts):
        horizon = min(self.rounds, self.window)
        return self.reward_bound * math.sqrt(self.xi * math.log(horizon) / count) if horizon > 1 else 0.0

    def update(self, arm: int, reward: float) -> None:
        reward = self._check_update(arm, reward)
        self.history = [*self.history, [int(arm), reward]][-self.window :]


class UCB1(_UCBBase):
    """UCB1 (Auer, Cesa-Bianchi & Fischer 2002): ``mean_a + B sqrt(2 log t / n_a)``. Assumes stationary
    rewards, which learning-rate rewards are not; kept as the textbook reference point."""

    name = "ucb1"
    _state_fields = ("counts", "sums")

    def __init__(self, num_arms: int, *, reward_bound: float = 1.0, seed: int = 0):
        super().__init__(num_arms, reward_bound=reward_bound, seed=seed)
        self.counts = [0] * num_arms
        self.sums = [0.0] * num_arms

    def config(self) -> dict[str, Any]:
        return {"reward_bound": self.reward_bound}

    def _counts_and_sums(self):
        return [float(count) for count in self.counts], self.sums

    def _bonus(self, count, counts):
        return self.reward_bound * math.sqrt(2 * math.log(self.rounds) / count) if self.rounds > 1 else 0.0

    def update(self, arm: int, reward: float) -> None:
        reward = self._check_update(arm, reward)
        self.counts[arm] += 1
        self.sums[arm] += reward


class EpsilonGreedy(BanditPolicy):
    """Play the arm with the best (optionally discounted) mean reward, or, with probability ``epsilon``, an arm
    drawn uniformly at random. Every arm is played once first.

    With ``epsilon_decay > 0`` the exploration rate after ``t`` rewards is ``epsilon / (1 + epsilon_decay * t)``,
    which makes the regret sublinear on a stationary problem; a constant rate (the default) keeps exploring, which
    suits a drifting one.
    """

    name = "epsilon_greedy"
    _state_fields = ("discounted_counts", "discounted_sums")

    def __init__(
        self, num_arms: int, *, epsilon: float = 0.1, epsilon_decay: float = 0.0, gamma: float = 1.0, seed: int = 0
    ):
        super().__init__(num_arms, seed=seed)
        if not isinstance(epsilon, (int, float)) or isinstance(epsilon, bool) or not 0 <= epsilon <= 1:
            raise ValueError(f"epsilon must be in [0, 1], got {epsilon!r}")
        if not isinstance(epsilon_decay, (int, float)) or isinstance(epsilon_decay, bool) or not epsilon_decay >= 0:
            raise ValueError(f"epsilon_decay must be a non-negative number, got {epsilon_decay!r}")
        _check_unit_interval("gamma", gamma, closed_right=True)
        self.epsilon, self.epsilon_decay, self.gamma = float(epsilon), float(epsilon_decay), float(gamma)
        self.discounted_counts = [0.0] * num_arms
        self.discounted_sums = [0.0] * num_arms

    def config(self) -> dict[str, Any]:
        return {"epsilon": self.epsilon, "epsilon_decay": self.epsilon_decay, "gamma": self.gamma}

    def _means(self) -> list[float]:
        return [s / n if n > 0 else 0.0 for n, s in zip(self.discounted_counts, self.discounted_sums)]

    def select(self) -> int:
        unplayed = self._unplayed(self.discounted_counts)
        if unplayed is not None:
            return unplayed
        if self.rng.random() < self.epsilon / (1.0 + self.epsilon_decay * self.rounds):
            return int(self.rng.integers(self.num_arms))
        return self._argmax(self._means())

    def update(self, arm: int, reward: float) -> None:
        reward = self._check_update(arm, reward)
        self.discounted_counts = [self.gamma * n for n in self.discounted_counts]
        self.discounted_sums = [self.gamma * s for s in self.discounted_sums]
        self.discounted_counts[arm] += 1.0
        self.discounted_sums[arm] += reward

    def arm_statistics(self) -> list[dict[str, float]]:
        return [{"count": n, "mean": m} for n, m in zip(self.discounted_counts, self._means())]


class GaussianThompsonSampling(BanditPolicy):
    """Thompson sampling with a Gaussian model per arm.

    Rewards of arm ``a`` are modelled as ``N(mu_a, noise_std^2)`` with prior ``mu_a ~ N(0, prior_std^2)``; each
    round one ``mu_a`` is drawn from every posterior and the largest wins. With ``gamma < 1`` the sufficient
    statistics are discounted like D-UCB's, which keeps the posterior from collapsing on a drifting problem.
    """

    name = "thompson"
    _state_fields = ("discounted_counts", "discounted_sums")

    def __init__(
        self,
        num_arms: int,
        *,
        noise_std: float = 0.5,
        prior_std: float = 1.0,
        gamma: float = 1.0,
        seed: int = 0,
    ):
        super().__init__(num_arms, seed=seed)
        _check_positive("noise_std", noise_std)
        _check_positive("prior_std", prior_std)
        _check_unit_interval("gamma", gamma, closed_right=True)
        self.noise_std, self.prior_std, self.gamma = float(noise_std), float(prior_std), float(gamma)
        self.discounted_counts = [0.0] * num_arms
        self.discounted_sums = [0.0] * num_arms

    def config(self) -> dict[str, Any]:
        return {"noise_std": self.noise_std, "prior_std": self.prior_std, "gamma": self.gamma}

    def posterior(self) -> list[tuple[float, float]]:
        """``(mean, std)`` of every arm's posterior over its mean reward."""
        noise_var, prior_var = self.noise_std**2, self.prior_std**2
        result = []
        for n, s in zip(self.discounted_counts, self.discounted_sums):
            precision = 1.0 / prior_var + n / noise_var
            result.append(((s / noise_var) / precision, math.sqrt(1.0 / precision)))
        return result

    def select(self) -> int:
        means, stds = zip(*self.posterior())
        draws = self.rng.normal(np.asarray(means), np.asarray(stds))
        return self._argmax([float(draw) for draw in draws])

    def update(self, arm: int, reward: float) -> None:
        reward = self._check_update(arm, reward)
        self.discounted_counts = [self.gamma * n for n in self.discounted_counts]
        self.discounted_sums = [self.gamma * s for s in self.discounted_sums]
        self.discounted_counts[arm] += 1.0
        self.discounted_sums[arm] += reward

    def arm_statistics(self) -> list[dict[str, float]]:
        return [
            {"count": n, "mean": mean, "std": std} for n, (mean, std) in zip(self.discounted_counts, self.posterior())
        ]


BANDITS: dict[str, type[BanditPolicy]] = {}


def register_bandit(cls: type[BanditPolicy]) -> type[BanditPolicy]:
    """Make ``cls`` available by its ``name`` (usable as a decorator); names are what checkpoints store."""
    if not (isinstance(cls, type) and issubclass(cls, BanditPolicy)) or not cls.name:
        raise TypeError(f"expected a BanditPolicy subclass with a non-empty `name`, got {cls!r}")
    if BANDITS.get(cls.name, cls) is not cls:
        raise ValueError(f"a bandit named {cls.name!r} is already registered ({BANDITS[cls.name].__name__})")
    BANDITS[cls.name] = cls
    return cls


for _cls in (DiscountedUCB, SlidingWindowUCB, UCB1, EpsilonGreedy, GaussianThompsonSampling):
    register_bandit(_cls)


def make_bandit(name: str, num_arms: int, *, seed: int = 0, **kwargs: Any) -> BanditPolicy:
    """Build the registered policy ``name`` (``"ducb"``, ``"swucb"``, ``"ucb1"``, ``"epsilon_greedy"``,
    ``"thompson"``, or one added with :func:`register_bandit`)."""
    if name not in BANDITS:
        raise ValueError(f"bandit must be one of {sorted(BANDITS)} (or a BanditPolicy instance), got {name!r}")
    try:
        return BANDITS[name](num_arms, seed=seed, **kwargs)
    except TypeError as error:  # an unknown keyword: name the policy and what it accepts
        raise TypeError(f"bad bandit_kwargs for {name!r}: {error}") from error
