"""Plots: every series distinct in colour and marker, legends readable. The tour: a live line inside long work."""

import threading
import time

import matplotlib.pyplot as plt  # the Agg backend: tests/conftest.py sets MPLBACKEND
from matplotlib.colors import to_rgba

from hf_eff.bench import BenchReport, write_report
from hf_eff.bench.runner import _heartbeat


def _report(figure) -> BenchReport:
    return BenchReport("demo", "Demo", rows=[{"a": 1}], figures={"curve": figure})


def test_series_sharing_a_colour_and_marker_come_out_distinct_with_a_readable_legend(tmp_path):
    figure, (shared, distinct) = plt.subplots(1, 2)
    for mode, style in (("storing", "-"), ("reversible", "--"), ("checkpoint", ":")):  # one model, one colour
        shared.plot([1, 2, 3], [1, 2, 3], style, color="C0", marker="o", label=f"S0 {mode}")
    shared.legend(fontsize=5)
    for index in range(8):  # a long legend
        distinct.plot([1, 2], [index, index + 1], color=f"C{index}", marker="os^Dv<>p"[index], label=f"series {index}")
    distinct.legend()
    chosen = [to_rgba(line.get_color()) for line in distinct.get_lines()]
    write_report(_report(figure), tmp_path)

    lines = shared.get_lines()
    assert len({to_rgba(line.get_color()) for line in lines}) == 3
    assert len({line.get_marker() for line in lines}) == 3
    assert [line.get_linestyle() for line in lines] == ["-", "--", ":"]  # the benchmark's line styles stay
    legend = shared.get_legend()
    assert all(text.get_fontsize() >= 8 for text in legend.get_texts())
    assert [to_rgba(h.get_color()) for h in legend.legend_handles] == [to_rgba(line.get_color()) for line in lines]
    assert [to_rgba(line.get_color()) for line in distinct.get_lines()] == chosen  # already distinct: kept
    assert distinct.get_legend().get_bbox_to_anchor().x0 > distinct.bbox.x1 - 1  # 8 entries: beside the axes


class _Bar:
    def __init__(self):
        self.postfixes = []

    def set_postfix_str(self, text):
        self.postfixes.append(text)


def test_the_tour_bar_shows_the_running_method_and_its_time_until_it_ends():
    bar = _Bar()
    with _heartbeat(bar, "craftmaps", every=0.05):
        time.sleep(0.4)
    ticks = len(bar.postfixes)
    assert ticks >= 4 and all(text.startswith("craftmaps: ") and text.endswith(" s") for text in bar.postfixes)
    time.sleep(0.2)
    assert len(bar.postfixes) == ticks  # stopped with the method
    assert not any(thread.name.startswith("hf-eff tour") for thread in threading.enumerate())
