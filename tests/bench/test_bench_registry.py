import pytest

from hf_eff.bench import BenchReport, Headline, available_benchmarks, benchmark
from hf_eff.bench import registry as registry_module
from hf_eff.bench.runner import run_tour, select_benchmarks


@pytest.fixture
def demo_benchmark(monkeypatch):
    available_benchmarks()  # the real modules register in the real registry first, not in this test's copy
    monkeypatch.setattr(registry_module, "_BENCHMARKS", dict(registry_module._BENCHMARKS))

    @benchmark("zz-demo", summary="a demo")
    def run(settings):
        return BenchReport(
            "zz-demo", "Demo", rows=[{"seed": settings.seed}], headline=Headline("gain", "base", 2.0, better="higher")
        )

    @benchmark("zz-broken", summary="fails")
    def broken(settings):
        raise RuntimeError("boom")

    return run


def test_registered_benchmark_is_available_and_selectable(demo_benchmark):
    assert available_benchmarks()["zz-demo"].run is demo_benchmark
    assert [b.name for b in select_benchmarks(["zz-demo"])] == ["zz-demo"]
    with pytest.raises(ValueError, match="unknown method 'nope'"):
        select_benchmarks("nope")


def test_duplicate_names_are_refused(demo_benchmark):
    with pytest.raises(ValueError, match="already registered"):
        benchmark("zz-demo", summary="again")(lambda settings: None)


def test_tour_writes_a_table_and_survives_a_failing_method(demo_benchmark, tmp_path):
    rows = run_tour(seed=3, output_dir=tmp_path, only=["zz-demo", "zz-broken"])
    assert rows[0]["measured"] == "2x" and rows[0]["effect"] == "gain" and rows[0]["better"] == "higher"
    assert rows[1]["effect"] == "failed" and "boom" in rows[1]["measured"]
    assert "| better |" in (tmp_path / "tour.md").read_text().splitlines()[2]
    assert (tmp_path / "tour.md").exists() and (tmp_path / "zz-demo.json").exists()
    assert '"seed": 3' in (tmp_path / "zz-demo.json").read_text()
