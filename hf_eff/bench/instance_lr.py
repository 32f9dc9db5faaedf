"""Per-instance learning rates under label noise, against plain training, Data Parameters and small-loss selection,
on real offline images (scikit-learn's 8x8 handwritten digits), with a small CNN and an MLP.

Every run trains the same network from the same initialisation with the same data order through a ``Trainer``
(plain SGD, constant rate). Label noise follows the Data Parameters recipe: a random ``rate`` fraction of the
training labels is permuted among themselves ("symmetric", keeping the label marginals), or moved to the next class
("pairs", asymmetric). Reported per setting: test accuracy (mean over seeds) of

- plain training;
- Data Parameters (official defaults: instance temperatures, SGD lr 0.1, momentum 0.9, clamp [1/20, 20]);
- small-loss selection (co-teaching's criterion with one network): each batch keeps its ``1 - r(t)`` fraction of
  smallest losses, ``r`` ramping linearly to the true noise rate over the first quarter of training. It is *given*
  the noise rate, which the other methods never see;
- per-instance learning rates (``InstanceLRCallback``, next-batch reference);

plus the AUROC with which each method's per-row value (rate, temperature, or final training loss for small-loss)
separates flipped from clean rows, and the time of a short ``train()`` relative to plain training (one thread,
interleaved, repeated). A personalisation run learns the rates against a small clean set of a few target classes
(``meta_objective="meta_set"``) and reports accuracy on those classes.
"""

import statistics
from functools import partial
from typing import Any

import numpy as np
import torch
from torch import nn

from hf_eff.bench import BenchReport, BenchSettings, Headline, benchmark, compare_timings, single_thread
from hf_eff.bench.training import DigitsCNN, DigitsMLP, InMemoryExamples, evaluate, train_once


NOISE_SETTINGS = {  # name -> (rate, kind)
    "clean": (0.0, "symmetric"),
    "sym-20%": (0.2, "symmetric"),
    "sym-40%": (0.4, "symmetric"),
    "pairs-30%": (0.3, "pairs"),
}
METHODS = ("plain", "data_parameters", "small_loss", "instance_lr")
QUICK = {"seeds": (0,), "epochs": 10, "archs": ("mlp",), "noise": ("clean", "sym-40%"), "timing_repeats": 3}
FULL = {"seeds": (0, 1, 2), "epochs": 15, "archs": ("cnn", "mlp"), "noise": tuple(NOISE_SETTINGS), "timing_repeats": 5}
BATCH_SIZE, LEARNING_RATE, MOMENTUM, TIMING_STEPS = 32, 0.05, 0.9, 40
INSTANCE_LR: dict[str, Any] = {}  # the library defaults
TARGET_CLASSES, META_PER_CLASS = (0, 1, 2), 20


ARCHS = {"mlp": partial(DigitsMLP, hidden=128), "cnn": DigitsCNN}


class IndexedExamples(InMemoryExamples):
    """In-memory ``{"pixel_values", "labels", "sample_idx"}`` rows (fast to index, unlike Arrow rows)."""

    def __getitem__(self, index: int) -> dict[str, Any]:
        return {**super().__getitem__(index), "sample_idx": index}


def corrupt_labels(labels: np.ndarray, rate: float, kind: str, seed: int) -> np.ndarray:
    """Labels with a ``rate`` fraction of rows corrupted: permuted among themselves, or moved to the next class."""
    rng = np.random.default_rng(seed)
    chosen = rng.permutation(len(labels))[: int(round(rate * len(labels)))]
    noisy = labels.copy()
    if kind == "symmetric":
        noisy[chosen] = rng.permutation(labels[chosen])
    else:
        noisy[chosen] = (labels[chosen] + 1) % (labels.max() + 1)
    return noisy


def load_digits(seed: int):
    from hf_eff.data import load_image_dataset

    data = load_image_dataset("digits", seed=seed).with_format("torch")
    test = InMemoryExamples(data["test"]["pixel_values"][:], data["test"]["label"][:])
    return (data["train"]["pixel_values"][:], data["train"]["label"][:].numpy()), test


def _small_loss_trainer_class():
    from transformers import Trainer

    class _SmallLossTrainer(Trainer):
        """Keep each batch's ``1 - r(t)`` fraction of smallest per-sample losses (co-teaching's criterion)."""

        loss_is_scaled_for_ga = False
        forget_rate, ramp_steps = 0.0, 1

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            inputs = dict(inputs)
            inputs.pop("sample_idx", None)
            labels = inputs.pop("labels")
            outputs = model(**inputs)
            losses = nn.functional.cross_entropy(outputs["logits"], labels, reduction="none")
            forget = self.forget_rate * min(self.state.global_step / self.ramp_steps, 1.0)
            keep = max(1, int(round((1 - forget) * len(losses))))
            loss = losses.topk(keep, largest=False).values.mean()
            return (loss, outputs) if return_outputs else loss

    return _SmallLossTrainer


def _method_setup(method: str, *, noise_rate: float, total_steps: int, meta=None) -> dict[str, Any]:
    """The ``train_once`` arguments (trainer class, callbacks) of one method."""
    from hf_eff.callbacks.instance_lr import DataParametersCallback, InstanceLRCallback, InstanceLRTrainer

    if method == "plain":
        return {}
    if method == "small_loss":
        forget = {"forget_rate": noise_rate, "ramp_steps": max(1, total_steps // 4)}
        return {"trainer_class": type("SmallLossTrainer", (_small_loss_trainer_class(),), forget)}
    if method == "data_parameters":
        callback = DataParametersCallback()
    elif meta is None:
        callback = InstanceLRCallback(**INSTANCE_LR)
    else:
        callback = InstanceLRCallback(
            meta_objective="meta_set", meta_dataset=meta, meta_batch_size=len(meta), **INSTANCE_LR
        )
    return {"trainer_class": InstanceLRTrainer, "callbacks": [callback]}


def _train(method: str, arch: str, train, *, seed: int, steps: int, noise_rate: float, meta=None):
    return train_once(
        train,
        max_steps=steps,
        seed=seed,
        model_factory=ARCHS[arch],
        optimizer_factory=lambda parameters: torch.optim.SGD(parameters, lr=LEARNING_RATE, momentum=MOMENTUM),
        training_args={"learning_rate": LEARNING_RATE, "max_grad_norm": 0.0, "logging_steps": 10**6},
        **_method_setup(method, noise_rate=noise_rate, total_steps=steps, meta=meta),
    )


def _auroc(clean: np.ndarray, score: np.ndarray) -> float:
    """AUROC of ``score`` ranking clean rows above corrupted ones (nan without both)."""
    if clean.all() or not clean.any():
        return float("nan")
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(clean, score))


def _row_losses(model, train: IndexedExamples) -> np.ndarray:
    model.eval()
    with torch.no_grad():
        logits = model(train.pixel_values)["logits"]
        return nn.functional.cross_entropy(logits, train.labels, reduction="none").numpy()


def run_method(method, arch, train, test, *, seed, epochs, noise_rate, clean, meta=None) -> dict[str, Any]:
    steps = epochs * (len(train) // BATCH_SIZE + 1)
    result = _train(method, arch, train, seed=seed, steps=steps, noise_rate=noise_rate, meta=meta)
    callbacks = result.trainer.hf_eff_callbacks() if hasattr(result.trainer, "hf_eff_callbacks") else []
    if method == "instance_lr":
        score = callbacks[0].rates.numpy()
    elif method == "data_parameters":
        score = -callbacks[0].row_values().numpy()  # a high temperature means "counts less"
    else:
        score = -_row_losses(result.model, train)
    return {
        "test_accuracy": evaluate(result.model, test)["accuracy"],
        "auroc": _auroc(clean, score),
        "seconds": result.train_seconds,
        "model": result.model,
    }


def _timings(train, arch: str, repeats: int) -> dict[str, float]:
    def run(method):
        return lambda: _train(method, arch, train, seed=0, steps=TIMING_STEPS, noise_rate=0.4)

    timings = compare_timings({m: run(m) for m in METHODS}, baseline="plain", repeats=repeats, warmup=1)
    return {m: t.ratio for m, t in timings.items()}


@benchmark(
    "instance_lr", summary="per-instance learning rates vs plain, Data Parameters and small-loss under label noise"
)
def run(settings: BenchSettings) -> BenchReport:
    import transformers

    transformers.logging.set_verbosity_error()
    with single_thread():  # tiny networks: intra-op threads only add contention
        return _run(settings)


def _run(settings: BenchSettings) -> BenchReport:
    config = QUICK if settings.quick else FULL
    seeds = [settings.seed + offset for offset in config["seeds"]]
    results: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    personal: dict[str, list[tuple[float, float]]] = {}
    for seed in seeds:
        (pixels, labels), test = load_digits(seed)
        for noise in config["noise"]:
            rate, kind = NOISE_SETTINGS[noise]
            noisy = corrupt_labels(labels, rate, kind, seed)
            train = IndexedExamples(pixels, torch.as_tensor(noisy))
            clean = noisy == labels
            for arch in config["archs"]:
                for method in METHODS:
                    result = run_method(
                        method, arch, train, test, seed=seed, epochs=config["epochs"], noise_rate=rate, clean=clean
                    )
                    result.pop("model")
                    results.setdefault((noise, arch, method), []).append(result)
        personal_run = _personalisation(pixels, labels, test, seed, config["epochs"])
        for name, value in personal_run.items():
            personal.setdefault(name, []).append(value)

    rows = []
    for (noise, arch, method), runs in results.items():
        plain = results[(noise, arch, "plain")]
        rows.append(
            {
                "noise": noise,
                "arch": arch,
                "method": method,
                "test_accuracy": _mean(runs, "test_accuracy"),
                "vs plain (pp)": 100 * (_mean(runs, "test_accuracy") - _mean(plain, "test_accuracy")),
                "noise AUROC": _mean(runs, "auroc"),
                "train s": _mean(runs, "seconds"),
            }
        )
    for arch in config["archs"]:  # step-time ratios per architecture, measured on the clean labels
        ratios = _timings(IndexedExamples(pixels, torch.as_tensor(labels)), arch, config["timing_repeats"])
        for row in rows:
            if row["arch"] == arch:
                row["step time / plain"] = ratios[row["method"]]
    for name, values in personal.items():
        rows.append(
            {
                "noise": "sym-40%, target classes " + ",".join(map(str, TARGET_CLASSES)),
                "arch": "mlp",
                "method": name,
                "test_accuracy": statistics.fmean(overall for _, overall in values),
                "target-class accuracy": statistics.fmean(target for target, _ in values),
            }
        )

    headline_noise = "sym-40%" if "sym-40%" in config["noise"] else config["noise"][-1]
    ilr = next(r for r in rows if r["method"] == "instance_lr" and r["noise"] == headline_noise)
    notes = [
        f"data: scikit-learn digits (1,437 train / 360 test, 8x8), noise on the training labels only; {config['epochs']} "
        f"epochs of SGD (lr {LEARNING_RATE}, momentum {MOMENTUM}, batch {BATCH_SIZE}, constant rate, no clipping); mean over seeds {seeds}",
        f"InstanceLRCallback{INSTANCE_LR}; DataParametersCallback() with the official defaults; small-loss is given the "
        "true noise rate (the others are not)",
        "noise AUROC: how well the per-row value ranks clean above flipped rows (rate; minus temperature; minus final "
        "training loss for small-loss and plain)",
        f"step time / plain: median time of a {TIMING_STEPS}-step train() call per architecture, one thread, "
        f"methods interleaved, {config['timing_repeats']} repeats (includes Trainer setup; the last seed's data)",
        f"personalisation: 40% symmetric noise; InstanceLR learns its rates against {META_PER_CLASS} clean held-out rows "
        f"per target class {TARGET_CLASSES} (meta_objective='meta_set'); target-class accuracy is measured on the test rows "
        "of those classes (a model biased toward them gains there and loses elsewhere: see test_accuracy)",
    ]
    return BenchReport(
        method="instance_lr",
        title="Per-instance dynamic learning rates under label noise (digits)",
        rows=rows,
        headline=Headline(
            better="higher",
            effect=f"test accuracy under {headline_noise} label noise, {ilr['arch']}",
            baseline="plain training in the same run",
            value=ilr["vs plain (pp)"],
            unit="pp",
            note=f"noise AUROC {ilr['noise AUROC']:.3f}",
        ),
        notes=notes,
        meta={**config, "seeds": seeds, "size": settings.size, "instance_lr": INSTANCE_LR, "torch_threads_used": 1},
    )


def _personalisation(pixels, labels, test, seed: int, epochs: int) -> dict[str, tuple[float, float]]:
    """Plain vs next-batch vs target-set-referenced rates under 40% noise: (target-class, overall) accuracy."""
    rng = np.random.default_rng(seed + 1000)
    meta_rows = np.concatenate([rng.permutation(np.flatnonzero(labels == c))[:META_PER_CLASS] for c in TARGET_CLASSES])
    rest = np.setdiff1d(np.arange(len(labels)), meta_rows)
    noisy = corrupt_labels(labels[rest], 0.4, "symmetric", seed)
    train = IndexedExamples(pixels[rest], torch.as_tensor(noisy))
    meta = [{"pixel_values": pixels[i], "labels": int(labels[i])} for i in meta_rows]
    in_target = torch.isin(test.labels, torch.tensor(TARGET_CLASSES))
    target_test = InMemoryExamples(test.pixel_values[in_target], test.labels[in_target])
    clean = noisy == labels[rest]
    scores = {}
    for name, method, meta_set in (
        ("plain", "plain", None),
        ("instance_lr (next batch)", "instance_lr", None),
        ("instance_lr (target meta set)", "instance_lr", meta),
    ):
        result = run_method(
            method, "mlp", train, test, seed=seed, epochs=epochs, noise_rate=0.4, clean=clean, meta=meta_set
        )
        scores[name] = (evaluate(result["model"], target_test)["accuracy"], result["test_accuracy"])
    return scores


def _mean(runs: list[dict[str, Any]], key: str) -> float:
    values = [run[key] for run in runs if run[key] == run[key]]  # skip nan
    return statistics.fmean(values) if values else float("nan")
