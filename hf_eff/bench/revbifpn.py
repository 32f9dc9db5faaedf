"""Training memory and step time of reversible RevBiFPN vs the same network storing activations, and vs
``torch.utils.checkpoint`` on the same network (one checkpoint per reversible op and per neck/head level).

- **Real peak** (the headline): the most bytes PyTorch's allocator holds during one training step (forward +
  backward, batch 2), above what it held before the step, so parameters and their gradient buffers are excluded
  (:class:`~hf_eff.bench.meters.PeakAllocationMeter`, profiler memory events). Each mode of each setting runs
  in a fresh single-threaded process.
- **Saved for backward**: the bytes autograd keeps between forward and backward (parameters excluded, tensors
  custom Functions keep on their ``ctx`` included). Machine-independent, but it misses every transient buffer of
  backward, which is why it is the second column.
- **Max batch at a fixed real-peak budget**: the largest batch whose training step stays within the budget,
  searched per mode in that process (guesses from the measured peaks; a batch that fits and a next one that
  does not confirm it). This is what a user gains.
- **Step time** relative to storing: one thread, interleaved rounds, median of the per-round ratios; printed only
  when the rounds agree (a loaded machine gives no number rather than a wrong one).
"""

import json
import os
import statistics
import subprocess
import sys
import time

import torch
from torch.utils.checkpoint import checkpoint

from hf_eff.bench.meters import PeakAllocationMeter, SavedTensorsMeter, single_thread
from hf_eff.bench.registry import BenchSettings, benchmark
from hf_eff.bench.report import BenchReport, Headline
from hf_eff.models.revbifpn import RevBiFPNConfig, RevBiFPNForImageClassification


MODES = ("storing", "reversible", "checkpoint")
MEMORY_BATCH = 2
MiB = 2**20
QUICK = {
    "peaks": (("s0", 96),),
    "depths": (),
    "depth_resolution": 96,
    "budget": ("s0", 96, 24 * MiB),
    "timed": (("s0", 96, 2),),
    "rounds": 4,
}
FULL = {
    "peaks": (("s0", 128), ("s0", 224), ("s0", 320), ("s3", 288)),
    "depths": (0, 2, 4, 6),
    "depth_resolution": 224,
    "budget": ("s3", 288, 2048 * MiB),
    "timed": (("s0", 224, 4), ("s3", 288, 2)),
    "rounds": 7,
}
# largest relative spread of the per-round step-time ratios for the median to be reported
TIMING_SPREAD_LIMIT = 0.25


def _model(variant: str, seed: int, **overrides) -> RevBiFPNForImageClassification:
    torch.manual_seed(seed)
    model = RevBiFPNForImageClassification(RevBiFPNConfig.from_variant(variant, **overrides)).train()
    for p in model.parameters():
        p.grad = torch.zeros_like(p)  # gradient buffers exist before a measured step, as from the second step on
    return model


def _checkpointed_loss(model: RevBiFPNForImageClassification, pixel_values, labels) -> torch.Tensor:
    """Storing mode, with ``torch.utils.checkpoint`` around every reversible op and every neck/head level (the
    same pieces the reversible mode recomputes)."""
    base, head = model.revbifpn, model.head
    streams = (base._stack_input(pixel_values),)
    for op in base.encoder.ops:
        streams = checkpoint(op, *streams, use_reentrant=False)

    def level(index, y, fused):
        return head.fuse(index, base.neck[index](y) if base.neck is not None else y, fused)

    fused = None
    for index, y in enumerate(streams):
        fused = checkpoint(level, index, y, fused, use_reentrant=False)
    pooled = checkpoint(head.pool, fused, use_reentrant=False)
    return torch.nn.functional.cross_entropy(model.classifier(model.dropout(pooled)), labels)


def _loss_fn(model: RevBiFPNForImageClassification, mode: str):
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    model.set_reversible(mode == "reversible")
    if mode == "checkpoint":
        return lambda x, y: _checkpointed_loss(model, x, y)
    return lambda x, y: model(pixel_values=x, labels=y).loss


def _inputs(batch: int, resolution: int, seed: int, channels: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, channels, resolution, resolution, generator=generator)
    return x, torch.randint(0, 10, (batch,), generator=generator)


def step_peak(loss_fn, batch: int, resolution: int, seed: int, channels: int = 3) -> int:
    """Real peak of one training step: the most bytes allocated above what was allocated before it. Allocator
    bytes do not depend on what the process did before (a first step and a tenth give the same peak)."""
    x, y = _inputs(batch, resolution, seed, channels)
    with PeakAllocationMeter() as meter:
        loss_fn(x, y).backward()
    return meter.peak_bytes


def saved_bytes(model, loss_fn, batch: int, resolution: int, seed: int) -> int:
    x, y = _inputs(batch, resolution, seed, model.config.num_channels)
    with SavedTensorsMeter(exclude=list(model.parameters())) as meter:
        loss = loss_fn(x, y)
    meter.count_graph_held([loss])
    del loss
    return meter.bytes


def largest_batch(peak_of, budget: int, max_steps: int = 8) -> dict:
    """The largest batch whose step peak ``peak_of(batch)`` is within ``budget``, confirmed by measuring that it
    fits and the next batch does not. Peaks at batch 1, 2, 4, 8 (while they fit) fix the slope; then guesses
    come from the line through the two measured peaks nearest the budget."""
    peaks = {}
    for batch in (1, 2, 4, 8):
        peaks[batch] = peak_of(batch)
        if peaks[batch] > budget:
            break
    for _ in range(max_steps):
        fitting = sorted(b for b, p in peaks.items() if p <= budget)
        lo = fitting[-1] if fitting else 0
        hi = min((b for b, p in peaks.items() if p > budget), default=None)
        if lo == 0 or hi == lo + 1:
            return {"batch": lo, "peaks": peaks}
        b0, b1 = (lo, hi) if hi is not None else tuple(fitting[-2:])
        slope = max((peaks[b1] - peaks[b0]) / (b1 - b0), 1.0)
        guess = lo + int((budget - peaks[lo]) // slope)
        guess = max(guess, lo + 1) if hi is None else min(max(guess, lo + 1), hi - 1)
        peaks[guess] = peak_of(guess)
    return {"batch": None, "peaks": peaks}  # not confirmed within max_steps


def worker(spec: dict) -> dict:
    """One mode of one configuration, in a fresh process: real peak and saved bytes at ``batch``, and with a
    ``budget`` the largest batch whose step stays within it."""
    torch.set_num_threads(1)
    model = _model(spec["variant"], spec["seed"], **spec.get("overrides", {}))
    loss_fn = _loss_fn(model, spec["mode"])
    resolution, seed, channels = spec["resolution"], spec["seed"], model.config.num_channels
    result = {
        "peak_bytes": step_peak(loss_fn, spec["batch"], resolution, seed, channels),
        "saved_bytes": saved_bytes(model, loss_fn, spec["batch"], resolution, seed),
    }
    if "budget" in spec:
        result["budget_search"] = largest_batch(
            lambda b: step_peak(loss_fn, b, resolution, seed, channels), spec["budget"]
        )
    return result


def measure(spec: dict, timeout: float = 7200.0) -> dict | None:
    """:func:`worker` in a fresh single-threaded Python process; ``None`` if it failed (reported, not guessed)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    code = "import json, sys; from hf_eff.bench.revbifpn import worker; print(json.dumps(worker(json.loads(sys.argv[1]))))"
    try:
        done = subprocess.run(
            [sys.executable, "-c", code, json.dumps(spec)], capture_output=True, text=True, timeout=timeout, env=env
        )
    except subprocess.TimeoutExpired:
        return None
    if done.returncode != 0:
        return None
    result = json.loads(done.stdout.strip().splitlines()[-1])
    if "budget_search" in result:
        result["budget_search"]["peaks"] = {int(b): p for b, p in result["budget_search"]["peaks"].items()}
    return result


def _mib(n: int | None) -> float | None:
    return None if n is None else round(n / MiB, 1)


def _ratio(a, b) -> float | None:
    return None if a is None or b is None or not b else round(a / b, 1)


def _progress(total: int, description: str):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=description, leave=False)


def _measure_modes(variant: str, resolution: int, seed: int, bar, **extra) -> dict:
    """Every mode of one configuration, each in its own fresh process."""
    spec = {"variant": variant, "resolution": resolution, "batch": MEMORY_BATCH, "seed": seed, **extra}
    results = {}
    for mode in MODES:
        results[mode] = measure({**spec, "mode": mode})
        bar.update(1)
    return results


def _memory_rows(setting: str, results: dict) -> list[dict]:
    rows = []
    for name, key in (("real peak MiB", "peak_bytes"), ("saved for backward MiB", "saved_bytes")):
        values = {m: None if results[m] is None else results[m][key] for m in MODES}
        rows.append(
            {
                "measure": f"{name} (batch {MEMORY_BATCH})",
                "setting": setting,
                **{m: _mib(values[m]) for m in MODES},
                "storing / reversible": _ratio(values["storing"], values["reversible"]),
                "checkpoint / reversible": _ratio(values["checkpoint"], values["reversible"]),
            }
        )
    return rows


def step_time_ratios(variant: str, resolution: int, batch: int, seed: int, rounds: int) -> dict:
    """Each mode's step time over storing's: ``rounds`` interleaved rounds after a warm-up, one thread; the
    median per-round ratio, or ``None`` when the rounds spread more than :data:`TIMING_SPREAD_LIMIT`."""
    model = _model(variant, seed)
    x, y = _inputs(batch, resolution, seed)
    losses = {mode: _loss_fn(model, mode) for mode in MODES}  # each closure sets the mode when it runs

    def step(mode: str) -> float:
        _loss_fn(model, mode)
        start = time.perf_counter()
        losses[mode](x, y).backward()
        return time.perf_counter() - start

    for mode in MODES:
        step(mode)
    per_round = {mode: [] for mode in MODES}
    for _ in range(rounds):
        times = {mode: step(mode) for mode in MODES}
        for mode in MODES:
            per_round[mode].append(times[mode] / times["storing"])
    out = {}
    for mode in MODES:
        median = statistics.median(per_round[mode])
        spread = (max(per_round[mode]) - min(per_round[mode])) / median
        out[mode] = {"median": median, "spread": spread, "reliable": spread <= TIMING_SPREAD_LIMIT}
    return out


def _figure(peak_raw: dict, budget: int, budget_setting: str, depth_raw: dict):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    style = {
        "storing": {"color": "tab:red", "marker": "s", "linestyle": "-"},
        "reversible": {"color": "tab:blue", "marker": "o", "linestyle": "--"},
        "checkpoint": {"color": "tab:green", "marker": "^", "linestyle": ":"},
    }
    panels = 3 if depth_raw else 2
    fig, axes = plt.subplots(1, panels, figsize=(5.2 * panels, 4.2))
    s0 = {int(k.split("/")[1]): v for k, v in peak_raw.items() if k.startswith("S0/")}
    for mode in MODES:
        points = sorted((r, v[mode]["peak_bytes"] / MiB) for r, v in s0.items() if v[mode] is not None)
        if points:
            axes[0].plot(*zip(*points), label=mode, **style[mode])
    axes[0].set(xlabel="input resolution (px)", ylabel="real peak of a training step (MiB)", yscale="log")
    axes[0].set_title(f"RevBiFPN-S0, batch {MEMORY_BATCH}")
    for mode in MODES:
        search = (peak_raw[budget_setting][mode] or {}).get("budget_search")
        if search:
            axes[1].plot(*zip(*sorted((b, p / MiB) for b, p in search["peaks"].items())), label=mode, **style[mode])
    axes[1].axhline(budget / MiB, color="black", linewidth=1, label=f"budget {budget / MiB:.0f} MiB")
    axes[1].set(xlabel="batch size", ylabel="real peak of a training step (MiB)", xscale="log", yscale="log")
    axes[1].set_title(f"batch sizes measured by the search ({budget_setting})")
    if depth_raw:
        for mode in MODES:
            points = sorted((n, v[mode]["peak_bytes"] / MiB) for n, v in depth_raw.items() if v[mode] is not None)
            if points:
                axes[2].plot(*zip(*points), label=mode, **style[mode])
        axes[2].set(xlabel="number of RevSilos", ylabel="real peak of a training step (MiB)", yscale="log")
        axes[2].set_title(f"RevBiFPN-S0 depth, batch {MEMORY_BATCH}")
    for ax in axes:
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=9)
    fig.tight_layout()
    return fig


@benchmark("revbifpn", summary="real training-step peak memory of reversible vs storing RevBiFPN (and checkpointing)")
def run(settings: BenchSettings) -> BenchReport:
    config = QUICK if settings.quick else FULL
    seed = settings.seed
    budget_config, budget = config["budget"][:2], config["budget"][2]
    budget_setting = f"{budget_config[0].upper()}/{budget_config[1]}"
    if budget_config not in config["peaks"]:
        raise ValueError(f"the budget setting {budget_config} must be one of the measured settings {config['peaks']}")
    total = 3 * (len(config["peaks"]) + len(config["depths"]))
    rows, peak_raw, depth_raw = [], {}, {}
    with _progress(total, "revbifpn: one fresh process per mode and setting") as bar:
        for variant, resolution in config["peaks"]:
            extra = {"budget": budget} if (variant, resolution) == budget_config else {}
            setting = f"{variant.upper()}/{resolution}"
            peak_raw[setting] = _measure_modes(variant, resolution, seed, bar, **extra)
            rows += _memory_rows(setting, peak_raw[setting])
        for extra_silos in config["depths"]:
            overrides = {"num_extra_silos": extra_silos}
            depth_raw[3 + extra_silos] = _measure_modes(
                "s0", config["depth_resolution"], seed, bar, overrides=overrides
            )
    searches = {m: (peak_raw[budget_setting][m] or {}).get("budget_search") for m in MODES}
    batches = {m: None if searches[m] is None else searches[m]["batch"] for m in MODES}
    rows.append(
        {
            "measure": f"max batch within {budget / MiB:.0f} MiB real peak",
            "setting": budget_setting,
            **batches,
            "storing / reversible": _ratio(batches["reversible"], batches["storing"]),
            "checkpoint / reversible": _ratio(batches["reversible"], batches["checkpoint"]),
        }
    )
    timings = {}
    with single_thread():
        for variant, resolution, batch in config["timed"]:
            timings[(variant, resolution, batch)] = step_time_ratios(
                variant, resolution, batch, seed, config["rounds"]
            )
    for (variant, resolution, batch), result in timings.items():
        rows.append(
            {
                "measure": f"step time vs storing (batch {batch})",
                "setting": f"{variant.upper()}/{resolution}",
                **{
                    m: round(r["median"], 2) if r["reliable"] else f"unreliable (spread {r['spread']:.0%})"
                    for m, r in result.items()
                },
            }
        )
    for silos, results in depth_raw.items():
        rows += _memory_rows(f"S0/{config['depth_resolution']}, {silos} silos", results)[:1]

    head_setting = "S0/224" if "S0/224" in peak_raw else next(iter(peak_raw))
    head_peaks = {
        m: None if peak_raw[head_setting][m] is None else peak_raw[head_setting][m]["peak_bytes"] for m in MODES
    }
    head_value = _ratio(head_peaks["storing"], head_peaks["reversible"])
    time_key = next(iter(timings))
    rev_time = timings[time_key]["reversible"]
    time_note = f"{rev_time['median']:.2f}x" if rev_time["reliable"] else "not measured reliably"
    notes = [
        "real peak: the most bytes PyTorch's allocator holds during one training step (forward + backward) above "
        "what it held before it (parameters and gradient buffers excluded), from profiler memory events, each mode "
        "and setting in a fresh single-threaded process.",
        "saved for backward: bytes autograd keeps from forward to backward, parameters excluded, tensors kept on "
        "custom Functions' ctx included; it misses backward's transient buffers, so it is not the headline.",
        "checkpoint: torch.utils.checkpoint (non-reentrant) around every reversible op and every neck/head level "
        "of the same network, storing mode.",
        "max batch: in the same fresh process (allocator bytes do not depend on the process's history), peaks at "
        "batch 1, 2, 4, 8 and then at secant guesses until a batch fits and the next one does not; empty when "
        "not confirmed.",
        f"step time: {config['rounds']} interleaved rounds after a warm-up, one thread, median of the per-round "
        f"ratios; shown only when the rounds spread less than {TIMING_SPREAD_LIMIT:.0%} (a loaded machine).",
    ]
    return BenchReport(
        method="revbifpn",
        title="RevBiFPN: real training-step peak memory, reversible vs storing activations vs checkpointing",
        rows=rows,
        headline=Headline(
            better="higher",
            effect=f"real training-step peak memory saved (RevBiFPN-{head_setting} px, batch {MEMORY_BATCH})",
            baseline="same network storing activations",
            value=float("nan") if head_value is None else head_value,
            unit="x",
            note=f"step time {time_note} at {time_key[0].upper()}/{time_key[1]}; max batch within "
            f"{budget / MiB:.0f} MiB at {budget_setting}: {batches['reversible']} reversible vs "
            f"{batches['storing']} storing",
        ),
        notes=notes,
        meta={
            "size": settings.size,
            "seed": seed,
            "batch_memory": MEMORY_BATCH,
            "peaks": [list(c) for c in config["peaks"]],
            "depths_extra_silos": list(config["depths"]),
            "budget": [*budget_config, budget],
            "budget_search": searches,
            "timed": [list(t) for t in config["timed"]],
            "timing": {f"{v}@{r}/b{b}": t for (v, r, b), t in timings.items()},
            "torch_threads_used": 1,
        },
        figures={"memory": _figure(peak_raw, budget, budget_setting, depth_raw)},
    )
