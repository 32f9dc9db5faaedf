"""The CRAFTMaps benchmark's bookkeeping: equal-time interpolation, exact settings, the published-map comparison."""

import math

import pytest

from hf_eff.bench import craftmaps as bench


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
