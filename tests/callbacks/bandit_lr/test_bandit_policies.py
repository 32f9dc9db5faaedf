"""The bandit policies on synthetic problems with known reward means (no training involved)."""

import json
import math

import numpy as np
import pytest

from hf_eff.callbacks.bandit_lr import (
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


MEANS = np.array([0.2, 0.5, 0.7, 0.4])
POLICIES = {
    # on a stationary problem the memory must span the horizon (Garivier & Moulines: 1 - gamma ~ sqrt(changes / T))
    "ducb": lambda seed: DiscountedUCB(4, gamma=0.999, xi=0.6, reward_bound=0.5, seed=seed),
    "swucb": lambda seed: SlidingWindowUCB(4, window=2000, reward_bound=0.5, seed=seed),
    "ucb1": lambda seed: UCB1(4, seed=seed),
    "epsilon_greedy": lambda seed: EpsilonGreedy(4, epsilon=0.2, epsilon_decay=0.01, seed=seed),
    "thompson": lambda seed: GaussianThompsonSampling(4, noise_std=0.2, seed=seed),
}


def play(policy: BanditPolicy, means_at, rounds: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Run ``policy`` against Gaussian rewards (std 0.2); return the arms played and the per-round regret."""
    noise = np.random.default_rng(seed + 1000)
    arms, regret = [], []
    for t in range(rounds):
        means = means_at(t)
        arm = policy.select()
        policy.update(arm, float(means[arm] + 0.2 * noise.standard_normal()))
        arms.append(arm)
        regret.append(means.max() - means[arm])
    return np.array(arms), np.array(regret)


@pytest.mark.parametrize("name", sorted(POLICIES))
def test_regret_grows_sublinearly_and_beats_uniform_play(name):
    rounds = 2000
    per_round = np.mean([play(POLICIES[name](seed), lambda t: MEANS, rounds, seed)[1] for seed in range(3)], axis=0)
    cumulative = np.cumsum(per_round)
    uniform_regret_per_round = MEANS.max() - MEANS.mean()
    # regret per round falls as the policy learns: the last quarter costs far less than the first
    first, last = per_round[: rounds // 4].mean(), per_round[-rounds // 4 :].mean()
    assert last < 0.6 * first, (first, last)
    # concave cumulative regret: the second half adds less than the first half did
    assert cumulative[-1] - cumulative[rounds // 2 - 1] < cumulative[rounds // 2 - 1]
    assert cumulative[-1] < 0.25 * uniform_regret_per_round * rounds


def test_discounted_ucb_tracks_a_switch_of_the_best_arm():
    switched = MEANS[[2, 1, 0, 3]]  # arm 2 is best for 1500 rounds, then arm 0 is

    def means_at(t):
        return MEANS if t < 1500 else switched

    for seed in range(2):
        arms, _ = play(DiscountedUCB(4, gamma=0.98, xi=0.6, reward_bound=0.25, seed=seed), means_at, 2000, seed)
        assert np.mean(arms[1300:1500] == 2) > 0.6  # it had settled on the first best arm
        assert np.mean(arms[1600:] == 0) > 0.6  # and moved to the new one within ~100 rounds


def test_discounted_ucb_statistics_match_a_hand_computation():
    policy = DiscountedUCB(3, gamma=0.5, xi=0.6, reward_bound=2.0)
    for arm, reward in [(0, 1.0), (1, -0.5), (0, 0.25), (2, 0.75)]:
        policy.update(arm, reward)
    # N_0 = 0.5^3 + 0.5^1, S_0 = 1 * 0.5^3 + 0.25 * 0.5; N_1 = 0.5^2, S_1 = -0.5 * 0.25; N_2 = 1, S_2 = 0.75
    assert policy.discounted_counts == pytest.approx([0.625, 0.25, 1.0])
    assert policy.discounted_sums == pytest.approx([0.25, -0.125, 0.75])
    total = 1.875
    expected = [
        s / n + 2 * 2.0 * math.sqrt(0.6 * math.log(total) / n)
        for n, s in zip([0.625, 0.25, 1.0], [0.25, -0.125, 0.75])
    ]
    assert policy.indices() == pytest.approx(expected)
    assert policy.select() == int(np.argmax(expected))


def test_every_arm_is_tried_before_any_is_repeated():
    for name in ("ducb", "swucb", "ucb1", "epsilon_greedy"):
        policy = make_bandit(name, 5, seed=3)
        chosen = []
        for _ in range(5):
            arm = policy.select()
            policy.update(arm, 0.0)
            chosen.append(arm)
        assert sorted(chosen) == list(range(5)), name


@pytest.mark.parametrize("name", sorted(POLICIES))
def test_state_round_trips_through_json_and_continues_identically(name):
    policy = POLICIES[name](7)
    play(policy, lambda t: MEANS, 50)
    clone = POLICIES[name](123)  # a different seed: everything must come from the state
    clone.load_state_dict(json.loads(json.dumps(policy.state_dict())))
    arms_a, _ = play(policy, lambda t: MEANS, 100, seed=5)
    arms_b, _ = play(clone, lambda t: MEANS, 100, seed=5)
    assert arms_a.tolist() == arms_b.tolist()
    assert policy.state_dict() == clone.state_dict()


def test_same_seed_same_choices_different_seed_differs():
    def run(seed):
        return play(GaussianThompsonSampling(4, seed=seed), lambda t: MEANS, 200)[0].tolist()

    assert run(1) == run(1)
    assert run(1) != run(2)


def test_bad_arguments_are_rejected_with_the_argument_named():
    with pytest.raises(ValueError, match="num_arms"):
        DiscountedUCB(0)
    with pytest.raises(ValueError, match="gamma"):
        DiscountedUCB(3, gamma=1.5)
    with pytest.raises(ValueError, match="xi"):
        DiscountedUCB(3, xi=0)
    with pytest.raises(ValueError, match="window"):
        SlidingWindowUCB(3, window=0)
    with pytest.raises(ValueError, match="epsilon"):
        EpsilonGreedy(3, epsilon=2)
    with pytest.raises(ValueError, match="reward must be finite"):
        UCB1(3).update(0, float("nan"))
    with pytest.raises(ValueError, match="arm must be"):
        UCB1(3).update(3, 0.0)
    with pytest.raises(ValueError, match="bandit must be one of"):
        make_bandit("nope", 3)
    with pytest.raises(TypeError, match="bad bandit_kwargs for 'ducb'"):
        make_bandit("ducb", 3, window=4)
    with pytest.raises(ValueError, match="keys"):
        UCB1(3).load_state_dict({"rounds": 0})


def test_a_user_policy_plugs_in_by_name():
    class AlwaysLast(BanditPolicy):
        name = "always_last_test"

        def select(self):
            return self.num_arms - 1

        def update(self, arm, reward):
            self._check_update(arm, reward)

    register_bandit(AlwaysLast)
    try:
        assert make_bandit("always_last_test", 4).select() == 3
        with pytest.raises(ValueError, match="already registered"):
            register_bandit(type("Other", (AlwaysLast,), {}))
    finally:
        BANDITS.pop("always_last_test")
