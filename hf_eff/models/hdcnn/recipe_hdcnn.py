"""The HD-CNN training recipe, every stage a ``Trainer`` run (official CIFAR-100 recipe, spec §2.5):

1. **building block**: the flat network (an HD-CNN with one coarse category) on the training split minus a
   held-out part;
2. **hierarchy**: its softmax on the held-out part -> :func:`build_category_hierarchy` (the held-out images were
   never trained on, so their confusion is honest);
3. **branch pre-training**: HD-CNN initialised from the block (:meth:`HDCNNForImageClassification.from_building_block`);
   shared layers and the coarse component fixed, each fine component trained on the images of its own classes with
   compact labels (:class:`BranchPretrainer`);
4. **global fine-tuning**: everything trainable, NLL of the averaged prediction + the consistency term, at a
   smaller learning rate (official: 10x smaller).

Each stage writes ``<output_dir>/<stage>/`` (Trainer checkpoints) and its final model to
``<output_dir>/<stage>/model``. With ``resume=True`` a finished stage is loaded instead of retrained and an
interrupted one continues from its last checkpoint, so the whole recipe survives a restart. Every process computes
the same hierarchy (predictions are gathered across processes), so the recipe runs unchanged under ``torchrun`` /
``accelerate launch``.
"""

import dataclasses
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from transformers import Trainer, TrainingArguments, set_seed
from transformers.trainer_utils import get_last_checkpoint

from .configuration_hdcnn import HDCNNConfig
from .hierarchy_hdcnn import CategoryHierarchy, build_category_hierarchy
from .modeling_hdcnn import HDCNNForImageClassification


class BranchPretrainer(Trainer):
    """Trains the fine components alone (the recipe's third stage): the model's ``branch_pretraining`` loss.

    Call :func:`freeze_for_branch_pretraining` on the model first, so that the optimizer and DDP only see the
    fine components. Evaluation measures the whole HD-CNN as usual.
    """

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        if not model.training:
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        outputs = model(**inputs, branch_pretraining=True)
        return (outputs.loss, outputs) if return_outputs else outputs.loss


def freeze_for_branch_pretraining(model: HDCNNForImageClassification) -> None:
    """Shared layers and coarse component fixed, fine components trainable (spec pitfall 5)."""
    model.requires_grad_(False)
    model.fine.requires_grad_(True)


@dataclass
class HDCNNRecipeResult:
    building_block: HDCNNForImageClassification
    hierarchy: CategoryHierarchy
    model: HDCNNForImageClassification
    metrics: dict[str, dict[str, float]] = field(default_factory=dict)  # eval metrics after each stage


def split_heldout(dataset, fraction: float, seed: int, label_column: str):
    """(train, held-out): a seeded split, stratified by class when the label column is a ClassLabel."""
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"heldout_fraction must be in (0, 1), got {fraction}")
    from datasets import ClassLabel

    stratify = label_column if isinstance(dataset.features.get(label_column), ClassLabel) else None
    parts = dataset.train_test_split(test_size=fraction, seed=seed, stratify_by_column=stratify)
    return parts["train"], parts["test"]


def heldout_probabilities(trainer: Trainer, heldout) -> tuple[np.ndarray, np.ndarray]:
    """The model's class probabilities and the labels on ``heldout`` (gathered over all processes)."""
    prediction = trainer.predict(heldout, metric_key_prefix="heldout")
    log_probs = prediction.predictions[0] if isinstance(prediction.predictions, tuple) else prediction.predictions
    probs = np.exp(log_probs - log_probs.max(axis=1, keepdims=True))
    return probs / probs.sum(axis=1, keepdims=True), np.asarray(prediction.label_ids)


def _stage_args(args: TrainingArguments, stage: str, epochs: float, learning_rate: float) -> TrainingArguments:
    return dataclasses.replace(
        args,
        output_dir=str(Path(args.output_dir) / stage),
        num_train_epochs=epochs,
        max_steps=-1,
        learning_rate=learning_rate,
    )


def _run_stage(
    trainer_class: type[Trainer],
    model: HDCNNForImageClassification,
    args: TrainingArguments,
    resume: bool,
    metrics: dict[str, dict[str, float]],
    stage: str,
    **trainer_kwargs: Any,
) -> tuple[HDCNNForImageClassification, Trainer]:
    final = Path(args.output_dir) / "model"
    if resume and (final / "config.json").is_file():
        model = HDCNNForImageClassification.from_pretrained(final)
        return model, trainer_class(model=model, args=args, **trainer_kwargs)
    trainer = trainer_class(model=model, args=args, **trainer_kwargs)
    last = get_last_checkpoint(args.output_dir) if resume and Path(args.output_dir).is_dir() else None
    trainer.train(resume_from_checkpoint=last)
    if trainer_kwargs.get("eval_dataset") is not None:
        metrics[stage] = trainer.evaluate()
    trainer.save_model(str(final))
    return model, trainer


def train_hdcnn(
    block_config: HDCNNConfig,
    train_dataset,
    args: TrainingArguments,
    *,
    eval_dataset=None,
    heldout_fraction: float = 0.2,
    block_epochs: float = 10.0,
    branch_epochs: float = 3.0,
    finetune_epochs: float = 3.0,
    block_learning_rate: float | None = None,
    branch_learning_rate: float | None = None,
    finetune_learning_rate: float | None = None,
    hierarchy_kwargs: dict[str, Any] | None = None,
    data_collator: Callable | None = None,
    compute_metrics: Callable | None = None,
    label_column: str = "label",
    resume: bool = False,
) -> HDCNNRecipeResult:
    """Run the whole HD-CNN recipe (module docstring) and return the building block, hierarchy and HD-CNN.

    Args:
        block_config: the flat building block (``coarse_members=None``); its backbone/split settings are kept.
        train_dataset: the training split; ``heldout_fraction`` of it is held out for the hierarchy only.
        args: the ``TrainingArguments`` shared by all stages; each stage replaces ``output_dir`` (a subfolder),
            ``num_train_epochs`` and ``learning_rate``.
        block_epochs, branch_epochs, finetune_epochs: epochs of the three training stages.
        block_learning_rate, branch_learning_rate: default ``args.learning_rate``; finetune_learning_rate:
            default ``args.learning_rate / 10`` (official 0.01 -> 0.001).
        hierarchy_kwargs: passed to :func:`build_category_hierarchy` (e.g. ``num_coarse``, ``gamma``).
        label_column: the class column (its ClassLabel names name the coarse categories).
        resume: load finished stages, continue an interrupted one from its last checkpoint.
    """
    if block_config.num_coarse != 1:
        raise ValueError("block_config must be the flat building block (coarse_members=None)")
    if label_column not in train_dataset.column_names:
        raise ValueError(
            f"label_column {label_column!r} is not a column of train_dataset {train_dataset.column_names}"
        )
    if args.gradient_accumulation_steps > 1:
        warnings.warn(
            "gradient_accumulation_steps > 1: the consistency term is computed per micro-batch, so it sees "
            f"per_device_train_batch_size={args.per_device_train_batch_size} images, not the accumulated batch",
            stacklevel=2,
        )
    base_lr = args.learning_rate
    trainer_kwargs = {"eval_dataset": eval_dataset, "data_collator": data_collator, "compute_metrics": compute_metrics}
    metrics: dict[str, dict[str, float]] = {}
    train_part, heldout = split_heldout(train_dataset, heldout_fraction, args.seed, label_column)

    set_seed(args.seed)  # the same initial weights on every process
    block, block_trainer = _run_stage(
        Trainer,
        HDCNNForImageClassification(block_config),
        _stage_args(args, "building_block", block_epochs, block_learning_rate or base_lr),
        resume,
        metrics,
        "building_block",
        train_dataset=train_part,
        **trainer_kwargs,
    )

    probs, labels = heldout_probabilities(block_trainer, heldout)
    feature = train_dataset.features.get(label_column)
    kwargs = {"class_names": getattr(feature, "names", None), "seed": args.seed, **(hierarchy_kwargs or {})}
    kwargs.setdefault(
        "class_counts", np.bincount(np.asarray(train_part[label_column]), minlength=block_config.num_labels)
    )
    hierarchy = build_category_hierarchy(probs, labels, **kwargs)

    model = HDCNNForImageClassification.from_building_block(block, **hierarchy.config_kwargs())
    freeze_for_branch_pretraining(model)
    model, _ = _run_stage(
        BranchPretrainer,
        model,
        _stage_args(args, "branches", branch_epochs, branch_learning_rate or base_lr),
        resume,
        metrics,
        "branches",
        train_dataset=train_part,
        **trainer_kwargs,
    )

    model.requires_grad_(True)
    model, _ = _run_stage(
        Trainer,
        model,
        _stage_args(args, "global", finetune_epochs, finetune_learning_rate or base_lr / 10),
        resume,
        metrics,
        "global",
        train_dataset=train_part,
        **trainer_kwargs,
    )
    return HDCNNRecipeResult(building_block=block, hierarchy=hierarchy, model=model, metrics=metrics)


__all__ = [
    "BranchPretrainer",
    "HDCNNRecipeResult",
    "freeze_for_branch_pretraining",
    "heldout_probabilities",
    "split_heldout",
    "train_hdcnn",
]
