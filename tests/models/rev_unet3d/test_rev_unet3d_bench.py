"""Smoke test of the benchmark's measurement helpers (the benchmark itself reports, it does not assert)."""

import pytest

from hf_eff.bench.rev_unet3d import _base_settings, _spec, measure_peak, saved_bytes


@pytest.mark.slow  # two fresh Python processes
def test_peak_is_measured_in_a_fresh_process_and_saved_bytes_are_level_bound():
    base = _base_settings(quick=True)
    result = measure_peak(_spec(base, reversible=True, size=16))
    assert "error" not in result, result
    assert result["peak_bytes"] is not None and result["peak_bytes"] > 0 and result["params"] > 0
    assert saved_bytes(base, True, 16, blocks=1) == saved_bytes(base, True, 16, blocks=3)
    assert saved_bytes(base, False, 16, blocks=3) > saved_bytes(base, False, 16, blocks=1)
