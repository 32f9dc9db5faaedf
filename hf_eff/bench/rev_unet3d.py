"""Training memory of the reversible 3D U-Net vs the same network storing activations (and MONAI baselines).

The paper's claim (Pendse et al. 2020, abstract): at the same memory, reversible MBConv blocks allow ~3x larger
volumes, 25% more depth or 2x more channels. Here memory is measured two ways:

- **bytes saved for backward** (``SavedTensorsMeter``, parameters excluded): machine-independent activation memory;
- **real peak** of one training step (forward + backward, gradient buffers allocated, after one warm-up step):
  the growth of the peak resident set size, each configuration in a **fresh subprocess** (single thread) so
  that allocator state of earlier runs cannot leak in. This is the headline: transient buffers (recomputed
  transform activations, gradients, the loss) count here and not in saved bytes.

At a fixed real-peak budget (the storing network's peak at the base configuration) each axis is searched on a
ladder: the largest cubic crop, the most blocks per level and the largest width multiplier whose step still fits,
for reversible and storing modes. MONAI's ``SegResNet`` and ``UNet`` (storing activations, similar parameter
count) are measured on the size axis when MONAI is installed. Step time is the reversible / storing ratio,
single-threaded and interleaved. Dice is measured after a short training on the real MNI152 tissue volume
(nilearn) for both modes.
"""

import json
import math
import os
import subprocess
import sys

import torch

from hf_eff.bench import (
    BenchReport,
    BenchSettings,
    Headline,
    PeakRSSMeter,
    SavedTensorsMeter,
    benchmark,
    compare_timings,
    release_free_memory,
    single_thread,
)


PAPER = {"volume_x": 3.0, "depth_x": 1.25, "width_x": 2.0}


def _base_settings(quick: bool) -> dict:
    """The base network of the memory study (BraTS input: 4 modalities, WT/TC/ET regions)."""
    if quick:
        return {"channels": [8, 16, 32], "blocks": 2, "expand_ratio": 4.0, "norm_groups": 2}
    return {"channels": [8, 16, 32, 64], "blocks": 2, "expand_ratio": 4.0, "norm_groups": 2}


def _config_kwargs(base: dict, size: int, blocks: int | None = None, width: float = 1.0) -> dict:
    blocks = base["blocks"] if blocks is None else blocks
    levels = len(base["channels"])
    return {
        "channels": base["channels"],
        "encoder_depths": [blocks] * levels,
        "decoder_depths": [blocks] * (levels - 1),
        "expand_ratio": base["expand_ratio"],
        "norm_groups": base["norm_groups"],
        "width_multiplier": width,
        "crop_size": [size] * 3,
    }


def _inputs(batch: int, size: int, in_channels: int = 4, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, in_channels, size, size, size, generator=generator)
    labels = torch.tensor([0, 1, 2, 4])[torch.randint(0, 4, (batch, size, size, size), generator=generator)]
    return x, labels


def _build(spec: dict):
    """(model, loss_fn(x, labels)) for a worker spec: our U-Net (either mode) or a MONAI baseline."""
    from hf_eff.models.rev_unet3d import RevUNet3DConfig, RevUNet3DForSemanticSegmentation
    from hf_eff.models.rev_unet3d.labels_rev_unet3d import label_map_to_regions
    from hf_eff.models.rev_unet3d.loss_rev_unet3d import soft_dice_loss

    torch.manual_seed(0)
    if spec["kind"] == "rev_unet3d":
        model = RevUNet3DForSemanticSegmentation(RevUNet3DConfig(**spec["config"])).train()
        model.set_reversible(spec["reversible"])
        return model, lambda x, y: model(pixel_values=x, labels=y).loss
    model = _monai_model(spec["kind"], spec["filters"]).train()

    def loss_fn(x, y):
        return soft_dice_loss(torch.sigmoid(model(x)), label_map_to_regions(y, [(1, 2, 4), (1, 4), (4,)]))

    return model, loss_fn


def _monai_model(kind: str, filters: int):
    from monai.networks.nets import SegResNet, UNet

    if kind == "segresnet":
        norm = ("GROUP", {"num_groups": min(8, filters)})
        return SegResNet(spatial_dims=3, in_channels=4, out_channels=3, init_filters=filters, norm=norm)
    return UNet(
        spatial_dims=3, in_channels=4, out_channels=3, num_res_units=2,
        channels=(filters, 2 * filters, 4 * filters, 8 * filters), strides=(2, 2, 2),
    )  # fmt: skip


def worker(spec: dict) -> dict:
    """One configuration, run in a fresh process: a warm-up step, then the measured training step."""
    torch.set_num_threads(1)
    model, loss_fn = _build(spec)
    x, y = _inputs(spec.get("batch", 1), spec["size"])
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    loss_fn(x, y).backward()  # warm-up: lazy initialisation of kernels and buffers is not the step's memory
    release_free_memory()
    with PeakRSSMeter() as meter:
        loss_fn(x, y).backward()
    return {"peak_bytes": meter.peak_bytes, "params": sum(p.numel() for p in model.parameters())}


# glibc raises its mmap threshold after large frees, so later tensors come from the heap, whose freed space is kept
# and fragments; a fixed threshold returns every large tensor to the OS when it is freed
FIXED_MMAP_THRESHOLD = {"MALLOC_MMAP_THRESHOLD_": "131072"}


def measure_peak(spec: dict, timeout: float = 600.0, allocator_env: dict | None = None) -> dict:
    """Run :func:`worker` in a fresh Python process (so no allocator state is shared between configurations);
    ``allocator_env`` adds environment variables such as :data:`FIXED_MMAP_THRESHOLD`."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", **(allocator_env or {})}
    code = "import json, sys; from hf_eff.bench.rev_unet3d import worker; print(json.dumps(worker(json.loads(sys.argv[1]))))"
    done = subprocess.run(
        [sys.executable, "-c", code, json.dumps(spec)], capture_output=True, text=True, timeout=timeout, env=env
    )
    if done.returncode != 0:
        return {"peak_bytes": None, "params": None, "error": done.stderr.strip().splitlines()[-1:]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def _mib(n: int | None) -> float:
    return float("nan") if n is None else round(n / 2**20, 1)


def _spec(base: dict, reversible: bool, size: int, blocks: int | None = None, width: float = 1.0) -> dict:
    return {
        "kind": "rev_unet3d",
        "reversible": reversible,
        "size": size,
        "config": _config_kwargs(base, size, blocks, width),
    }


def _largest_fitting(ladder: list, make_spec, budget: int, rows: list, axis: str, label: str) -> tuple:
    """Walk up ``ladder`` until a step exceeds ``budget``; return the last rung that fits (None if none does)."""
    best = None
    for rung in ladder:
        result = measure_peak(make_spec(rung))
        peak = result["peak_bytes"]
        fits = peak is not None and peak <= budget
        rows.append(
            {
                "axis": axis,
                "model": label,
                "rung": rung,
                "peak_MiB": _mib(peak),
                "params": result["params"],
                "fits": fits,
            }
        )
        if not fits:
            break
        best = rung
    return best


def saved_bytes(base: dict, reversible: bool, size: int, blocks: int | None = None) -> int:
    spec = _spec(base, reversible, size, blocks)
    model, loss_fn = _build(spec)
    x, y = _inputs(1, size)
    with SavedTensorsMeter(exclude=list(model.parameters())) as meter:
        loss = loss_fn(x, y)
    del loss
    return meter.bytes


def _step_time_ratio(base: dict, size: int, repeats: int) -> float:
    model, _ = _build(_spec(base, True, size))
    x, y = _inputs(1, size)

    def step(reversible: bool):
        def go():
            model.set_reversible(reversible)
            model(pixel_values=x, labels=y).loss.backward()

        return go

    timings = compare_timings({"storing": step(False), "reversible": step(True)}, "storing", repeats=repeats)
    return timings["reversible"].ratio


def _short_training_dice(steps: int, crop: int, seed: int) -> dict | None:
    """Train both modes from the same initialisation on the left half of the MNI152 tissue volume; Dice (GM, WM)
    of ``predict_volume`` on the right half."""
    try:
        from hf_eff.data.volumes import VolumeCropDataset, load_tissue_volume
    except ImportError:
        return None
    try:
        volume = load_tissue_volume(downsample=2)
    except (ImportError, FileNotFoundError):
        return None
    from hf_eff.models.rev_unet3d import RevUNet3DConfig, RevUNet3DForSemanticSegmentation

    half = volume.labels.shape[0] // 2
    train = type(volume)(volume.image[:, :half], volume.labels[:half], "left")
    data = VolumeCropDataset([train], (crop,) * 3, samples_per_volume=steps * 2, seed=seed)
    result = {}
    for mode in ("reversible", "storing"):
        torch.manual_seed(seed)
        config = RevUNet3DConfig(
            in_channels=1, channels=[8, 16, 32], encoder_depths=[2, 2, 2], decoder_depths=[2, 2], norm_groups=2,
            crop_size=[crop] * 3, label_mode="classes", label_values=[0, 1, 2], cross_entropy_weight=1.0,
            reversible=mode == "reversible",
        )  # fmt: skip
        model = RevUNet3DForSemanticSegmentation(config).train()
        optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
        for step in range(steps):
            batch = [data[2 * step], data[2 * step + 1]]
            x = torch.stack([b["pixel_values"] for b in batch])
            y = torch.stack([b["labels"] for b in batch])
            optimizer.zero_grad()
            model(pixel_values=x, labels=y).loss.backward()
            optimizer.step()
        predicted = model.predict_volume(torch.from_numpy(volume.image[:, half:]), output="labels", overlap=0.25)
        truth = torch.from_numpy(volume.labels[half:])
        for name, value in (("GM", 1), ("WM", 2)):
            p, g = predicted == value, truth == value
            result[f"{mode}_dice_{name}"] = round(float(2 * (p & g).sum() / (p.sum() + g.sum())), 4)
    return result


def _monai_baselines(size: int, ladder: list[int], budget: int | None, params: int, rows: list) -> dict:
    """MONAI SegResNet and UNet (storing activations) with the filter count closest to ``params`` parameters."""
    try:
        import monai  # noqa: F401
    except ImportError:
        return {}
    found = {}
    for kind, choices in (("segresnet", (4, 8)), ("monai_unet", (4, 8, 12))):
        counts = {f: sum(p.numel() for p in _monai_model(kind, f).parameters()) for f in choices}
        filters = min(counts, key=lambda f: abs(counts[f] - params))
        result = measure_peak({"kind": kind, "filters": filters, "size": size})
        rows.append({"axis": "base", "model": f"{kind}(filters={filters})", "rung": size,
                     "peak_MiB": _mib(result["peak_bytes"]), "params": result["params"],
                     "fits": result["peak_bytes"] is not None and budget is not None and result["peak_bytes"] <= budget})  # fmt: skip
        spec = lambda s, kind=kind, filters=filters: {"kind": kind, "filters": filters, "size": s}  # noqa: E731
        best = _largest_fitting(ladder, spec, budget, rows, "volume", kind) if budget else None
        found[kind] = {"filters": filters, "params": result["params"], "peak": result["peak_bytes"], "largest": best,
                       "capped": best == ladder[-1]}  # fmt: skip
    return found


@benchmark("rev_unet3d", summary="training memory of the reversible 3D U-Net vs storing activations (real peak)")
def run(settings: BenchSettings) -> BenchReport:
    quick = settings.quick
    base = _base_settings(quick)
    size = 24 if quick else 40
    multiple = 2 ** (len(base["channels"]) - 1)
    size_ladder = [size + multiple] if quick else [size + k * multiple for k in range(1, 5)]
    block_ladder = [] if quick else [3, 4, 6, 8, 12]
    width_ladder = [] if quick else [1.25, 1.5, 2.0, 2.5, 3.0]

    rows: list[dict] = []
    # the budget: the storing network's real peak at the base configuration
    store_base = measure_peak(_spec(base, False, size))
    rev_base = measure_peak(_spec(base, True, size))
    budget = store_base["peak_bytes"]
    for label, result in (("storing", store_base), ("reversible", rev_base)):
        rows.append({"axis": "base", "model": label, "rung": size, "peak_MiB": _mib(result["peak_bytes"]),
                     "params": result["params"], "fits": True})  # fmt: skip
    peak_ratio = (
        store_base["peak_bytes"] / rev_base["peak_bytes"] if budget and rev_base["peak_bytes"] else float("nan")
    )

    found: dict[str, dict] = {}
    capped: list[str] = []  # searches that reached the top of their ladder (the true limit is higher)
    axes = {
        "volume": (size_ladder, lambda rev: lambda s: _spec(base, rev, s), size),
        "depth": (block_ladder, lambda rev: lambda b: _spec(base, rev, size, blocks=b), base["blocks"]),
        "width": (width_ladder, lambda rev: lambda w: _spec(base, rev, size, width=w), 1.0),
    }
    for axis, (ladder, make, start) in axes.items():
        found[axis] = {}
        for mode, rev in (("storing", False), ("reversible", True)):
            best = _largest_fitting(ladder, make(rev), budget, rows, axis, mode) if budget else None
            found[axis][mode] = start if best is None else best
            if ladder and best == ladder[-1]:
                capped.append(f"{axis}/{mode}")

    monai_rows = {} if quick else _monai_baselines(size, size_ladder, budget, rev_base["params"], rows)

    # the same step with a fixed glibc mmap threshold: how much of the real peak is heap retention/fragmentation
    tuned = {}
    if not quick:
        deepest = block_ladder[-1]
        for key, spec in (
            ("storing", _spec(base, False, size)),
            ("reversible", _spec(base, True, size)),
            (f"reversible_{deepest}_blocks", _spec(base, True, size, blocks=deepest)),
        ):
            result = measure_peak(spec, allocator_env=FIXED_MMAP_THRESHOLD)
            tuned[key] = result["peak_bytes"]
            rows.append({"axis": "fixed_mmap_threshold", "model": key, "rung": size, "peak_MiB": _mib(result["peak_bytes"]),
                         "params": result["params"], "fits": None})  # fmt: skip

    with single_thread():
        saved = {
            (blocks, mode): saved_bytes(base, mode == "reversible", size, blocks)
            for blocks in (base["blocks"], 2 * base["blocks"])
            for mode in ("storing", "reversible")
        }
        time_ratio = _step_time_ratio(base, size, repeats=2 if quick else 3)
        dice = None if quick else _short_training_dice(steps=30, crop=32, seed=settings.seed)

    ratios = {
        axis: (found[axis]["reversible"] / found[axis]["storing"]) ** (3 if axis == "volume" else 1)
        if axes[axis][0]
        else float("nan")
        for axis in axes
    }
    saved_ratio = saved[base["blocks"], "storing"] / saved[base["blocks"], "reversible"]
    notes = [
        f"Budget = real peak of the storing network at the base configuration ({_mib(budget)} MiB step peak growth; "
        f"channels {base['channels']}, {base['blocks']} blocks per level, expansion {base['expand_ratio']}, "
        f"batch 1, {size}^3, 4 modalities, WT/TC/ET Dice loss).",
        f"Largest cube within the budget: storing {found['volume']['storing']}^3, reversible "
        f"{found['volume']['reversible']}^3 = {ratios['volume']:.2f}x voxels (paper: up to {PAPER['volume_x']}x); "
        f"ladder {size_ladder}.",
        (
            f"Most blocks per level within the budget: storing {found['depth']['storing']}, reversible "
            f"{found['depth']['reversible']} = {ratios['depth']:.2f}x depth (paper: {PAPER['depth_x']}x); "
            f"ladder {block_ladder}."
            if block_ladder
            else "Depth at the budget: not searched in --quick."
        ),
        (
            f"Widest network within the budget: storing x{found['width']['storing']}, reversible "
            f"x{found['width']['reversible']} = {ratios['width']:.2f}x channels (paper: up to {PAPER['width_x']}x); "
            f"ladder {width_ladder}."
            if width_ladder
            else "Width at the budget: not searched in --quick."
        ),
        f"Real step peak at the base configuration: storing {_mib(budget)} MiB, reversible {_mib(rev_base['peak_bytes'])} "
        f"MiB ({peak_ratio:.2f}x less); bytes saved for backward: storing "
        f"{_mib(saved[base['blocks'], 'storing'])} MiB, reversible {_mib(saved[base['blocks'], 'reversible'])} MiB "
        f"({saved_ratio:.1f}x less). The gap between the two ratios is transient memory that no mode avoids: "
        "parameter gradients, the recompute of one transform at a time, GroupNorm/activation buffers of the "
        "non-reversible transitions, the loss.",
        f"Bytes saved for backward with {2 * base['blocks']} blocks per level: storing "
        f"{_mib(saved[2 * base['blocks'], 'storing'])} MiB, reversible {_mib(saved[2 * base['blocks'], 'reversible'])} MiB "
        "(reversible does not grow with blocks per level).",
        f"Step time reversible / storing at the base configuration: {time_ratio:.2f}x (single thread, interleaved).",
    ]
    for kind, info in monai_rows.items():
        notes.append(
            f"MONAI {kind} (filters={info['filters']}, {info['params']:,} parameters vs {rev_base['params']:,}, storing): step peak {_mib(info['peak'])} MiB at {size}^3; "
            f"largest cube within the budget: {info['largest'] or 'none of ' + str(size_ladder)}"
            + (" (ladder top reached)." if info["capped"] else ".")
        )
    if tuned:
        deepest_key = f"reversible_{block_ladder[-1]}_blocks"
        notes.append(
            "Allocator: with glibc's default (dynamic) mmap threshold, freed tensors stay in the heap and fragment it, "
            "which inflates the real peak and makes it grow with the number of ops. The same steps with "
            f"MALLOC_MMAP_THRESHOLD_=131072: storing {_mib(tuned['storing'])} MiB, reversible "
            f"{_mib(tuned['reversible'])} MiB ({tuned['storing'] / tuned['reversible']:.2f}x less), reversible with "
            f"{block_ladder[-1]} blocks per level {_mib(tuned[deepest_key])} MiB (vs {base['blocks']} blocks: flat in depth "
            "when freed memory is returned)."
        )
    if dice is not None:
        notes.append(
            "Short training (30 steps, 2 x 32^3 crops, left hemisphere of the MNI152 tissue volume), whole-volume "
            f"Dice on the right hemisphere: {dice}."
        )
    elif not quick:
        notes.append("Dice after short training: not run (nilearn not installed).")
    else:
        notes.append("Dice after short training: not run in --quick.")
    if capped:
        notes.append(f"Ladder top reached (the real limit is higher than reported) for: {', '.join(capped)}.")
    notes.append("Timings come from a shared CPU: ratios are meaningful, absolute times are not reported.")
    return BenchReport(
        method="rev_unet3d",
        title="Reversible 3D U-Net: what fits in the storing network's real peak memory",
        rows=rows,
        headline=Headline(
            better="higher",
            effect=f"real training-step peak memory saved ({size}^3, batch 1)",
            baseline="same network storing activations",
            value=round(peak_ratio, 2),
            unit="x",
            note="at that budget: "
            + ", ".join(
                f"{ratios[axis]:.2f}x {unit}"
                for axis, unit in (("volume", "voxels"), ("depth", "depth"), ("width", "width"))
                if math.isfinite(ratios[axis])
            )
            + f"; step time {time_ratio:.2f}x",
        ),
        notes=notes,
        meta={
            "size": settings.size,
            "seed": settings.seed,
            "base": base,
            "base_size": size,
            "ladders": {"volume": size_ladder, "depth": block_ladder, "width": width_ladder},
            "budget_bytes": budget,
            "ratios": ratios,
            "saved_bytes": {f"{b}_{m}": v for (b, m), v in saved.items()},
            "step_time_ratio": time_ratio,
            "dice": dice,
            "ladder_top_reached": capped,
            "fixed_mmap_threshold_peak_bytes": tuned,
            "paper": PAPER,
            "peak_ratio_isfinite": math.isfinite(peak_ratio),
        },
    )
