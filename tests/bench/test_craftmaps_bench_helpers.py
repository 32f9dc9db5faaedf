"""The CRAFTMaps benchmark's bookkeeping: equal-time interpolation, exact settings, the published-map comparison."""

import math

import numpy as np
import pytest
import torch

from hf_eff.bench import craftmaps as bench
from hf_eff.bench.registry import BenchSettings


def test_equal_time_interpolation_is_exact_on_a_power_law_and_flags_extrapolation():
    points = [(t, 2.0 * t**-0.5, e) for t, e in ((0.01, 64), (0.04, 256), (0.16, 1024))]
    value, where = bench._interpolate_log(points, 0.02)
    assert value == pytest.approx(2.0 * 0.02**-0.5) and where == "interpolated"
    assert bench._interpolate_log(points, 0.5)[1].startswith("extrapolated")


def test_summary_keeps_exact_settings_out_of_the_geometric_mean_and_counts_wins_against_the_published_map():
    rows = []
    for ours, sklearn, published in ((0.5, 1.0, 0.6), (0.0, 1.0, 0.2), (0.9, 1.0, 0.8)):
        row = {"dataset": "d", "setting": "s", "E": 64, bench.BASELINE: sklearn, bench.OURS: ours}
        row.update(
            {bench.OURS_SRHT: ours, bench.OLD: ours, bench.CTR: 1.0, bench.OURS_FAST: ours, bench.PEER: published}
        )
        row[bench.PEER_BEST] = published
        bench._add_ratios(row)
        rows.append(row)
    summary = bench._summary(rows)
    assert summary["exact"] == 1 and summary["n_random"] == 2
    assert summary["geometric_mean"] == pytest.approx(math.sqrt(0.5 * 0.9))
    assert (summary["wins_peer"], summary["with_peer"]) == (2, 3)  # an exact map beats any random one
    assert summary["worse_than_sklearn"] == []


def test_every_plotted_method_has_its_own_colour_and_marker():
    colours, markers = zip(*bench.STYLE.values())
    assert len(set(colours)) == len(colours) and len(set(markers)) == len(markers)


def test_accuracy_verdict_needs_the_confidence_interval_to_exclude_zero_and_few_seeds_widen_it():
    assert bench._verdict(-0.010, 0.004, n_seeds=30) == "lower"  # 2.5 standard errors below, t(29) = 2.05
    assert bench._verdict(-0.010, 0.004, n_seeds=3) == "within noise"  # t(2) = 4.30
    assert bench._verdict(0.010, 0.004, n_seeds=30) == "higher"
    assert bench._verdict(-0.005, 0.0, n_seeds=30) == "lower"  # the same loss on every seed
    assert bench._verdict(-0.5, float("nan"), n_seeds=1).startswith("undecided")


def test_paired_difference_cancels_what_both_methods_share_per_seed():
    split_difficulty = [0.80, 0.95, 0.70, 0.90]  # dominates each method's own spread
    ours = [d + 0.010 for d in split_difficulty]
    mean, error = bench._paired_difference(ours, split_difficulty)
    assert mean == pytest.approx(0.010) and error == pytest.approx(0.0, abs=1e-12)


def test_ridge_alpha_is_cross_validated_large_when_the_features_overfit_small_when_they_do_not():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 60)
    # 60 rows, 300 features: pure noise plus one weak signal column: alpha -> 0 interpolates the noise
    noisy = rng.standard_normal((60, 300))
    noisy[:, 0] += 0.5 * (2 * labels - 1)
    assert bench._ridge_alpha(noisy, labels, n_classes=2, seed=0) >= 1e-1
    # 600 rows, 70 / 30 classes, 3 features with a clean signal tiny in scale: alpha >= 1e-3 shrinks it below the
    # (unpenalised) intercept, which then predicts the majority class
    labels = (rng.random(600) < 0.3).astype(np.int64)
    clean = 1e-3 * np.column_stack([2 * labels - 1.0, rng.standard_normal((600, 2))])
    assert bench._ridge_alpha(clean, labels, n_classes=2, seed=0) <= 1e-4


def test_accuracy_goal_is_not_reached_when_a_cell_is_lower_and_names_every_negative_cell():
    settings = BenchSettings(size="quick")
    rows = []
    for e, diff, verdict in ((64, -1.0, "lower"), (256, -0.2, "within noise"), (1024, 0.5, "higher")):
        rows.append(
            {
                "dataset": "wine",
                "setting": "(x.y + 1)^3, LogisticRegression",
                "E": e,
                f"ours - {bench.BASELINE} (pp)": diff,
                f"standard error vs {bench.BASELINE} (pp)": 0.3,
                f"verdict vs {bench.BASELINE}": verdict,
            }
        )
    text = bench._accuracy_goal(settings, rows)
    assert text.startswith("NOT REACHED") and "1 of 3 cells lower, 1 higher" in text
    assert "E=64 -1.00" in text and "E=256 -0.20" in text and "E=1024" not in text
    assert bench._accuracy_goal(settings, rows[1:]).startswith("REACHED")


@pytest.mark.parametrize("h01", [True, False])  # False: one block on [x, sqrt(coef0)], one column wider
@pytest.mark.parametrize("part", ["factor_projections", "monomial_products"])
def test_up_projection_part_runs_every_block_of_its_kind_on_every_row_at_the_block_width(monkeypatch, h01, part):
    from hf_eff import CraftMapsSampler
    from hf_eff.random_features.explicit import ExplicitPolynomialFeatures
    from hf_eff.random_features.tensor_srht import ComplexTensorSRHT

    kind = ComplexTensorSRHT if part == "factor_projections" else ExplicitPolynomialFeatures
    x = np.random.default_rng(0).standard_normal((300, 64))
    feature_map = CraftMapsSampler(degree=3, coef0=1, n_components=64, h01=h01, batch_size=128).fit(x).feature_map_
    seen = []
    original = getattr(kind, part)
    monkeypatch.setattr(kind, part, lambda self, chunk: seen.append((id(self), chunk.shape)) or original(self, chunk))
    bench._up_projection_part(feature_map, torch.from_numpy(x), kind)()
    ups = [block.up for block in feature_map.blocks if isinstance(block.up, kind)]
    assert {key for key, _ in seen} == {id(up) for up in ups}
    assert bool(ups) == (h01 or kind is ComplexTensorSRHT)  # h01=False: a single TensorSRHT block, no exact one
    for up in ups:
        shapes = [shape for key, shape in seen if key == id(up)]
        assert sum(rows for rows, _ in shapes) == len(x) and {width for _, width in shapes} == {up.n_features_in}
