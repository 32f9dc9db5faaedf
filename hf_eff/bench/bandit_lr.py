"""Hot swapping in miniature: one bandit-driven SGD run against every fixed learning rate of the same grid, and
against Adadelta, on the real scikit-learn 8x8 handwritten digits (offline).

Every run trains the same MLP with the same data order for the same number of steps through a plain ``Trainer``.
The bandit run costs one run (plus the probe evaluations, counted); the grid costs one run per arm. Reported per
run: final test loss and accuracy; for the bandit runs also the arm trace (which learning rate was played when),
the number of backtracked episodes and the probe overhead. Several seeds in the full size.
"""

import statistics
from typing import Any

import torch

from hf_eff.bench.meters import single_thread
from hf_eff.bench.registry import BenchSettings, benchmark
from hf_eff.bench.report import BenchReport, Headline
from hf_eff.bench.training import DigitsMLP, load_digits_splits, train_once


ARMS = (0.003, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0)
# bandit variants: name -> BanditLRCallback keyword arguments (besides arms, episode length and probe set)
VARIANTS = {
    "ducb+backtrack": {"bandit": "ducb", "backtrack": True},  # the paper's method; the headline
    "ducb": {"bandit": "ducb"},
    "thompson+backtrack": {"bandit": "thompson", "bandit_kwargs": {"gamma": 0.95}, "backtrack": True},
    "swucb+backtrack": {"bandit": "swucb", "backtrack": True},
    "epsilon_greedy+backtrack": {"bandit": "epsilon_greedy", "bandit_kwargs": {"gamma": 0.95}, "backtrack": True},
}
QUICK = {"seeds": (0,), "max_steps": 1200, "episode_steps": 20, "hidden": 64, "variants": tuple(VARIANTS)[:3]}
FULL = {"seeds": (0, 1, 2), "max_steps": 2400, "episode_steps": 40, "hidden": 64, "variants": tuple(VARIANTS)}
BATCH_SIZE, PROBE_SIZE = 32, 256
HEADLINE_VARIANT = "ducb+backtrack"

Runs = dict[str, list[dict[str, Any]]]
Trace = list[tuple[int, float]]


def _train(splits, config: dict, seed: int, learning_rate: float = 1.0, **options) -> dict[str, Any]:
    """One run of the digits MLP, as a row of measurements."""
    result = train_once(
        splits["train"],
        max_steps=config["max_steps"],
        seed=seed,
        model_factory=lambda: DigitsMLP(config["hidden"]),
        eval_dataset=splits["test"],
        training_args={"per_device_train_batch_size": BATCH_SIZE, "learning_rate": learning_rate, "use_cpu": True},
        **options,
    )
    return {
        "test_loss": result.metrics["loss"],
        "test_accuracy": result.metrics["accuracy"],
        "train_seconds": result.train_seconds,
    }


def _make_bandit_callback(variant: str, probe, episode_steps: int, seed: int):
    from hf_eff.callbacks.bandit_lr import BanditLRCallback

    return BanditLRCallback(
        list(ARMS),
        episode_steps=episode_steps,
        probe_dataset=probe,
        probe_batch_size=PROBE_SIZE,
        seed=seed,
        **VARIANTS[variant],
    )


def _train_baselines(splits, config: dict, seed: int, runs: Runs) -> None:
    """Every fixed learning rate of the grid (plain SGD), and Adadelta."""
    for lr in ARMS:
        runs.setdefault(f"SGD lr={lr:g}", []).append(_train(splits, config, seed, learning_rate=lr))
    adadelta = _train(
        splits, config, seed, optimizer_factory=lambda parameters: torch.optim.Adadelta(parameters, lr=1.0)
    )
    runs.setdefault("Adadelta", []).append(adadelta)


def _train_bandits(splits, config: dict, seed: int, runs: Runs) -> dict[str, Trace]:
    """One run per bandit variant; returns each variant's arm trace (learning rate played per episode)."""
    traces = {}
    for variant in config["variants"]:
        callback = _make_bandit_callback(variant, splits["probe"], config["episode_steps"], seed)
        result = _train(
            splits,
            config,
            seed,
            callbacks=[callback],
            learning_rate=ARMS[0],
        )
        history = callback.history
        result["backtracked"] = sum(record["backtracked"] for record in history)
        result["episodes"] = len(history)
        result["late_arm"] = statistics.median(record["arm_value"] for record in history[-len(history) // 4 :])
        runs.setdefault(f"bandit {variant}", []).append(result)
        traces[variant] = [(record["global_step"], record["arm_value"]) for record in history]
    return traces


def _rows(runs: Runs, fixed: dict[str, float], config: dict) -> list[dict[str, Any]]:
    """One row per run name, means over seeds; bandit rows add their cost and what the bandit did."""
    best = min(fixed.values())
    train_examples = config["max_steps"] * BATCH_SIZE
    fixed_seconds = statistics.median(
        run["train_seconds"] for name, named_runs in runs.items() if name.startswith("SGD") for run in named_runs
    )
    rows = []
    for name, named_runs in runs.items():
        loss = _mean(named_runs, "test_loss")
        row = {
            "run": name,
            "test_loss": loss,
            "test_accuracy": _mean(named_runs, "test_accuracy"),
            "loss / best fixed": loss / best,
            "cost (runs)": 1.0,
        }
        if name.startswith("bandit"):
            episodes = _mean(named_runs, "episodes")
            # one probe forward pass over PROBE_SIZE examples per episode boundary; a forward is ~1/3 of a step
            row["cost (runs)"] = 1.0 + (episodes + 1) * PROBE_SIZE / 3 / train_examples
            row["time / fixed run"] = _mean(named_runs, "train_seconds") / fixed_seconds
            row["backtracked episodes"] = f"{_mean(named_runs, 'backtracked'):.0f} / {episodes:.0f}"
            row["median lr, last quarter"] = statistics.median(run["late_arm"] for run in named_runs)
            row["beats fixed runs"] = f"{sum(loss < value for value in fixed.values())} / {len(fixed)}"
        rows.append(row)
    return rows


def _notes(runs: Runs, fixed: dict[str, float], config: dict, seeds: tuple[int, ...], train_size: int) -> list[str]:
    ranked = sorted(fixed.values())
    best, median, worst = ranked[0], statistics.median(ranked), ranked[-1]
    return [
        f"fixed-LR grid (same arms as the bandit): best {best:.4f}, median {median:.4f}, worst {worst:.4f} test loss; "
        f"Adadelta {_mean(runs['Adadelta'], 'test_loss'):.4f}",
        f"cost: the grid search is {len(ARMS)} runs; each bandit run is one run plus its probe evaluations "
        "(column 'cost (runs)', counting a forward pass as 1/3 of a training step); 'time / fixed run' is the "
        "measured training time over the median fixed-LR run's (same process, not interleaved, noisy on a busy machine)",
        f"data: scikit-learn digits, {train_size} training examples, {PROBE_SIZE} held-out "
        f"probe examples, 360 test examples; MLP 64-{config['hidden']}-{config['hidden']}-10, plain SGD, batch "
        f"{BATCH_SIZE}, {config['max_steps']} steps, episodes of {config['episode_steps']} steps; mean over seeds {list(seeds)}",
        "goal: within 2% of the best fixed LR (loss / best fixed <= 1.02) at the cost of one run, and better than the "
        "median fixed LR",
        "without backtracking, exploring a divergent arm once (here lr=3) can leave the network unrecoverable (dead "
        "ReLUs); backtracking undoes such episodes, which is why the paper pairs it with the bandit",
        "per-episode rewards are myopic: a smaller rate lowers the loss at once (it damps SGD noise) while a larger "
        "one pays off later, so rewards favour small rates late in training (short-horizon bias, Wu et al. 2018); "
        "'median lr, last quarter' shows where each bandit ended up",
    ]


def _headline(rows: list[dict[str, Any]], fixed: dict[str, float]) -> Headline:
    best, median = min(fixed.values()), statistics.median(fixed.values())
    default = next(row for row in rows if row["run"] == f"bandit {HEADLINE_VARIANT}")
    return Headline(
        better="lower",
        effect="final test loss of one D-UCB + backtracking run relative to the best of a grid search",
        baseline=f"best of {len(ARMS)} fixed-LR SGD runs (same grid)",
        value=default["loss / best fixed"],
        unit="x",
        note=f"median fixed LR: {median / best:.3g}x; cost {default['cost (runs)']:.2f} runs vs {len(ARMS)}",
    )


@benchmark("bandit_lr", summary="one bandit-driven SGD run vs every fixed learning rate of its grid and Adadelta")
def run(settings: BenchSettings) -> BenchReport:
    import transformers

    transformers.logging.set_verbosity_error()
    with single_thread():  # a 64-wide MLP gains nothing from intra-op threads, which only add contention
        return _run(settings)


def _run(settings: BenchSettings) -> BenchReport:
    config = QUICK if settings.quick else FULL
    seeds = tuple(settings.seed + offset for offset in config["seeds"])
    runs: Runs = {}
    traces: dict[str, Trace] = {}
    for seed in seeds:
        splits = load_digits_splits(seed, probe_size=PROBE_SIZE)
        _train_baselines(splits, config, seed, runs)
        seed_traces = _train_bandits(splits, config, seed, runs)
        traces = traces or seed_traces  # the figure shows the first seed's
    fixed = {name: _mean(named_runs, "test_loss") for name, named_runs in runs.items() if name.startswith("SGD")}
    rows = _rows(runs, fixed, config)
    bandit_losses = {row["run"]: row["test_loss"] for row in rows if row["run"].startswith("bandit")}
    return BenchReport(
        method="bandit_lr",
        title="Hot swapping: bandit learning-rate selection vs fixed learning rates",
        rows=rows,
        headline=_headline(rows, fixed),
        notes=_notes(runs, fixed, config, seeds, len(splits["train"])),
        meta={
            **config,
            "size": settings.size,
            "seeds": list(seeds),
            "arms": list(ARMS),
            "probe_size": PROBE_SIZE,
            "batch_size": BATCH_SIZE,
            "torch_threads_used": 1,
        },
        figures={"arm_trace": _trace_figure(traces, fixed, min(fixed.values()), bandit_losses)},
    )


def _mean(runs: list[dict[str, Any]], key: str) -> float:
    return statistics.fmean(run[key] for run in runs)


def _trace_figure(
    traces: dict[str, list[tuple[int, float]]], fixed: dict[str, float], best: float, bandit_losses: dict[str, float]
):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 3.8))
    for variant, trace in traces.items():
        steps, lrs = zip(*trace) if trace else ((), ())
        left.step(steps, lrs, where="post", label=variant, alpha=0.8)
    left.set(yscale="log", xlabel="training step", ylabel="learning rate played", title="arms chosen (first seed)")
    left.legend(fontsize=8)
    names = list(fixed)
    right.bar(range(len(names)), [fixed[name] for name in names], color="tab:gray")
    right.set_xticks(range(len(names)), [name.removeprefix("SGD lr=") for name in names], rotation=45)
    for (name, loss), color in zip(
        bandit_losses.items(), ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple")
    ):
        right.axhline(loss, color=color, lw=1.2, ls="--", label=name)
    right.legend(fontsize=8)
    right.set(
        yscale="log",
        xlabel="fixed learning rate",
        ylabel="final test loss",
        title="final test loss: fixed-LR grid vs bandit (dashed)",
    )
    figure.tight_layout()
    return figure
