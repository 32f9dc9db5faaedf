"""One small, fully offline training run, shared by the benchmarks and examples of training-time methods.

A method that changes how a ``Trainer`` trains (a callback, a Trainer subclass, an optimizer) is measured by
training the same model on the same data in the same order with and without it. This module is that run: the
scikit-learn 8x8 digits held in memory (:func:`load_digits_splits`), a small perceptron (:class:`DigitsMLP`), and
:func:`train_once`, which trains through a real ``Trainer`` (or subclass) and returns test metrics and the
training time. It is not a benchmark itself (``registry._NON_BENCHMARK_MODULES``).
"""

import tempfile
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch
from torch import nn


if TYPE_CHECKING:  # transformers is imported when a run starts, so that listing benchmarks stays fast
    from transformers import Trainer, TrainerCallback


class DigitsMLP(nn.Module):
    """A two-hidden-layer perceptron on flattened 8x8 images: small enough to train in seconds on one CPU thread,
    deep enough to diverge at a too-large learning rate (the failure the training methods are about)."""

    def __init__(self, hidden: int = 64, classes: int = 10, pixels: int = 64):
        super().__init__()
        self.net = nn.Sequential(
            nn.Flatten(),
            nn.Linear(pixels, hidden),
            nn.ReLU(),
            nn.Linear(hidden, hidden),
            nn.ReLU(),
            nn.Linear(hidden, classes),
        )

    def forward(self, pixel_values: torch.Tensor, labels: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        logits = self.net(pixel_values)
        loss = None if labels is None else nn.functional.cross_entropy(logits, labels)
        return {"loss": loss, "logits": logits}


class DigitsCNN(nn.Module):
    """Two 3x3 convolutions and a linear classifier on 1x8x8 images: the convolutional counterpart of
    :class:`DigitsMLP`, for methods whose effect may depend on the architecture."""

    def __init__(self, classes: int = 10):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(),
        )  # fmt: skip
        self.classifier = nn.Linear(32 * 4 * 4, classes)

    def forward(self, pixel_values: torch.Tensor, labels: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        logits = self.classifier(self.features(pixel_values))
        loss = None if labels is None else nn.functional.cross_entropy(logits, labels)
        return {"loss": loss, "logits": logits}


class InMemoryExamples(torch.utils.data.Dataset):
    """Tensors held in memory, served as ``{"pixel_values", "labels"}`` examples (fast to index)."""

    def __init__(self, pixel_values: torch.Tensor, labels: torch.Tensor):
        if len(pixel_values) != len(labels):
            raise ValueError(
                f"pixel_values and labels must have the same length, got {len(pixel_values)} and {len(labels)}"
            )
        self.pixel_values, self.labels = pixel_values, labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return {"pixel_values": self.pixel_values[index], "labels": self.labels[index]}


def load_digits_splits(seed: int, probe_size: int = 256) -> dict[str, InMemoryExamples]:
    """``train`` / ``probe`` / ``test`` splits of the digits; the probe set (what a method may evaluate on while
    training) is held out of the training data, the test set is never seen during training."""
    from hf_eff.data.images import load_image_dataset

    data = load_image_dataset("digits", seed=seed).with_format("torch")
    pixels, labels = data["train"]["pixel_values"][:], data["train"]["label"][:]
    if not isinstance(probe_size, int) or not 0 <= probe_size < len(labels):
        raise ValueError(f"probe_size must be an int in [0, {len(labels)}), got {probe_size!r}")
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed))
    probe, train = order[:probe_size], order[probe_size:]
    return {
        "train": InMemoryExamples(pixels[train], labels[train]),
        "probe": InMemoryExamples(pixels[probe], labels[probe]),
        "test": InMemoryExamples(data["test"]["pixel_values"][:], data["test"]["label"][:]),
    }


def evaluate(model: nn.Module, dataset: torch.utils.data.Dataset, batch_size: int = 1024) -> dict[str, float]:
    """Mean cross-entropy ``loss`` and ``accuracy`` of a classifier returning ``{"logits": ...}``."""
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size)
    device = next(model.parameters()).device
    was_training, total_loss, correct, count = model.training, 0.0, 0, 0
    model.eval()
    with torch.no_grad():
        for batch in loader:
            labels = batch["labels"].to(device)
            logits = model(batch["pixel_values"].to(device))["logits"]
            total_loss += nn.functional.cross_entropy(logits, labels, reduction="sum").item()
            correct += (logits.argmax(-1) == labels).sum().item()
            count += len(labels)
    model.train(was_training)
    return {"loss": total_loss / count, "accuracy": correct / count}


@dataclass
class TrainResult:
    """What :func:`train_once` measured. ``metrics`` is :func:`evaluate` on the eval set (empty without one);
    ``trainer`` is kept for what only it knows (callbacks restored from a checkpoint, the process rank)."""

    metrics: dict[str, float]
    train_seconds: float
    trainer: "Trainer" = field(repr=False)

    @property
    def model(self) -> nn.Module:
        return self.trainer.model


def train_once(
    train_dataset: torch.utils.data.Dataset,
    *,
    max_steps: int,
    seed: int = 0,
    model_factory: Callable[[], nn.Module] = DigitsMLP,
    eval_dataset: torch.utils.data.Dataset | None = None,
    callbacks: Sequence["TrainerCallback"] = (),
    trainer_class: type["Trainer"] | None = None,
    optimizer_factory: Callable[[Iterable[nn.Parameter]], torch.optim.Optimizer] | None = None,
    training_args: Mapping[str, Any] | None = None,
    trainer_kwargs: Mapping[str, Any] | None = None,
    output_dir: str | None = None,
    resume_from_checkpoint: str | bool | None = None,
    quiet: bool = True,
) -> TrainResult:
    """Train ``model_factory()`` (built after seeding with ``seed``) for ``max_steps`` steps with ``trainer_class``
    (default ``Trainer``).

    Defaults: plain SGD at a constant learning rate 1.0, batch 32, no checkpoints, no reporting, CPU unless a GPU is
    present; ``training_args`` overrides any ``TrainingArguments`` field (``learning_rate``, ``optim``,
    ``save_steps``, ...), ``trainer_kwargs`` adds ``Trainer`` arguments (``data_collator``, ``compute_metrics``).
    ``optimizer_factory(parameters)`` supplies an optimizer ``TrainingArguments.optim`` cannot name (the scheduler
    stays the Trainer's). Without ``output_dir`` the run writes into a temporary folder that is removed afterwards.
    ``quiet`` drops the per-log-step printout and progress bar (noise when a benchmark trains dozens of runs).
    """
    from transformers import PrinterCallback, Trainer, TrainingArguments

    trainer_class = trainer_class or Trainer
    torch.manual_seed(seed)
    model = model_factory()
    optimizers = (optimizer_factory(model.parameters()), None) if optimizer_factory is not None else (None, None)
    with tempfile.TemporaryDirectory() if output_dir is None else nullcontext(str(output_dir)) as run_dir:
        arguments = {
            "output_dir": run_dir,
            "max_steps": max_steps,
            "per_device_train_batch_size": 32,
            "learning_rate": 1.0,
            "lr_scheduler_type": "constant",
            "optim": "sgd",
            "logging_steps": max_steps,
            "save_strategy": "no",
            "report_to": "none",
            "disable_tqdm": quiet,
            "use_cpu": not torch.cuda.is_available(),
            "seed": seed,
            "data_seed": seed,
            **(training_args or {}),
        }
        trainer = trainer_class(
            model=model,
            args=TrainingArguments(**arguments),
            train_dataset=train_dataset,
            optimizers=optimizers,
            callbacks=list(callbacks) or None,
            **(trainer_kwargs or {}),
        )
        if quiet:
            trainer.remove_callback(PrinterCallback)
        start = time.perf_counter()
        trainer.train(resume_from_checkpoint=resume_from_checkpoint)
        seconds = time.perf_counter() - start
    metrics = evaluate(model, eval_dataset) if eval_dataset is not None else {}
    return TrainResult(metrics=metrics, train_seconds=seconds, trainer=trainer)
