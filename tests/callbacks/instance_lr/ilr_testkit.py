"""Tiny models, data and Trainer settings shared by the instance_lr tests."""

import datasets
import numpy as np
import torch
from torch import nn
from transformers import TrainingArguments


class TinyClassifier(nn.Module):
    def __init__(self, dim: int = 16, classes: int = 4, hidden: int = 32):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(dim, hidden), nn.ReLU())
        self.head = nn.Linear(hidden, classes)

    def forward(self, features, labels=None):
        logits = self.head(self.body(features))
        loss = None if labels is None else nn.functional.cross_entropy(logits, labels)
        return {"loss": loss, "logits": logits}


def blobs(n: int = 256, classes: int = 4, dim: int = 16, noise: float = 0.0, seed: int = 0, index: bool = True):
    """Gaussian blobs with a ``noise`` fraction of labels permuted among themselves (Data Parameters' recipe)."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(classes, dim)) * 2.0
    truth = rng.integers(0, classes, n)
    features = (centers[truth] + rng.normal(size=(n, dim))).astype(np.float32)
    labels = truth.copy()
    flipped = rng.permutation(n)[: int(noise * n)]
    labels[flipped] = rng.permutation(labels[flipped])
    data = datasets.Dataset.from_dict(
        {"features": features, "label": labels, "is_corrupt": labels != truth},
        features=datasets.Features(
            {
                "features": datasets.Sequence(datasets.Value("float32"), length=dim),
                "label": datasets.ClassLabel(num_classes=classes),
                "is_corrupt": datasets.Value("bool"),
            }
        ),
    )
    if index:
        from hf_eff.callbacks.instance_lr import add_sample_index

        data = add_sample_index(data)
    return data.with_format("torch")


def args(output_dir, **overrides) -> TrainingArguments:
    settings = {
        "per_device_train_batch_size": 16,
        "learning_rate": 0.1,
        "optim": "sgd",
        "lr_scheduler_type": "constant",
        "max_steps": 6,
        "save_strategy": "no",
        "report_to": "none",
        "disable_tqdm": True,
        "use_cpu": True,
        "logging_steps": 1000,
        "seed": 0,
        "data_seed": 0,
    }
    settings.update(overrides)
    return TrainingArguments(output_dir=str(output_dir), **settings)


def parameters(model: nn.Module) -> dict[str, torch.Tensor]:
    return {name: p.detach().clone() for name, p in model.named_parameters()}
