"""SWAP in miniature: small-batch SGD, large-batch SGD, SWAP with 2 and 4 workers, and torch's SWA, for the same
number of epochs on real offline images (Fashion-MNIST when Debian's ``dataset-fashion-mnist`` is installed, else
scikit-learn's digits), with a small BatchNorm CNN trained through ``Trainer``.

The paper's claim reproduced in miniature: SWAP reaches the small-batch test accuracy (or better) in clearly less
time than small-batch training, and beats large-batch training in accuracy.

How time is counted. This benchmark runs in one process, one thread (the machine it was written on has 2 cores),
so SWAP's workers run one after another (``num_workers=W`` in a single process: the same averaged model as W
processes). Two times are reported for SWAP: the **measured wall time** of that sequential run, and the
**parallel time on W devices** = phase 1 + the mean time of one phase-2 worker + phase 3 (phase 1 and 3 as
measured, i.e. without crediting phase 1 any data-parallel speed-up, phase 2 counted once because the workers run
concurrently on W devices). Time ratios are against the small-batch run of the same seed.

Every SGD run uses momentum 0.9 and a cosine schedule over its own length. SWAP's phase 1 is the large-batch run,
ended at the training-accuracy threshold tau or at ``epochs - phase2_epochs`` epochs, whichever comes first; each
worker then trains ``phase2_epochs`` epochs with the small batch, its own shuffle and a fresh cosine schedule from
``phase2_lr``. SWA (``torch.optim.swa_utils``): the small-batch run whose last ``phase2_epochs`` epochs use
``SWALR`` at ``phase2_lr`` and average the weights 4 times per epoch, then ``update_bn``.
"""

import statistics
import tempfile
import time
from typing import Any

import torch
from torch import nn

from hf_eff.bench import BenchReport, BenchSettings, Headline, benchmark, single_thread


QUICK = {"seeds": (0,), "train_size": 2000, "test_size": 1000, "epochs": 3, "phase2_epochs": 1, "workers": (2, 4)}
FULL = {"seeds": (0, 1, 2), "train_size": 5000, "test_size": 2000, "epochs": 5, "phase2_epochs": 2, "workers": (2, 4)}
SMALL_BATCH, LARGE_BATCH = 32, 256
SMALL_LR, LARGE_LR, PHASE2_LR = 0.05, 0.2, 0.05
STOP_ACCURACY = 0.85  # tau; phase 1 also ends at epochs - phase2_epochs


class BNConvNet(nn.Module):
    """Two conv-BatchNorm-ReLU-pool blocks and a linear head: small, and with BatchNorm as SWAP needs."""

    def __init__(self, channels: int, size: int, classes: int = 10, width: int = 12):
        super().__init__()

        def block(cin, cout):
            return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(), nn.MaxPool2d(2)]

        self.features = nn.Sequential(*block(channels, width), *block(width, 2 * width), nn.Flatten())
        self.head = nn.Linear(2 * width * (size // 4) ** 2, classes)

    def forward(self, pixel_values, labels=None):
        logits = self.head(self.features(pixel_values))
        loss = None if labels is None else nn.functional.cross_entropy(logits, labels)
        return {"loss": loss, "logits": logits}


class TensorExamples(torch.utils.data.Dataset):
    def __init__(self, pixel_values: torch.Tensor, labels: torch.Tensor):
        self.pixel_values, self.labels = pixel_values, labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return {"pixel_values": self.pixel_values[index], "labels": self.labels[index]}


def load_data(train_size: int, test_size: int, seed: int) -> tuple[str, TensorExamples, TensorExamples]:
    from hf_eff.data import load_image_dataset

    try:
        name = "fashion-mnist"
        data = load_image_dataset(name, seed=seed, max_train_samples=train_size, max_eval_samples=test_size)
    except ValueError:  # not installed: the digits always are
        name = "digits"
        data = load_image_dataset(name, seed=seed)
    data = data.with_format("torch")
    splits = [TensorExamples(data[s]["pixel_values"][:], data[s]["label"][:]) for s in ("train", "test")]
    return name, splits[0], splits[1]


@torch.no_grad()
def accuracy(model: nn.Module, dataset: TensorExamples) -> float:
    was_training = model.training
    model.eval()
    correct = 0
    for start in range(0, len(dataset), 1000):
        logits = model(dataset.pixel_values[start : start + 1000])["logits"]
        correct += (logits.argmax(-1) == dataset.labels[start : start + 1000]).sum().item()
    model.train(was_training)
    return correct / len(dataset)


def _args(output_dir: str, seed: int, batch: int, lr: float, epochs: float, scheduler: str = "cosine"):
    from transformers import TrainingArguments

    return TrainingArguments(
        output_dir=output_dir,
        per_device_train_batch_size=batch,
        learning_rate=lr,
        lr_scheduler_type=scheduler,
        optim="sgd",
        optim_args="momentum=0.9",
        num_train_epochs=epochs,
        logging_strategy="no",
        save_strategy="no",
        report_to="none",
        disable_tqdm=True,
        use_cpu=True,
        seed=seed,
        data_seed=seed,
    )


def _model(train: TensorExamples, seed: int) -> BNConvNet:
    torch.manual_seed(seed)
    _, channels, size, _ = train.pixel_values.shape
    return BNConvNet(channels, size)


def run_sgd(train, test, *, seed: int, batch: int, lr: float, epochs: float) -> dict[str, Any]:
    from transformers import Trainer

    model = _model(train, seed)
    with tempfile.TemporaryDirectory() as output_dir:
        trainer = Trainer(model=model, args=_args(output_dir, seed, batch, lr, epochs), train_dataset=train)
        start = time.perf_counter()
        trainer.train()
        seconds = time.perf_counter() - start
    return {"test_accuracy": accuracy(model, test), "wall_s": seconds}


class _PhaseClock:
    """Times SWAP's phases from the outside (the callback's history grows by one record per phase boundary) and
    keeps each worker's final weights. ``before`` must precede the SWAPCallback in the callback list (it sees a
    worker's last step before the next worker is reset to the phase-1 weights), ``after`` must follow it."""

    def __init__(self, swap):
        from transformers import TrainerCallback

        clock = self
        self.marks, self.worker_models, self.loop_end = [], [], None

        class Before(TrainerCallback):
            def on_step_end(self, args, state, control, model=None, **kwargs):
                if swap.phase == 2 and swap.worker_steps + 1 == swap.phase2_steps_per_worker:
                    clock.worker_models.append({k: v.detach().clone() for k, v in model.state_dict().items()})

        class After(TrainerCallback):
            def on_train_begin(self, args, state, control, **kwargs):
                clock.marks = [("begin", time.perf_counter())]

            def on_step_end(self, args, state, control, **kwargs):
                while len(clock.marks) - 1 < len(swap.history):
                    clock.marks.append((swap.history[len(clock.marks) - 1]["event"], time.perf_counter()))

            def on_train_end(self, args, state, control, **kwargs):
                clock.loop_end = time.perf_counter()

        self.before, self.after = Before(), After()


def run_swap(train, test, *, seed: int, workers: int, epochs: float, phase2_epochs: float) -> dict[str, Any]:
    from hf_eff.callbacks.swap import SWAPCallback, SWAPTrainer

    phase1_epochs = epochs - phase2_epochs
    swap = SWAPCallback(
        num_workers=workers,
        stop_accuracy=STOP_ACCURACY,
        phase1_stop_fn=lambda state: state.epoch >= phase1_epochs - 1e-9,
        phase2_learning_rate=PHASE2_LR,
        phase2_batch_size=SMALL_BATCH,
        phase2_epochs=phase2_epochs,
        save_averaged_model=False,
    )
    clock = _PhaseClock(swap)
    model = _model(train, seed)
    with tempfile.TemporaryDirectory() as output_dir:
        args = _args(output_dir, seed, LARGE_BATCH, LARGE_LR, epochs)  # phase 1 = the large-batch run, cut short
        trainer = SWAPTrainer(model=model, args=args, train_dataset=train, callbacks=[clock.before, swap, clock.after])
        start = time.perf_counter()
        trainer.train()
        end = time.perf_counter()
    marks = dict(clock.marks[:2])
    phase1 = marks["phase1_end"] - marks["begin"]
    boundaries = [t for _, t in clock.marks[1:]]
    worker_times = [b - a for a, b in zip(boundaries, boundaries[1:])]
    phase3 = end - clock.loop_end
    worker_accuracies = []
    for state in clock.worker_models:
        worker = _model(train, seed)
        worker.load_state_dict(state)
        worker_accuracies.append(accuracy(worker, test))
    return {
        "test_accuracy": accuracy(model, test),
        "wall_s": end - start,
        "parallel_s": phase1 + statistics.fmean(worker_times) + phase3,
        "phase1_s": phase1,
        "parallel_ideal_s": phase1 / workers + statistics.fmean(worker_times) + phase3,
        "phase1_epochs": swap.phase1_end_step / -(-len(train) // LARGE_BATCH),
        "phase1_reason": swap.history[0]["reason"],
        "worker_accuracy_mean": statistics.fmean(worker_accuracies),
        "worker_accuracy_best": max(worker_accuracies),
        "worker_distance_to_mean": swap.history[-1]["swap/worker_distance_to_mean"],
    }


def run_swa(train, test, *, seed: int, epochs: float, swa_epochs: float) -> dict[str, Any]:
    """Small-batch SGD whose last ``swa_epochs`` use torch's SWALR and AveragedModel, then update_bn."""
    from torch.optim.swa_utils import SWALR, AveragedModel, update_bn
    from transformers import Trainer, TrainerCallback

    model = _model(train, seed)
    averaged = AveragedModel(model)
    steps_per_epoch = len(train) // SMALL_BATCH + (len(train) % SMALL_BATCH > 0)
    swa_start = round((epochs - swa_epochs) * steps_per_epoch)
    every = max(1, steps_per_epoch // 4)

    class SWA(TrainerCallback):
        scheduler = None

        def on_step_begin(self, args, state, control, optimizer=None, **kwargs):
            if state.global_step >= swa_start and self.scheduler is None:
                self.scheduler = SWALR(optimizer, swa_lr=PHASE2_LR, anneal_epochs=max(1, every))

        def on_step_end(self, args, state, control, model=None, **kwargs):
            if self.scheduler is not None:
                self.scheduler.step()  # after Trainer's own scheduler: SWALR's rate is the one used next step
                if (state.global_step - swa_start) % every == 0:
                    averaged.update_parameters(model)

    with tempfile.TemporaryDirectory() as output_dir:
        args = _args(output_dir, seed, SMALL_BATCH, SMALL_LR, epochs)
        trainer = Trainer(model=model, args=args, train_dataset=train, callbacks=[SWA()])
        start = time.perf_counter()
        trainer.train()
        loader = torch.utils.data.DataLoader(train.pixel_values, batch_size=LARGE_BATCH)
        update_bn(loader, averaged)
        seconds = time.perf_counter() - start
    return {"test_accuracy": accuracy(averaged.module, test), "wall_s": seconds}


@benchmark("swap", summary="SWAP (2 and 4 workers) vs small-batch SGD, large-batch SGD and torch SWA, same epochs")
def run(settings: BenchSettings) -> BenchReport:
    import transformers

    transformers.logging.set_verbosity_error()
    with single_thread():  # one thread each: like-for-like timings on a shared CPU
        return _run(settings)


def _run(settings: BenchSettings) -> BenchReport:
    config = QUICK if settings.quick else FULL
    seeds = tuple(settings.seed + offset for offset in config["seeds"])
    epochs, phase2_epochs = config["epochs"], config["phase2_epochs"]
    results: dict[str, list[dict[str, Any]]] = {}
    dataset_name = None
    for seed in seeds:
        dataset_name, train, test = load_data(config["train_size"], config["test_size"], seed)
        # every method once per seed, in turn, so that drift of a shared machine affects them alike
        for name, result in _runs_for_seed(train, test, seed, config):
            results.setdefault(name, []).append(result)

    small = results["small-batch SGD"]
    rows = []
    for name, runs in results.items():
        row = {
            "run": name,
            "test_accuracy": _mean(runs, "test_accuracy"),
            "accuracy std": statistics.pstdev(r["test_accuracy"] for r in runs),
            "wall time / small-batch (measured)": _ratio(runs, small, "wall_s"),
        }
        if name.startswith("SWAP"):
            row["parallel time on W devices / small-batch"] = _ratio(runs, small, "parallel_s")
            row["same, phase 1 ideally data-parallel / small-batch"] = _ratio(runs, small, "parallel_ideal_s")
            row["phase-1 epochs"] = _mean(runs, "phase1_epochs")
            row["mean worker accuracy"] = _mean(runs, "worker_accuracy_mean")
            row["best worker accuracy"] = _mean(runs, "worker_accuracy_best")
            row["worker distance to mean"] = _mean(runs, "worker_distance_to_mean")
        rows.append(row)

    by_name = {row["run"]: row for row in rows}
    swap2 = by_name["SWAP W=2"]
    reasons = sorted({r["phase1_reason"] for name, runs in results.items() if name.startswith("SWAP") for r in runs})
    gap = 100 * (swap2["test_accuracy"] - by_name["small-batch SGD"]["test_accuracy"])
    large_gap = 100 * (swap2["test_accuracy"] - by_name["large-batch SGD"]["test_accuracy"])
    notes = [
        f"data: {dataset_name}, {config['train_size']} training and {config['test_size']} test images "
        f"(digits: its own 80/20 split); {len(seeds)} seed(s) {list(seeds)}; every run {epochs} epochs per model",
        f"small batch {SMALL_BATCH} (lr {SMALL_LR}), large batch {LARGE_BATCH} (lr {LARGE_LR}); SGD momentum 0.9, "
        "cosine schedules; BatchNorm CNN 12-24 channels",
        f"SWAP: phase 1 = the large-batch run until train accuracy >= {STOP_ACCURACY} or {epochs - phase2_epochs} "
        f"epochs (reasons seen: {reasons}); phase 2 = {phase2_epochs} epoch(s) per worker at batch {SMALL_BATCH} "
        f"from lr {PHASE2_LR} (cosine); phase 3 = average + BatchNorm recompute",
        "wall time (measured): one process, one thread, SWAP's workers one after another. Parallel time on W "
        "devices (computed): phase 1 and 3 as measured + one phase-2 worker (mean), no data-parallel speed-up "
        "credited to phase 1 and no communication cost charged. 'Phase 1 ideally data-parallel' (computed) also "
        "divides phase 1 by W, as W devices would split its large batch (ideal scaling; communication not charged)",
        f"SWAP W=2 vs small-batch: {gap:+.2f} pp test accuracy at "
        f"{swap2['parallel time on W devices / small-batch']:.2f}x its time (parallel); vs large-batch: "
        f"{large_gap:+.2f} pp",
        "SWA: the small-batch run with torch.optim.swa_utils (SWALR + AveragedModel over its last "
        f"{phase2_epochs} epoch(s), 4 averages per epoch, update_bn); one process, so its time is its wall time",
    ]
    headline = Headline(
        better="higher",
        effect="SWAP (2 workers) test accuracy minus small-batch SGD's, same epochs",
        baseline="small-batch SGD",
        value=gap,
        unit="pp",
        note=(
            f"at {swap2['parallel time on W devices / small-batch']:.2f}x the small-batch time on 2 devices "
            f"(computed; {swap2['wall time / small-batch (measured)']:.2f}x measured sequentially); "
            f"{large_gap:+.2f} pp vs large-batch SGD"
        ),
    )
    return BenchReport(
        method="swap",
        title="SWAP: stochastic weight averaging in parallel vs small-batch, large-batch SGD and SWA",
        rows=rows,
        headline=headline,
        notes=notes,
        meta={
            **{k: list(v) if isinstance(v, tuple) else v for k, v in config.items()},
            "size": settings.size,
            "seeds": list(seeds),
            "dataset": dataset_name,
            "small_batch": SMALL_BATCH,
            "large_batch": LARGE_BATCH,
            "stop_accuracy": STOP_ACCURACY,
            "torch_threads_used": 1,
        },
    )


def _runs_for_seed(train, test, seed: int, config: dict[str, Any]):
    epochs, phase2_epochs = config["epochs"], config["phase2_epochs"]
    yield "small-batch SGD", run_sgd(train, test, seed=seed, batch=SMALL_BATCH, lr=SMALL_LR, epochs=epochs)
    yield "large-batch SGD", run_sgd(train, test, seed=seed, batch=LARGE_BATCH, lr=LARGE_LR, epochs=epochs)
    for workers in config["workers"]:
        result = run_swap(train, test, seed=seed, workers=workers, epochs=epochs, phase2_epochs=phase2_epochs)
        yield f"SWAP W={workers}", result
    yield "SWA (torch.optim.swa_utils)", run_swa(train, test, seed=seed, epochs=epochs, swa_epochs=phase2_epochs)


def _mean(runs: list[dict[str, Any]], key: str) -> float:
    return statistics.fmean(run[key] for run in runs)


def _ratio(runs: list[dict[str, Any]], baseline: list[dict[str, Any]], key: str) -> float:
    """Mean over seeds of this run's time over the small-batch run's time of the same seed."""
    return statistics.fmean(run[key] / base["wall_s"] for run, base in zip(runs, baseline))
