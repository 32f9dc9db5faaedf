"""SPDF in miniature: sparse pre-training at 0 / 50 / 75% sparsity with the same token budget, then dense fine-tuning
on a different-domain corpus, against an iso-FLOP dense run and LoRA fine-tuning of the same sparse checkpoint.

Pre-training text: Python standard-library docstrings; downstream: numpy / scikit-learn / torch docstrings (both
offline, :mod:`hf_eff.data`), byte-level tokens. Reported per row: theoretical pre-training FLOPs (and the ratio to
dense), pre-training eval loss, downstream eval loss and perplexity, and the share of previously masked weights
that dense fine-tuning revived; plus the step-time overhead of mask enforcement (sparse step / dense step, timed
interleaved in one process).
"""

import copy
import tempfile
import time

import torch

from hf_eff.bench.meters import compare_timings
from hf_eff.bench.registry import BenchSettings, benchmark
from hf_eff.bench.report import BenchReport, Headline


QUICK = {
    "sizes": [(2, 64, 4)],
    "seq_len": 64,
    "batch_size": 8,
    "pretrain_steps": 40,
    "finetune_steps": [20],
    "max_chars": 200_000,
    "max_eval_blocks": 32,
    "timing_repeats": 20,
}
FULL = {
    "sizes": [(2, 96, 4), (4, 128, 4)],
    "seq_len": 128,
    "batch_size": 16,
    "pretrain_steps": 300,
    "finetune_steps": [50, 150],
    "max_chars": None,
    "max_eval_blocks": 128,
    "timing_repeats": 30,
}
SPARSITIES = (0.0, 0.5, 0.75)
PRETRAIN_LR, FINETUNE_LR = 2e-3, 5e-4


def _masking_overhead(config, sparsity: float, seq_len: int, batch_size: int, repeats: int) -> float:
    """Median time of one training step with mask enforcement over the same step without it."""
    from transformers import AutoModelForCausalLM

    from hf_eff.sparsity.config import SparsityConfig
    from hf_eff.sparsity.masks import StaticMaskManager

    torch.manual_seed(0)
    dense = AutoModelForCausalLM.from_config(config)
    sparse = copy.deepcopy(dense)
    manager = StaticMaskManager.from_model(sparse, SparsityConfig(sparsity))
    batch = torch.randint(0, config.vocab_size, (batch_size, seq_len))

    def make_step(model):
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.1)
        if model is sparse:
            manager.attach_optimizer(optimizer)

        def step():
            model(input_ids=batch, labels=batch).loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            optimizer.zero_grad()

        return step

    timings = compare_timings(
        {"dense": make_step(dense), "sparse": make_step(sparse)}, "dense", repeats=repeats, warmup=2
    )
    return timings["sparse"].ratio


def _pretrain_runs(config, p: dict) -> list[tuple[str, float, int]]:
    """(name, sparsity, steps) of every pre-training run of one model size; the last is the iso-FLOP baseline,
    a dense run given only the 75% run's pre-training FLOPs."""
    from hf_eff.sparsity.flops import training_flops

    iso_steps = max(1, round(p["pretrain_steps"] / training_flops(config, 0.75, 1, p["seq_len"]).reduction))
    return [(f"s={s:.0%}", s, p["pretrain_steps"]) for s in SPARSITIES] + [("dense iso-FLOP", 0.0, iso_steps)]


def _pretrain(config, runs, pre_data, p: dict, settings: BenchSettings, folder: str) -> tuple[dict, dict]:
    """Pre-train every run from the same initial weights; returns checkpoint folders and metrics by run name."""
    from transformers import AutoModelForCausalLM

    from hf_eff.sparsity.config import SparsityConfig
    from hf_eff.sparsity.recipe import TrainSchedule, set_seed_everywhere, sparse_pretrain

    checkpoints, metrics = {}, {}
    for name, sparsity, steps in runs:
        set_seed_everywhere(settings.seed)  # the same initial weights for every run of this size
        model = AutoModelForCausalLM.from_config(config)
        checkpoint = f"{folder}-{name}"
        result = sparse_pretrain(
            model,
            pre_data,
            SparsityConfig(sparsity, seed=settings.seed),
            TrainSchedule(steps, PRETRAIN_LR, p["batch_size"]),
            checkpoint,
            settings.seed,
            settings.device == "cpu",
            quiet=True,
        )
        checkpoints[name], metrics[name] = checkpoint, result.metrics
    return checkpoints, metrics


def _finetune_rows(
    size: str, ft_steps: int, runs, checkpoints: dict, pre_metrics: dict, dense_flops: float, ft_data, p: dict,
    settings: BenchSettings, workdir: str,
) -> list[dict]:  # fmt: skip
    """Dense fine-tuning of every pre-trained run (and LoRA on the 75% one) for ``ft_steps``: one row each."""
    from hf_eff.sparsity.recipe import TrainSchedule, default_lora_config, dense_finetune, set_seed_everywhere

    schedule = TrainSchedule(
        ft_steps, FINETUNE_LR, p["batch_size"], warmup_fraction=0.1, weight_decay=0.01, adam_beta2=0.999
    )
    variants = [(name, name, None) for name, _, _ in runs]
    variants.append(("s=75% + LoRA", "s=75%", default_lora_config()))
    rows, dense_ppl = [], None
    for label, source, peft_config in variants:
        set_seed_everywhere(settings.seed)
        ft = dense_finetune(
            checkpoints[source],
            ft_data,
            schedule,
            f"{workdir}/ft",
            settings.seed,
            settings.device == "cpu",
            peft_config=peft_config,
            quiet=True,
        ).metrics
        pre = pre_metrics[source]
        dense_ppl = ft["perplexity"] if label == "s=0%" else dense_ppl
        rows.append(
            {
                "model": size,
                "run": label,
                "sparsity held": pre["sparsity_held"],
                "pretrain FLOPs": pre["train_flops"],
                "dense / run FLOPs": dense_flops / pre["train_flops"],
                "pretrain eval loss": pre["eval_loss"],
                "finetune steps": ft_steps,
                "downstream eval loss": ft["eval_loss"],
                "downstream ppl": ft["perplexity"],
                "ppl vs dense (%)": 100.0 * (ft["perplexity"] / dense_ppl - 1.0),
                "revived masked weights": ft.get("revived_fraction", float("nan")),
            }
        )
    return rows


def _gap_curves(rows: list[dict]) -> dict[tuple[str, int], list[tuple[float, float]]]:
    """(model size, fine-tuning steps) -> [(sparsity held, ppl vs dense %)] of the sparse-then-dense runs."""
    curves: dict[tuple[str, int], list[tuple[float, float]]] = {}
    for row in rows:
        if row["run"].startswith("s=") and "LoRA" not in row["run"]:
            curves.setdefault((row["model"], row["finetune steps"]), []).append(
                (row["sparsity held"], row["ppl vs dense (%)"])
            )
    return curves


@benchmark("spdf", summary="pre-training FLOPs saved by sparse pre-training + dense fine-tuning, and what it costs")
def run(settings: BenchSettings) -> BenchReport:
    from transformers.utils import logging as hf_logging

    from hf_eff.data.tokenization import byte_level_tokenizer
    from hf_eff.sparsity.flops import training_flops
    from hf_eff.sparsity.recipe import gpt2_config, lm_blocks

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    p = QUICK if settings.quick else FULL
    start = time.perf_counter()
    tokenizer = byte_level_tokenizer()
    pre_data, ft_data = (
        lm_blocks(corpus, tokenizer, p["seq_len"], settings.seed, p["max_chars"], p["max_eval_blocks"])
        for corpus in ("python-stdlib-docs", "python-scientific-docs")
    )
    tokens_per_step = p["batch_size"] * p["seq_len"]
    rows = []
    with tempfile.TemporaryDirectory() as workdir:
        for n_layer, n_embd, n_head in p["sizes"]:
            size = f"{n_layer}x{n_embd}"
            eos = tokenizer.eos_token_id
            config = gpt2_config(
                n_layer, n_embd, n_head, p["seq_len"], len(tokenizer), bos_token_id=eos, eos_token_id=eos
            )
            dense_flops = training_flops(config, 0.0, p["pretrain_steps"] * tokens_per_step, p["seq_len"]).dense
            runs = _pretrain_runs(config, p)
            checkpoints, pre_metrics = _pretrain(config, runs, pre_data, p, settings, f"{workdir}/{size}")
            for ft_steps in p["finetune_steps"]:
                rows += _finetune_rows(
                    size, ft_steps, runs, checkpoints, pre_metrics, dense_flops, ft_data, p, settings, workdir
                )
        largest = p["sizes"][-1]
        overhead = _masking_overhead(
            gpt2_config(largest[0], largest[1], largest[2], p["seq_len"], len(tokenizer)),
            0.75,
            p["seq_len"],
            p["batch_size"],
            p["timing_repeats"],
        )
    headline_row = [row for row in rows if row["run"] == "s=75%"][-1]  # the largest model, the longest fine-tuning
    return BenchReport(
        method="spdf",
        title="SPDF: sparse pre-training, dense fine-tuning (tiny GPT-2, byte-level, Python docstrings)",
        rows=rows,
        headline=_headline(headline_row, p, overhead),
        notes=_notes(overhead),
        meta={
            **p,
            "sparsities": list(SPARSITIES),
            "pretrain_lr": PRETRAIN_LR,
            "finetune_lr": FINETUNE_LR,
            "seed": settings.seed,
            "size": settings.size,
            "wall_s": round(time.perf_counter() - start, 1),
        },
        figures={"downstream_gap": _plot(_gap_curves(rows))},
    )


def _headline(row: dict, p: dict, overhead: float) -> Headline:
    return Headline(
        better="higher",
        effect="theoretical pre-training FLOPs saved at 75% sparsity",
        baseline="dense pre-training on the same tokens",
        value=row["dense / run FLOPs"],
        unit="x",
        note=f"downstream perplexity after dense fine-tuning {row['ppl vs dense (%)']:+.1f}% vs dense "
        f"({p['sizes'][-1][0]}x{p['sizes'][-1][1]} model, {p['finetune_steps'][-1]} fine-tuning steps); "
        f"mask enforcement step time {overhead:.3f}x",
    )


def _notes(overhead: float) -> list[str]:
    return [
        "FLOPs are theoretical (2 per MAC, training = 3x forward, attention scores and LM head dense); "
        "unstructured masks give no wall-clock gain on CPU/GPU dense kernels.",
        f"Step-time overhead of mask enforcement (sparse step / dense step, interleaved, same process): "
        f"{overhead:.3f}x.",
        "'dense iso-FLOP' is a dense model pre-trained with the 75% run's FLOPs (fewer steps): does sparsity beat "
        "simply training less?",
        "'s=75% + LoRA' fine-tunes rank-8 LoRA adapters on the frozen sparse model (the base stays sparse).",
        "'ppl vs dense' compares downstream perplexity with the dense-pretrained row of the same size and "
        "fine-tuning length.",
        "Timings were taken on whatever machine ran this; the FLOP and loss columns do not depend on it.",
    ]


def _plot(curves):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(5.5, 3.8))
    for (size, ft_steps), points in sorted(curves.items()):
        xs, ys = zip(*sorted(points))
        axis.plot([100 * x for x in xs], ys, marker="o", label=f"{size}, {ft_steps} fine-tuning steps")
    axis.axhline(0.0, color="grey", linewidth=0.8)
    axis.set_xlabel("pre-training sparsity (%)")
    axis.set_ylabel("downstream perplexity vs dense (%)")
    axis.set_title("SPDF: gap after dense fine-tuning")
    axis.legend(fontsize=8)
    figure.tight_layout()
    return figure
