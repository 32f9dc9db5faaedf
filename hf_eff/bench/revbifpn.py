"""Training memory and step time of reversible RevBiFPN vs the same network storing activations, and vs
``torch.utils.checkpoint`` (one checkpoint per reversible op, neck and head included) on the same network.

Memory is the bytes autograd saves for backward during one training forward (parameters excluded; a
machine-independent measure of activation memory) and, in addition, the peak RSS growth over one training step.
Step time is measured interleaved in one process, single-threaded (stable ratios on a shared CPU).
"""

import math
from collections.abc import Callable

import torch
from torch.utils.checkpoint import checkpoint

from hf_eff.bench.meters import PeakRSSMeter, SavedTensorsMeter, compare_timings, release_free_memory, single_thread
from hf_eff.bench.registry import BenchSettings, benchmark
from hf_eff.bench.report import BenchReport, Headline
from hf_eff.models.revbifpn import RevBiFPNConfig, RevBiFPNForImageClassification


MODES = ("storing", "reversible", "checkpoint")
# the official implementation measured on this CPU (bytes saved for backward, batch 2; time at S0/224, batch 4)
OFFICIAL = {"s0@224": 11.7, "s3@288": 14.7, "step_time_s0@224": 1.39}


def _checkpointed_loss(model: RevBiFPNForImageClassification, pixel_values, labels) -> torch.Tensor:
    """The same network, storing mode, with a checkpoint around every reversible op and around neck + head."""
    base = model.revbifpn
    streams = (base._stack_input(pixel_values),)
    for op in base.encoder.ops:
        streams = checkpoint(op, *streams, use_reentrant=False)

    def neck_and_head(*xs):
        return model.head(*(base.neck(*xs) if base.neck is not None else xs))

    pooled = checkpoint(neck_and_head, *streams, use_reentrant=False)
    logits = model.classifier(model.dropout(pooled))
    return torch.nn.functional.cross_entropy(logits, labels)


def _loss_fn(model: RevBiFPNForImageClassification, mode: str) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    if mode == "checkpoint":
        model.set_reversible(False)
        return lambda x, y: _checkpointed_loss(model, x, y)
    model.set_reversible(mode == "reversible")
    return lambda x, y: model(pixel_values=x, labels=y).loss


def _inputs(batch: int, resolution: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(batch, 3, resolution, resolution, generator=generator), torch.randint(
        0, 1000, (batch,), generator=generator
    )


def saved_bytes(model: RevBiFPNForImageClassification, mode: str, batch: int, resolution: int, seed: int) -> int:
    x, y = _inputs(batch, resolution, seed)
    loss_fn = _loss_fn(model, mode)
    with SavedTensorsMeter(exclude=list(model.parameters())) as meter:
        loss = loss_fn(x, y)
    del loss
    return meter.bytes


def peak_rss(model: RevBiFPNForImageClassification, mode: str, batch: int, resolution: int, seed: int) -> int | None:
    x, y = _inputs(batch, resolution, seed)
    loss_fn = _loss_fn(model, mode)
    model.zero_grad(set_to_none=False)  # gradient buffers exist before the measurement in every mode
    release_free_memory()
    with PeakRSSMeter() as meter:
        loss_fn(x, y).backward()
    return meter.peak_bytes


def _model(variant: str, seed: int, **overrides) -> RevBiFPNForImageClassification:
    torch.manual_seed(seed)
    model = RevBiFPNForImageClassification(RevBiFPNConfig.from_variant(variant, **overrides)).train()
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    return model


def _mb(n: int | None) -> float:
    return float("nan") if n is None else round(n / 2**20, 2)


def _figure(rows: list[dict], depth_rows: list[dict]):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    styles = {"storing": "-", "reversible": "--", "checkpoint": ":"}
    for color, variant in enumerate(dict.fromkeys(r["variant"] for r in rows)):
        vrows = [r for r in rows if r["variant"] == variant]
        for mode in MODES:
            left.plot(
                [r["resolution"] for r in vrows],
                [r[f"{mode}_MiB"] for r in vrows],
                styles[mode],
                color=f"C{color}",
                marker="o",
                label=f"{variant.upper()} {mode}",
            )
    left.set(xlabel="input resolution (px)", ylabel="bytes saved for backward (MiB)", yscale="log")
    left.set_title("activation memory vs resolution (batch 2)")
    left.legend(fontsize=7, ncol=2)
    for mode in MODES:
        right.plot(
            [r["silos"] for r in depth_rows],
            [r[f"{mode}_MiB"] for r in depth_rows],
            styles[mode],
            marker="o",
            label=mode,
        )
    right.set(xlabel="number of RevSilos", ylabel="bytes saved for backward (MiB)")
    right.set_title(f"activation memory vs depth (S0, {depth_rows[0]['resolution']} px)")
    right.legend()
    fig.tight_layout()
    return fig


QUICK = {
    "grid": {"s0": (128, 224)},
    "depth_resolution": 128,
    "depths": (0, 2, 4),
    "timed": (("s0", 224, 2),),
    "repeats": 3,
}
FULL = {
    "grid": {"s0": (128, 224, 320), "s1": (128, 256), "s2": (128, 256), "s3": (128, 288)},
    "depth_resolution": 224,
    "depths": (0, 1, 2, 4, 6),
    "timed": (("s0", 224, 4), ("s3", 288, 2)),
    "repeats": 5,
}
MEMORY_BATCH = 2


def _memory_rows(grid: dict, seed: int, quick: bool) -> list[dict]:
    """Bytes saved for backward per mode at every (variant, resolution) of the grid; peak RSS where affordable."""
    rows = []
    for variant, resolutions in grid.items():
        model = _model(variant, seed)
        for resolution in resolutions:
            row = {"variant": variant, "resolution": resolution, "batch": MEMORY_BATCH}
            measured = {mode: saved_bytes(model, mode, MEMORY_BATCH, resolution, seed) for mode in MODES}
            for mode in MODES:
                row[f"{mode}_MiB"] = _mb(measured[mode])
            row["ratio_vs_storing"] = round(measured["storing"] / measured["reversible"], 1)
            row["ratio_vs_checkpoint"] = round(measured["checkpoint"] / measured["reversible"], 1)
            official = OFFICIAL.get(f"{variant}@{resolution}")
            row["official_ratio"] = official if official is not None else ""
            if not quick or resolution == max(resolutions):
                rss = {mode: peak_rss(model, mode, MEMORY_BATCH, resolution, seed) for mode in MODES}
                row["peak_rss_storing_MiB"] = _mb(rss["storing"])
                row["peak_rss_reversible_MiB"] = _mb(rss["reversible"])
            rows.append(row)
        del model
    return rows


def _depth_rows(depths: tuple[int, ...], resolution: int, seed: int) -> list[dict]:
    """Saved bytes of RevBiFPN-S0 with extra RevSilos: reversible memory should not grow with depth."""
    rows = []
    for extra in depths:
        model = _model("s0", seed, num_extra_silos=extra)
        measured = {mode: saved_bytes(model, mode, MEMORY_BATCH, resolution, seed) for mode in MODES}
        rows.append({"silos": 3 + extra, "resolution": resolution, **{f"{m}_MiB": _mb(measured[m]) for m in MODES}})
    return rows


def _step_time_ratios(timed, seed: int, repeats: int) -> dict[str, dict[str, float]]:
    """``"variant@resolution"`` -> training step time of each mode over storing's (interleaved, one thread)."""
    ratios = {}
    for variant, resolution, batch in timed:
        model = _model(variant, seed)
        x, y = _inputs(batch, resolution, seed)
        steps = {mode: _loss_fn(model, mode) for mode in MODES}

        def step(mode, model=model, steps=steps, x=x, y=y):
            def go():
                _loss_fn(model, mode)  # sets the model's mode (cheap)
                steps[mode](x, y).backward()

            return go

        result = compare_timings({mode: step(mode) for mode in MODES}, "storing", repeats=repeats, warmup=1)
        ratios[f"{variant}@{resolution}"] = {mode: result[mode].ratio for mode in MODES}
        del model
    return ratios


def _notes(depth_rows: list[dict], timings: dict, timed) -> list[str]:
    flat = len({r["reversible_MiB"] for r in depth_rows}) == 1
    return [
        "Memory: bytes saved for backward in one training forward (batch 2, parameters excluded); 'checkpoint' is "
        "torch.utils.checkpoint (non-reentrant) around every reversible op and around neck + head of the same network.",
        "Reversible mode stores the four final feature maps of the reversible body; the neck and the classification "
        "head's pyramid fusion are recomputed from them in backward.",
        f"Reversible memory is {'flat' if flat else 'NOT flat'} in depth: "
        + ", ".join(f"{r['silos']} silos: {r['reversible_MiB']} MiB" for r in depth_rows)
        + "; storing grows linearly.",
        "Step time (reversible / storing), single-threaded, interleaved: "
        + ", ".join(f"{v}@{r} batch {b}: {timings[f'{v}@{r}']['reversible']:.2f}x" for v, r, b in timed)
        + f". Official implementation: {OFFICIAL['step_time_s0@224']}x at S0/224 (batch 4).",
        f"Official implementation's memory ratios on this CPU: {OFFICIAL['s0@224']}x (S0/224), {OFFICIAL['s3@288']}x (S3/288).",
        "Peak RSS is the resident-memory growth over one training step (forward + backward, gradient buffers "
        "already allocated): it also holds transient buffers that no mode avoids (parameter gradients, the recompute "
        "of the neck/head and of one transform at a time, allocator slack), so its ratio is smaller than the "
        "saved-bytes ratio.",
        "Timings are from a shared, loaded CPU: ratios are meaningful, absolute times are not reported.",
    ]


@benchmark("revbifpn", summary="training memory of reversible vs activation-storing RevBiFPN (and checkpointing)")
def run(settings: BenchSettings) -> BenchReport:
    config = QUICK if settings.quick else FULL
    with single_thread():
        rows = _memory_rows(config["grid"], settings.seed, settings.quick)
        depth_rows = _depth_rows(config["depths"], config["depth_resolution"], settings.seed)
        timings = _step_time_ratios(config["timed"], settings.seed, config["repeats"])
    for row in rows:
        key = f"{row['variant']}@{row['resolution']}"
        if key in timings:
            row["step_time_reversible_x"] = round(timings[key]["reversible"], 3)
            row["step_time_checkpoint_x"] = round(timings[key]["checkpoint"], 3)
    headline_row = next(r for r in rows if r["variant"] == "s0" and r["resolution"] == 224)
    first_time = next(iter(timings))
    return BenchReport(
        method="revbifpn",
        title="RevBiFPN: training memory, reversible vs storing activations vs checkpointing",
        rows=rows,
        headline=Headline(
            better="higher",
            effect="activation memory saved (RevBiFPN-S0, 224 px)",
            baseline="same network storing activations",
            value=headline_row["ratio_vs_storing"],
            unit="x",
            note=f"step time {timings[first_time]['reversible']:.2f}x at {first_time}",
        ),
        notes=_notes(depth_rows, timings, config["timed"]),
        meta={
            "size": settings.size,
            "seed": settings.seed,
            "batch_memory": MEMORY_BATCH,
            "grid": {k: list(v) for k, v in config["grid"].items()},
            "depths_extra_silos": list(config["depths"]),
            "timed": [list(t) for t in config["timed"]],
            "repeats": config["repeats"],
            "torch_threads_used": 1,
            "official": OFFICIAL,
            "ratio_headline_isfinite": math.isfinite(headline_row["ratio_vs_storing"]),
        },
        figures={"memory_vs_resolution": _figure(rows, depth_rows)},
    )
