"""Hot swapping against the grid search it replaces and the learning-rate-free optimizers a user would pick instead.

Three tasks of different kinds and lengths, all offline: an MLP and a small CNN on the scikit-learn 8x8 digits, and
a tiny byte-level GPT-2 on Python's docstrings (:mod:`hf_eff.data.text`). For each task, seed and wrapped optimizer
(SGD, AdamW), every fixed learning rate of a 7-point log grid is trained once, and so is one run of each selector
over the same grid: the racing default (its races inside the run's ``T`` steps, a stretch that stalls steps the rate
down, a cooldown over the last 20%); racing with ``max_steps = selector.max_steps_for(T)``, so that it keeps ``T``
steps of trajectory like every fixed rate and pays its exploration on top; racing without the stall step-down (the
previous default); racing with neither, a closing race instead of the cooldown (the one before); and the paper's
D-UCB with backtracking. The racing default's cooldown also helps a fixed rate, so each seed's best fixed rate
is trained once more with the same cooldown (Trainer's ``warmup_stable_decay`` schedule, linear decay over the last
20%): what a grid search with that schedule would find, at the grid's cost. The learning-rate-free baselines run once
per task and seed: Adadelta, schedule-free SGD and AdamW (``optim="schedule_free_sgd"`` / ``"schedule_free_adamw"``
at the package's default rates, 5% warm-up) and Prodigy.

At full size both digits tasks also run at 4x their length (8 seeds; racing with and without the stall step-down, the
grid and the baselines), where the fixed rates converge: the "runs of any length" check.

Every run trains the same model from the same initialisation on the same batches through a ``Trainer``, ``T`` steps
(the kept-steps selectors: more, of which ``T`` are kept); the score is the final loss on a test set never seen in
training (the probe set the selectors evaluate is held out of the training data too). Cost is counted, not timed: a
grid costs one run per rate; a selector run costs its ``max_steps / T`` runs (one for the default: its races happen
inside ``max_steps``) plus its probe evaluations, a forward pass counted as a third of a training step.
"""

import statistics
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import torch
from torch import nn

from hf_eff.bench.meters import single_thread
from hf_eff.bench.registry import BenchSettings, benchmark
from hf_eff.bench.report import BenchReport, Headline
from hf_eff.bench.training import DigitsCNN, DigitsMLP, load_digits_splits, train_once
from hf_eff.callbacks.bandit_lr.racing import DEFAULT_COOLDOWN


OPTIMIZERS = {"SGD": "sgd", "AdamW": "adamw_torch"}
GRIDS = {
    "SGD": (0.003, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0),
    "AdamW": (1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1),
}
LM_SGD_GRID = (0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0)  # a byte-level LM wants larger SGD rates than the digits nets
KEPT = "race (T kept steps)"
NO_STALL = "race (no stall step-down)"
# runs max_steps = selector.max_steps_for(T): T steps of kept trajectory like every fixed rate, exploration on top
KEPT_STEPS = (KEPT,)
CANDIDATES = ("race", *KEPT_STEPS)  # the selectors the goal is checked for
SELECTORS = {
    "race": {},  # the default: BanditLRCallback(arms, probe_dataset=...), tail-judged races, cooldown at the end
    KEPT: {},
    NO_STALL: {"bandit_kwargs": {"stall_step_down": False}},  # the previous default: only divergence steps down
    "race (closing race)": {"bandit_kwargs": {"cooldown": 0, "stall_step_down": False}},  # the one before: no cooldown
    "ducb+backtrack": {"bandit": "ducb", "backtrack": True},  # the paper's method, episode length derived
}
BEST_COOLED = "grid's best + cooldown"  # each seed's best fixed rate again, with the racing default's cooldown
SCHEDULE_FREE = {"SGD": ("schedule_free_sgd", 1.0), "AdamW": ("schedule_free_adamw", 0.0025)}  # package defaults
WARMUP_SHARE = 0.05  # schedule-free's recommended warm-up, as a share of the steps
PROBE_SIZE = 128
FORWARD_COST = 1 / 3  # a forward pass, in training steps per example


@dataclass(frozen=True)
class Task:
    """One training problem: its data, model, batch, length and grids."""

    name: str
    description: str
    steps: int  # full size
    quick_steps: int
    batch_size: int
    grids: dict[str, tuple[float, ...]]
    load: Callable[[int], dict[str, Any]]  # seed -> {"train", "probe", "test", "model"}


def _digits(model_class: type[nn.Module]) -> Callable[[int], dict[str, Any]]:
    def load(seed: int) -> dict[str, Any]:
        return {**load_digits_splits(seed, probe_size=PROBE_SIZE), "model": model_class}

    return load


def _byte_lm(seed: int) -> dict[str, Any]:
    """Blocks of 64 bytes of the Python standard library's docstrings (validation modules held out): probe and test
    come from the validation modules, disjoint; a 1-layer GPT-2 of width 32."""
    from transformers import GPT2LMHeadModel

    from hf_eff.data.tokenization import byte_level_tokenizer
    from hf_eff.sparsity.recipe import gpt2_config, lm_blocks

    tokenizer = byte_level_tokenizer()
    blocks = lm_blocks("python-stdlib-docs", tokenizer, 64, seed=0, max_chars=300_000, max_eval_blocks=320)
    eos = tokenizer.eos_token_id
    config = gpt2_config(1, 32, 2, 64, len(tokenizer), bos_token_id=eos, eos_token_id=eos)
    held_out = blocks["validation"].shuffle(seed=seed)
    return {
        "train": blocks["train"],
        "probe": held_out.select(range(32)),
        "test": held_out.select(range(32, len(held_out))),
        "model": lambda: GPT2LMHeadModel(config),
    }


TASKS = (
    Task("digits-mlp", "MLP 64-64-64-10, sklearn digits", 600, 200, 32, GRIDS, _digits(DigitsMLP)),
    Task("bytes-lm", "1-layer GPT-2 (width 32), 64-byte blocks of docstrings", 250, 80, 16,
         {**GRIDS, "SGD": LM_SGD_GRID}, _byte_lm),
    Task("digits-cnn", "2-conv CNN, sklearn digits, short run", 150, 80, 32, GRIDS, _digits(DigitsCNN)),
)  # fmt: skip
# the digits tasks again at 4x their length (full size only): "runs of any length", where the fixed rates converge
LONG_TASKS = tuple(
    replace(task, name=f"{task.name} x4", description=f"{task.description}, 4x longer", steps=4 * task.steps)
    for task in TASKS
    if task.name.startswith("digits")
)
# 3 seeds even at quick size: one seed of the 200-step MLP measured racing at 1.62x the best fixed rate where 10
# seeds give 0.72x (two probe-noise stalls in that one run)
QUICK = {"seeds": (0, 1, 2), "optimizers": ("SGD",), "selectors": ("race", KEPT)}
# 5 seeds: one final loss at a fixed rate varies up to 5x between seeds on these short runs (the notes report it)
FULL = {"seeds": (0, 1, 2, 3, 4), "optimizers": ("SGD", "AdamW"), "selectors": tuple(SELECTORS)}
# 4x the steps, racing with and without the stall step-down; 8 seeds: near convergence one final test loss varies up
# to 20x between seeds (a few confidently wrong test digits), and 3 seeds measured digits-cnn x4 / SGD at 1.45x where
# 12 seeds gave 1.06x
LONG = {"seeds": tuple(range(8)), "optimizers": ("SGD", "AdamW"), "selectors": ("race", NO_STALL)}


def _test_loss(model: nn.Module, dataset) -> float:
    from hf_eff.callbacks._utils import build_probe_batches, evaluate_probe_loss

    return evaluate_probe_loss(model, build_probe_batches(dataset, model, 256)).mean


def _train(task: Task, data: dict, steps: int, seed: int, *, optim: str = "sgd", lr: float = 1.0, **options):
    """One run; returns its final test loss and, with a selector, the selector callback."""
    from hf_eff.callbacks._utils import unwrap_optimizer

    arguments = {
        "per_device_train_batch_size": task.batch_size,
        "learning_rate": lr,
        "optim": optim,
        **options.pop("training_args", {}),
    }
    result = train_once(
        data["train"], max_steps=steps, seed=seed, model_factory=data["model"], training_args=arguments, **options
    )
    optimizer = unwrap_optimizer(result.trainer.optimizer)
    if callable(getattr(optimizer, "eval", None)):
        optimizer.eval()  # schedule-free: evaluate the averaged weights, as Trainer.evaluate would
    return _test_loss(result.model, data["test"])


def _selector_run(task: Task, data: dict, steps: int, seed: int, family: str, selector: str) -> dict[str, Any]:
    from hf_eff.callbacks.bandit_lr import BanditLRCallback

    grid = task.grids[family]
    callback = BanditLRCallback(
        list(grid), probe_dataset=data["probe"], probe_batch_size=PROBE_SIZE, seed=seed, **SELECTORS[selector]
    )
    total = callback.max_steps_for(steps) if selector in KEPT_STEPS else steps  # else races happen inside T steps
    loss = _train(task, data, total, seed, optim=OPTIMIZERS[family], lr=grid[0], callbacks=[callback])
    probe_steps = callback.probe_evaluations * len(data["probe"]) * FORWARD_COST / task.batch_size
    late = callback.history[-max(1, len(callback.history) // 4) :]
    return {
        "test_loss": loss,
        "cost": (total + probe_steps) / steps,
        "kept_steps": callback.kept_steps / steps,
        "final_lr": late[-1]["arm_value"],
        "trace": [(record["global_step"], record["arm_value"]) for record in callback.history],
    }


def _task_runs(task: Task, config: dict, seed: int, steps: int, progress) -> dict[tuple[str, str], dict[str, Any]]:
    """Every run of one task and seed, keyed by (optimizer family or "-", run name)."""
    data = task.load(seed)
    runs: dict[tuple[str, str], dict[str, Any]] = {}
    warmup = max(1, round(WARMUP_SHARE * steps))
    for family in config["optimizers"]:
        for lr in task.grids[family]:
            loss = _train(task, data, steps, seed, optim=OPTIMIZERS[family], lr=lr)
            runs[family, f"fixed lr={lr:g}"] = {"test_loss": loss, "cost": 1.0}
            progress.update()
        best = min(task.grids[family], key=lambda lr: runs[family, f"fixed lr={lr:g}"]["test_loss"])
        cooldown = {  # Trainer's WSD schedule: constant, then linear to 0 over the last steps, as the racing default
            "lr_scheduler_type": "warmup_stable_decay",
            "lr_scheduler_kwargs": {"num_decay_steps": round(DEFAULT_COOLDOWN * steps), "decay_type": "linear"},
        }
        loss = _train(task, data, steps, seed, optim=OPTIMIZERS[family], lr=best, training_args=cooldown)
        runs[family, BEST_COOLED] = {"test_loss": loss, "cost": len(task.grids[family]) + 1.0, "lr": best}
        progress.update()
        for selector in config["selectors"]:
            runs[family, selector] = _selector_run(task, data, steps, seed, family, selector)
            progress.update()
        optim, lr = SCHEDULE_FREE[family]
        loss = _train(task, data, steps, seed, optim=optim, lr=lr, training_args={"warmup_steps": warmup})
        runs[family, "schedule-free"] = {"test_loss": loss, "cost": 1.0}
        progress.update()
    for name, factory in (
        ("Adadelta", lambda parameters: torch.optim.Adadelta(parameters, lr=1.0)),
        ("Prodigy", _prodigy),
    ):
        runs["-", name] = {"test_loss": _train(task, data, steps, seed, optimizer_factory=factory), "cost": 1.0}
        progress.update()
    return runs


def _prodigy(parameters):
    from prodigyopt import Prodigy

    return Prodigy(parameters, lr=1.0)


def _summaries(task: Task, config: dict, per_seed: list[dict]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Rows (means over seeds) and, per optimizer family, the goal check of the default selector."""
    mean = {key: statistics.fmean(runs[key]["test_loss"] for runs in per_seed) for key in per_seed[0]}
    rows, verdicts = [], []
    for family in config["optimizers"]:
        fixed = {key: loss for key, loss in mean.items() if key[0] == family and key[1].startswith("fixed")}
        best, median = min(fixed.values()), statistics.median(fixed.values())
        best_lr = min(fixed, key=fixed.get)[1].removeprefix("fixed lr=")
        for key, loss in mean.items():
            if key[0] not in (family, "-"):
                continue
            runs = [runs[key] for runs in per_seed]
            row = {
                "task": task.name,
                "optimizer": family,
                "run": key[1],
                "test loss": loss,
                "/ best fixed": loss / best,
                "cost (runs)": statistics.fmean(run["cost"] for run in runs),
            }
            if "final_lr" in runs[0]:
                row["final lr (median)"] = statistics.median(run["final_lr"] for run in runs)
                row["kept steps / T"] = statistics.fmean(run["kept_steps"] for run in runs)
            rows.append(row)
        for selector in (name for name in CANDIDATES if name in config["selectors"]):
            loss, selector_runs = mean[family, selector], [runs[family, selector] for runs in per_seed]
            verdicts.append(
                {
                    "task": task.name,
                    "optimizer": family,
                    "selector": selector,
                    "/ best fixed": loss / best,
                    "best fixed lr": best_lr,
                    f"/ {BEST_COOLED}": loss / mean[family, BEST_COOLED],
                    "/ median fixed": loss / median,
                    "/ Adadelta": loss / mean["-", "Adadelta"],
                    "/ schedule-free": loss / mean[family, "schedule-free"],
                    "/ Prodigy": loss / mean["-", "Prodigy"],
                    "cost (runs)": statistics.fmean(run["cost"] for run in selector_runs),
                    "kept steps / T": statistics.fmean(run["kept_steps"] for run in selector_runs),
                    # how much one fixed rate's final loss varies with the seed: the noise the ratios carry
                    "best fixed seed spread": max(
                        runs[family, f"fixed lr={best_lr}"]["test_loss"] for runs in per_seed
                    )
                    / min(runs[family, f"fixed lr={best_lr}"]["test_loss"] for runs in per_seed),
                    "grid cost (runs)": len(fixed),
                }
            )
    return rows, verdicts


@benchmark(
    "bandit_lr", summary="one racing learning-rate selector run vs its whole grid, Adadelta, schedule-free, Prodigy"
)
def run(settings: BenchSettings) -> BenchReport:
    import importlib.util

    import transformers

    missing = [name for name in ("schedulefree", "prodigyopt") if importlib.util.find_spec(name) is None]
    if missing:
        raise ImportError(f"the bandit_lr benchmark's baselines need {missing}: pip install 'hf_eff[bench]'")

    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    with single_thread():  # tiny models gain nothing from intra-op threads, which only add contention
        return _run(settings)


def _run(settings: BenchSettings) -> BenchReport:
    from tqdm.auto import tqdm

    config = QUICK if settings.quick else FULL
    seeds = tuple(settings.seed + offset for offset in config["seeds"])
    plan = [(task, config) for task in TASKS] + ([] if settings.quick else [(task, LONG) for task in LONG_TASKS])
    total = sum(len(c["seeds"]) * (sum(len(GRIDS["SGD"]) + len(c["selectors"]) + 2 for _ in c["optimizers"]) + 2)
                for _, c in plan)  # fmt: skip
    rows, verdicts, traces = [], [], {}
    with tqdm(total=total, desc="bandit_lr runs") as progress:
        for task, task_config in plan:
            steps = task.quick_steps if settings.quick else task.steps
            task_seeds = tuple(settings.seed + offset for offset in task_config["seeds"])
            per_seed = [_task_runs(task, task_config, seed, steps, progress) for seed in task_seeds]
            task_rows, task_verdicts = _summaries(task, task_config, per_seed)
            rows += task_rows
            verdicts += task_verdicts
            if task in TASKS:  # the figure shows the benchmark's own lengths
                traces[task.name] = {
                    f"{family} {selector}": per_seed[0][family, selector]["trace"]
                    for family in task_config["optimizers"]
                    for selector in task_config["selectors"]
                }
    return BenchReport(
        method="bandit_lr",
        title="Hot swapping: one learning-rate selector run vs its whole grid and learning-rate-free optimizers",
        rows=rows,
        headline=_headline(verdicts),
        notes=_notes(verdicts, config, seeds, settings.quick),
        meta={
            "size": settings.size,
            "seeds": list(seeds),
            "optimizers": list(config["optimizers"]),
            "selectors": {name: SELECTORS[name] for name in config["selectors"]},
            "tasks": {
                task.name: {
                    "description": task.description,
                    "steps": task.quick_steps if settings.quick else task.steps,
                    "batch_size": task.batch_size,
                    "grids": {family: list(task.grids[family]) for family in task_config["optimizers"]},
                    "seeds": [settings.seed + offset for offset in task_config["seeds"]],
                    "selectors": list(task_config["selectors"]),
                }
                for task, task_config in plan
            },
            "schedule_free": SCHEDULE_FREE,
            "warmup_share": WARMUP_SHARE,
            "probe_size": PROBE_SIZE,
            "verdicts": verdicts,
            "torch_threads_used": 1,
        },
        figures={"selector_traces": _trace_figure(traces, rows)},
    )


def _headline(verdicts: list[dict[str, Any]]) -> Headline:
    default = [verdict for verdict in verdicts if verdict["selector"] == "race"]
    worst = max(default, key=lambda verdict: verdict["/ best fixed"])
    median = statistics.median(verdict["/ median fixed"] for verdict in default)
    return Headline(
        better="lower",
        effect="final test loss of one racing-selector run (races inside max_steps) relative to the best of its grid "
        "(worst task)",
        baseline="best of 7 fixed-rate runs of the same optimizer (same grid)",
        value=worst["/ best fixed"],
        unit="x",
        note=f"worst: {worst['task']} {worst['optimizer']}; vs the grid's median: {median:.3g}x (median over tasks); "
        f"cost {worst['cost (runs)']:.2f} runs vs 7",
    )


def _notes(verdicts: list[dict[str, Any]], config: dict, seeds: tuple[int, ...], quick: bool) -> list[str]:
    notes = [
        f"mean test loss over seeds {list(seeds)}; wrapped optimizers {list(config['optimizers'])}; every fixed rate, "
        "selector and baseline trains the same model from the same initialisation on the same batches",
        *(
            []
            if quick
            else [
                f"'{', '.join(task.name for task in LONG_TASKS)}': the digits tasks at 4x their steps (runs of any "
                f"length), seeds {[seeds[0] + offset for offset in LONG['seeds']]}, racing with and without the stall "
                "step-down"
            ]
        ),
        "cost: a grid search is 7 runs of T steps; a selector run is its max_steps / T plus its probe evaluations "
        f"({PROBE_SIZE} held-out examples per episode, a forward counted as 1/3 of a step). 'race' runs T steps, "
        f"its races inside them (it keeps 'kept steps / T' of training); '{KEPT}' runs "
        "max_steps = selector.max_steps_for(T), so that it keeps T steps like every fixed rate",
        f"the racing default decays its rate linearly to 0 over the last {DEFAULT_COOLDOWN:.0%} of the run; "
        f"'{BEST_COOLED}' gives each seed's best fixed rate the same cooldown (Trainer's warmup_stable_decay "
        "schedule), so '/ grid's best + cooldown' separates the choice of rate from the schedule (it costs the grid "
        "plus one run)",
        "goal: on every task loss <= 1.02x the best fixed rate, < the grid's median and < Adadelta, at <= 1.3 runs; "
        "and <= schedule-free of the same optimizer on >= 2 of 3 tasks. The headline is the default 'race' (T steps, "
        f"the only variant whose cost is one run plus probes); '{KEPT}' is a fair candidate only where its cost is "
        "<= 1.3 runs, which the per-task lines check",
    ]
    if quick:
        notes.append(
            "quick size: three seeds, SGD only, shorter runs; final losses of constant-rate runs vary by tens of "
            "percent from seed to seed and step to step, so read the ratios as indicative only"
        )
    for verdict in verdicts:
        met = [
            ("<= 1.02x best", verdict["/ best fixed"] <= 1.02),
            ("< median", verdict["/ median fixed"] < 1),
            ("< Adadelta", verdict["/ Adadelta"] < 1),
            ("<= schedule-free", verdict["/ schedule-free"] <= 1),
            ("<= 1.3 runs", verdict["cost (runs)"] <= 1.3),
        ]
        notes.append(
            f"{verdict['task']} / {verdict['optimizer']} / {verdict['selector']}: {verdict['/ best fixed']:.3f}x best "
            f"fixed (lr={verdict['best fixed lr']}), {verdict[f'/ {BEST_COOLED}']:.3f}x {BEST_COOLED}, "
            f"{verdict['/ median fixed']:.3f}x median, "
            f"{verdict['/ Adadelta']:.3f}x Adadelta, {verdict['/ schedule-free']:.3f}x schedule-free, "
            f"{verdict['/ Prodigy']:.3f}x Prodigy, {verdict['cost (runs)']:.3f} runs, kept "
            f"{verdict['kept steps / T']:.2f} T (best fixed rate's final loss varies "
            f"{verdict['best fixed seed spread']:.2f}x across seeds); "
            + ", ".join(f"{name}: {'met' if ok else 'NOT met'}" for name, ok in met)
        )
    return notes


def _trace_figure(traces: dict[str, dict[str, list[tuple[int, float]]]], rows: list[dict[str, Any]]):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    styles = [
        ("tab:blue", "o"), ("tab:orange", "s"), ("tab:green", "^"), ("tab:red", "D"), ("tab:purple", "v"),
        ("tab:brown", "x"),
    ]  # fmt: skip
    figure, axes = plt.subplots(2, len(traces), figsize=(4.2 * len(traces), 7), squeeze=False)
    for column, (task, task_traces) in enumerate(traces.items()):
        top, bottom = axes[0, column], axes[1, column]
        for (name, trace), (color, marker) in zip(task_traces.items(), styles):
            steps, lrs = zip(*trace) if trace else ((), ())
            top.step(steps, lrs, where="post", color=color, alpha=0.8)
            top.plot(steps, lrs, ls="none", marker=marker, ms=3, color=color, label=name)
        top.set(yscale="log", xlabel="training step", ylabel="learning rate played", title=f"{task} (first seed)")
        if column == len(traces) - 1:  # the panels share their entries: one legend per row (placed by the report)
            top.legend(fontsize=7)
        task_rows = [row for row in rows if row["task"] == task]
        for family, (color, marker) in zip(("SGD", "AdamW"), styles):
            fixed = [row for row in task_rows if row["optimizer"] == family and row["run"].startswith("fixed")]
            if not fixed:
                continue
            lrs = [float(row["run"].removeprefix("fixed lr=")) for row in fixed]
            bottom.plot(lrs, [row["test loss"] for row in fixed], marker=marker, color=color, label=f"{family} fixed")
            lines = {"race": "--", KEPT: "-.", "schedule-free": ":", BEST_COOLED: (0, (6, 2, 1, 2, 1, 2))}
            for row in task_rows:
                if row["optimizer"] == family and row["run"] in lines:
                    bottom.axhline(
                        row["test loss"], color=color, ls=lines[row["run"]], lw=1.2, label=f"{family} {row['run']}"
                    )
        bottom.set(xscale="log", yscale="log", xlabel="fixed learning rate", ylabel="final test loss")
        if column == len(traces) - 1:
            bottom.legend(fontsize=7)
    figure.tight_layout()
    return figure
