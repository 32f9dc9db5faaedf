"""The monotone dynamic program, the linear-cost coarse-to-fine matcher and windowed vs brute-force matching."""

import itertools

import numpy as np
import pytest

from hf_eff.video.matching import (
    coarse_to_fine_path,
    full_descriptor_path,
    match_frames,
    monotone_path,
)


def _exhaustive(costs, max_step, max_back):
    """Best path by enumerating every allowed path (tiny problems only)."""
    n, m = costs.shape
    best, best_path = np.inf, None
    for path in itertools.product(range(m), repeat=n):
        steps = np.diff(path)
        if (steps <= max_step).all() and (steps >= -max_back).all():
            total = costs[np.arange(n), path].sum()
            if total < best:
                best, best_path = total, path
    return best, np.array(best_path)


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize(("max_step", "max_back"), [(1, 0), (2, 1), (3, 0)])
def test_monotone_path_is_the_exact_optimum(seed, max_step, max_back):
    costs = np.random.default_rng(seed).random((5, 6))
    path = monotone_path(list(costs), np.zeros(5, np.int64), max_step=max_step, max_back=max_back)
    steps = np.diff(path)
    assert (steps <= max_step).all() and (steps >= -max_back).all()
    best, _ = _exhaustive(costs, max_step, max_back)
    assert costs[np.arange(5), path].sum() == pytest.approx(best)


def test_monotone_path_jumps_when_the_band_loses_the_path():
    # row 1's band does not connect to row 0's: the path must still be defined and inside each band
    costs = [np.array([0.0, 1.0]), np.array([1.0, 0.0])]
    path = monotone_path(costs, np.array([0, 10]), max_step=1, max_back=0)
    assert path.tolist() == [0, 11]


def _smooth_descriptors(n, m, rng, warp=0.3, noise=0.02):
    """Descriptors of a 1-D 'scene' seen along a path; the foreground pass is time-warped. Returns truth too."""
    basis = rng.standard_normal((64, 8))
    u = np.linspace(0, 1, n)
    s_f = np.clip(u + warp * 0.6 * np.sin(np.pi * u) * 0.5, 0, 1)
    s_b = np.linspace(0, 1, m)

    phase = rng.uniform(0, 2 * np.pi, 8)

    def describe(s):
        x = np.cos(2 * np.pi * np.outer(s, np.arange(1, 9)) + phase) @ basis.T
        x = x + noise * rng.standard_normal(x.shape)
        x -= x.mean(axis=1, keepdims=True)
        return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)

    truth = np.abs(s_b[None] - s_f[:, None]).argmin(axis=1)
    return describe(s_f), describe(s_b), truth


def test_coarse_to_fine_matches_the_full_search_with_linear_cost():
    rng = np.random.default_rng(0)
    comparisons = {}
    for n in (200, 400, 800):
        f, b, truth = _smooth_descriptors(n, int(1.2 * n), rng)
        fast = coarse_to_fine_path(f, b, radius=3)
        full = full_descriptor_path(f, b)
        assert np.mean(fast.path == full.path) > 0.95
        assert np.abs(fast.path - truth).max() <= max(2, 0.01 * n)
        assert full.comparisons == n * int(1.2 * n)
        comparisons[n] = fast.comparisons
    # doubling the length roughly doubles the work (linear), far from the 4x of the full search
    assert comparisons[800] / comparisons[400] < 2.4
    assert comparisons[400] / comparisons[200] < 2.4
    assert comparisons[800] < 0.05 * 800 * 960


def test_windowed_matching_verifies_only_a_window_and_agrees_with_brute_force():
    rng = np.random.default_rng(1)
    f, b, truth = _smooth_descriptors(30, 36, rng)
    # a verification whose cost is smallest at the true viewpoint (like the alignment residual)
    calls = []

    def verify(i, j):
        calls.append((i, j))
        return abs(j - truth[i]) + 0.1 * rng.random()

    windowed = match_frames(f, b, verify, window=2)
    assert windowed.verifications == len(calls) <= 30 * 5
    assert all(abs(j - windowed.coarse_path[i]) <= 2 for i, j in calls)
    calls.clear()
    brute = match_frames(f, b, verify, strategy="brute-force")
    assert brute.verifications == len(calls) == 30 * 36
    np.testing.assert_array_equal(windowed.matches, truth)
    np.testing.assert_array_equal(brute.matches, truth)


def test_rows_that_cannot_be_verified_fall_back_to_the_descriptor_match():
    rng = np.random.default_rng(2)
    f, b, _ = _smooth_descriptors(12, 15, rng)
    never = match_frames(f, b, lambda i, j: float("inf"))
    np.testing.assert_array_equal(never.matches, never.coarse_path)
    brute = match_frames(f, b, lambda i, j: float("inf"), strategy="brute-force")
    np.testing.assert_array_equal(brute.matches, brute.coarse_path)


def test_bad_matching_arguments():
    f = np.ones((3, 4), np.float32) / 2
    with pytest.raises(ValueError, match="strategy"):
        match_frames(f, f, strategy="greedy")
    with pytest.raises(ValueError, match="radius and window"):
        match_frames(f, f, window=-1)
    with pytest.raises(ValueError, match="max_step"):
        monotone_path([np.zeros(2)], np.zeros(1, np.int64), max_step=-1)
