"""build_category_hierarchy: recovers planted coarse groups, overlap rule, targets, determinism, bad input."""

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from hf_eff import build_category_hierarchy


def _planted(group_sizes, per_class=40, seed=0):
    """Softmax outputs of a classifier that confuses classes within each planted group (and a little across)."""
    rng = np.random.default_rng(seed)
    group_of = np.repeat(np.arange(len(group_sizes)), group_sizes)
    probs, labels = [], []
    for j, group in enumerate(group_of):
        for _ in range(per_class):
            logits = rng.normal(0.0, 0.5, len(group_of))
            logits[group_of == group] += 2.0
            logits[j] += 1.5
            probs.append(np.exp(logits) / np.exp(logits).sum())
            labels.append(j)
    return np.array(probs), np.array(labels), group_of


@pytest.mark.parametrize("group_sizes", [[4, 4, 4], [6, 6, 6, 6, 6], [10] * 8])
@pytest.mark.parametrize("seed", [0, 1])
def test_recovers_planted_coarse_groups(group_sizes, seed):
    probs, labels, group_of = _planted(group_sizes, seed=seed)
    hierarchy = build_category_hierarchy(probs, labels, num_coarse=len(group_sizes), seed=seed)
    assert adjusted_rand_score(group_of, hierarchy.disjoint_labels()) >= 0.9


def test_affinity_propagation_picks_the_number_of_groups():
    probs, labels, group_of = _planted([6, 6, 6, 6, 6])
    hierarchy = build_category_hierarchy(probs, labels)  # num_coarse=None: official affinity propagation
    assert hierarchy.num_coarse == 5
    assert adjusted_rand_score(group_of, hierarchy.disjoint_labels()) >= 0.9


def test_overlap_rule_threshold_and_cap():
    probs, labels, _ = _planted([4, 4, 4])
    base = build_category_hierarchy(probs, labels, num_coarse=3, gamma=None)
    assert base.coarse_members == base.disjoint_members  # gamma=None: disjoint
    assert sorted(j for g in base.coarse_members for j in g) == list(range(12))
    gamma = 5.0
    expanded = build_category_hierarchy(probs, labels, num_coarse=3, gamma=gamma, max_size=None)
    threshold = 1.0 / (gamma * 3)
    for core, group in zip(expanded.disjoint_members, expanded.coarse_members):
        share = expanded.confusion[:, core].sum(axis=1)  # u_k(j)
        assert set(core) <= set(group)
        assert set(group) - set(core) == {j for j in range(12) if j not in core and share[j] >= threshold}
    capped = build_category_hierarchy(probs, labels, num_coarse=3, gamma=100.0, max_size=6)
    assert all(len(g) <= 6 for g in capped.coarse_members)
    assert any(len(g) > 4 for g in capped.coarse_members)


def test_targets_are_overlap_counted_image_shares():
    probs, labels, _ = _planted([4, 4, 4])
    counts = np.arange(1, 13) * 10
    hierarchy = build_category_hierarchy(probs, labels, num_coarse=3, class_counts=counts)
    weights = np.array([counts[g].sum() for g in hierarchy.coarse_members], dtype=float)
    assert hierarchy.coarse_targets == pytest.approx(list(weights / weights.sum()))


def test_deterministic_and_named():
    probs, labels, _ = _planted([3, 3, 4], seed=3)
    names = [f"class{j}" for j in range(10)]
    first = build_category_hierarchy(probs, labels, num_coarse=3, seed=7, class_names=names)
    second = build_category_hierarchy(probs, labels, num_coarse=3, seed=7, class_names=names)
    assert first.coarse_members == second.coarse_members and first.coarse_targets == second.coarse_targets
    assert first.member_names(expanded=False)[0][0] == "class0"
    kwargs = first.config_kwargs()
    assert kwargs["coarse_names"][0].startswith("class0")

    from hf_eff import HDCNNConfig

    config = HDCNNConfig(num_labels=10, **kwargs)  # the hierarchy is a valid model config
    assert config.coarse_members == first.coarse_members


@pytest.mark.parametrize(
    "probs, labels, kwargs, message",
    [
        (np.full((4, 3), 1 / 3), np.array([0, 1, 1, 0]), {}, r"classes \[2\] have no held-out sample"),
        (np.ones((4, 3)), np.array([0, 1, 2, 0]), {}, "must be probabilities"),
        (np.full((4, 3), 1 / 3), np.array([0, 1, 2]), {}, "labels must be 4 integer classes"),
        (np.full((4, 3), 1 / 3), np.array([0, 1, 2, 3]), {}, r"labels must be in \[0, 3\)"),
        (np.full((4, 3), 1 / 3), np.array([0, 1, 2, 0]), {"num_coarse": 4}, "num_coarse must be in"),
        (np.full((4, 3), 1 / 3), np.array([0, 1, 2, 0]), {"class_names": ["a"]}, "class_names has 1 names"),
    ],
)
def test_bad_input_raises_clear_errors(probs, labels, kwargs, message):
    with pytest.raises(ValueError, match=message):
        build_category_hierarchy(probs, labels, **kwargs)
