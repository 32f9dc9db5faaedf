"""One look for every benchmark plot: each series told apart by colour AND marker, legends that can be read.

Benchmarks draw their own figures; :func:`hf_eff.bench.report.write_report` passes each through
:func:`distinguish_series` before saving it, so a plot whose series share a colour or a marker (say three memory
modes of one model drawn in that model's colour) still comes out with every series distinct. A benchmark's own
choices are kept where they already tell its series apart; line styles are never changed.
"""

from itertools import cycle


MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "<", ">", "h", "p")
LEGEND_FONTSIZE = 8
# a legend with more entries goes beside the axes, where it hides no data
MAX_LEGEND_ENTRIES_INSIDE = 6


def series_styles(count: int) -> list[dict[str, str]]:
    """``count`` distinct ``{"color", "marker"}`` pairs: tab10 colours (tab20 beyond ten) and filled markers."""
    import matplotlib

    colours = matplotlib.colormaps["tab10" if count <= 10 else "tab20"].colors
    return [
        {"color": colour, "marker": marker} for colour, marker, _ in zip(cycle(colours), cycle(MARKERS), range(count))
    ]


def distinguish_series(figure) -> None:
    """In every axes of ``figure``: give the labelled lines distinct colours and markers wherever two of them
    share one, and make the legend readable (font size 8 or more, outside the axes when it is long)."""
    for axes in figure.get_axes():
        lines = [line for line in axes.get_lines() if not line.get_label().startswith("_")]
        if not lines:
            continue
        from matplotlib.colors import to_rgba

        colours = [to_rgba(line.get_color()) for line in lines]
        markers = [str(line.get_marker()) for line in lines]
        if len(set(colours)) < len(lines) or len(set(markers)) < len(lines):
            for line, style in zip(lines, series_styles(len(lines))):
                line.set_color(style["color"])
                line.set_marker(style["marker"])
                line.set_markersize(max(line.get_markersize(), 5))
        legend = axes.get_legend()
        if legend is not None:
            _readable_legend(axes, legend, len(lines))


def _readable_legend(axes, legend, entries: int) -> None:
    fontsize = max(LEGEND_FONTSIZE, legend.get_texts()[0].get_fontsize() if legend.get_texts() else 0)
    title = legend.get_title().get_text() or None
    if entries > MAX_LEGEND_ENTRIES_INSIDE:
        axes.legend(fontsize=fontsize, title=title, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0)
    else:  # redrawn so that it shows the new colours and markers
        axes.legend(fontsize=fontsize, title=title, loc="best", framealpha=0.9)
