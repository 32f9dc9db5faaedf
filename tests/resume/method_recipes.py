"""Crash-resume recipes for SWAP and the per-instance learning rates (and Data Parameters): tiny classifiers with
dropout (so that a method disturbing the random stream is caught) on fixed Gaussian blobs.

The harness (:mod:`hf_eff.testing.resume`) loads this file by path in fresh processes, so it imports nothing from
the test folders. Options are JSON keyword arguments.
"""

import os

import datasets
import torch
from safetensors.torch import load_file
from torch import nn
from transformers import PreTrainedConfig, PreTrainedModel, TrainingArguments
from transformers.modeling_outputs import SequenceClassifierOutput

from hf_eff.callbacks.instance_lr import (
    DataParametersCallback,
    InstanceLRCallback,
    InstanceLRTrainer,
    add_sample_index,
)
from hf_eff.callbacks.swap import SWAPCallback, SWAPTrainer


FEATURES, CLASSES, ROWS = 8, 3, 64


class BlobNetConfig(PreTrainedConfig):
    model_type = "hf_eff_test_resume_blobnet"
    hidden: int = 16
    batch_norm: bool = True


class BlobNet(PreTrainedModel):
    """Linear -> (BatchNorm) -> ReLU -> Dropout -> Linear head: BatchNorm buffers for SWAP's phase 3, dropout for
    the random stream."""

    config_class = BlobNetConfig
    main_input_name = "features"
    accepts_loss_kwargs = False

    def __init__(self, config: BlobNetConfig):
        super().__init__(config)
        norm = nn.BatchNorm1d(config.hidden) if config.batch_norm else nn.Identity()
        self.body = nn.Sequential(nn.Linear(FEATURES, config.hidden), norm, nn.ReLU(), nn.Dropout(0.2))
        self.head = nn.Linear(config.hidden, CLASSES)
        self.post_init()

    def _init_weights(self, module):
        if isinstance(module, nn.Linear):
            module.reset_parameters()

    def forward(self, features, labels=None):
        logits = self.head(self.body(features))
        loss = None if labels is None else nn.functional.cross_entropy(logits, labels)
        return SequenceClassifierOutput(loss=loss, logits=logits)


def blob_net(batch_norm: bool) -> BlobNet:
    torch.manual_seed(0)
    return BlobNet(BlobNetConfig(batch_norm=batch_norm, num_labels=CLASSES))


def blobs(rows: int = ROWS, seed: int = 0) -> datasets.Dataset:
    generator = torch.Generator().manual_seed(seed)
    labels = torch.arange(rows) % CLASSES
    centres = torch.randn(CLASSES, FEATURES, generator=generator) * 2.0
    features = centres[labels] + torch.randn(rows, FEATURES, generator=generator)
    return datasets.Dataset.from_dict({"features": features.tolist(), "labels": labels.tolist()}).with_format("torch")


def training_args(output_dir: str, **overrides) -> TrainingArguments:
    settings = {
        "output_dir": output_dir,
        "per_device_train_batch_size": 16,
        "learning_rate": 0.1,
        "lr_scheduler_type": "constant",
        "optim": "sgd",
        "max_steps": 12,
        "save_strategy": "steps",
        "save_steps": 2,
        "logging_steps": 100,
        "report_to": "none",
        "disable_tqdm": True,
        "use_cpu": True,
        "seed": 0,
        "data_seed": 0,
        "restore_callback_states_from_checkpoint": True,
    }
    return TrainingArguments(**{**settings, **overrides})


def swap(output_dir: str, *, num_workers: int | None = 2, phase2_steps: int = 4, **overrides):
    """SWAP with momentum carried into phase 2: phase 1 is steps 1-4 (the ``max_steps`` budget); in one process
    worker 0 trains steps 5-8 and worker 1 steps 9-12, in W processes every worker trains steps 5-8."""
    overrides = {"max_steps": 4, **overrides}
    model = blob_net(batch_norm=True)
    optimizer = torch.optim.SGD(model.parameters(), lr=overrides.get("learning_rate", 0.1), momentum=0.9)
    callback = SWAPCallback(
        phase2_learning_rate=0.05,
        phase2_batch_size=8,
        phase2_steps=phase2_steps,
        num_workers=num_workers,
        phase2_optimizer_state="carry",
        evaluate_averaged_model=False,
    )
    trainer = SWAPTrainer(
        model=model,
        args=training_args(output_dir, **overrides),
        train_dataset=blobs(),
        callbacks=[callback],
        optimizers=(optimizer, None),
    )
    return trainer, swap_state


def swap_state(trainer: SWAPTrainer) -> dict:
    """The saved ``swap_averaged`` folder's weights (written by the main process, read by every rank)."""
    return {"swap_averaged": load_file(os.path.join(trainer.args.output_dir, "swap_averaged", "model.safetensors"))}


def instance_lr(output_dir: str, *, method: str = "instance_lr", **overrides):
    """Per-instance learning rates judged over the next 2 steps (pending per-sample data crosses checkpoints), or
    Data Parameters with class and instance temperatures."""
    if method == "instance_lr":
        callback = InstanceLRCallback(rate_lr=0.5, horizon=2, per_class=True)
    elif method == "data_parameters":
        callback = DataParametersCallback(learn_class=True, lr_instance=0.5)
    else:
        raise ValueError(f"method must be 'instance_lr' or 'data_parameters', got {method!r}")
    trainer = InstanceLRTrainer(
        model=blob_net(batch_norm=False),
        args=training_args(output_dir, **overrides),
        train_dataset=add_sample_index(blobs()),
        callbacks=[callback],
    )
    return trainer, per_sample_state


def per_sample_state(trainer: InstanceLRTrainer) -> dict:
    """Every tensor the method checkpoints (the rates or temperatures, counters, momentum) and the pending
    per-sample data of this rank."""
    callback = trainer.per_sample_callback
    return {"shared": dict(callback.checkpoint_tensors()), "local": dict(callback.rank_local_tensors())}
