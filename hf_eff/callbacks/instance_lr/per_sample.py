"""What the per-instance callbacks share: the link to the Trainer mixin, the training-set checks, the restored
state, per-row diagnostics and the export of a learned per-row value as a dataset column.

A callback alone never sees the batch or the loss, so these callbacks only work under
:class:`~hf_eff.callbacks.instance_lr.trainer.InstanceLRTrainerMixin`; they refuse to start under a plain
``Trainer`` instead of silently training without per-instance values.
"""

import math
from collections.abc import Mapping
from typing import Any

import torch
from transformers import TrainerControl, TrainerState, TrainingArguments

from hf_eff.callbacks.base import HfEffCallback


class PerSampleCallback(HfEffCallback):
    """Base of :class:`InstanceLRCallback` and :class:`DataParametersCallback` (not used directly).

    Subclasses define ``config_class``, ``checkpoint_name``, ``log_prefix`` and the hooks ``_create_state``,
    ``_load_state``, ``checkpoint_tensors``, ``row_values`` and ``training_loss``.
    """

    config_class: type
    checkpoint_name: str
    log_prefix: str

    def __init__(self, config: Any = None, **config_kwargs: Any):
        super().__init__()
        if config is None:
            config = self.config_class(**config_kwargs)
        elif config_kwargs:
            raise TypeError(f"pass either config or keyword arguments of {self.config_class.__name__}, not both")
        elif isinstance(config, Mapping):
            config = self.config_class(**config)
        elif not isinstance(config, self.config_class):
            raise TypeError(f"config must be a {self.config_class.__name__}, got {type(config).__name__}")
        self.config = config
        self.num_samples: int | None = None
        self.num_classes: int | None = None
        self._corrupt: torch.Tensor | None = None

    def state(self) -> dict[str, Any]:
        # the tensors travel in <checkpoint>/<checkpoint_name>.safetensors, written by the Trainer mixin
        return {"args": self.config.to_dict(), "attributes": {}}

    # ---------------------------------------------------------------- start of training
    def on_train_begin(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, model=None, **kwargs
    ):
        super().on_train_begin(args, state, control, model=model, **kwargs)  # adopts live objects on resume
        from hf_eff.callbacks.instance_lr.trainer import InstanceLRTrainerMixin

        # the sample index and per-sample losses never reach a callback: refuse a Trainer that does not pass them
        trainer = self.require_trainer(InstanceLRTrainerMixin, "hf_eff.InstanceLRTrainer")
        dataset = trainer.train_dataset
        num_samples = self._check_dataset(dataset)
        self.num_classes = self._find_num_classes(model, dataset)
        restored = trainer._per_sample_restored.pop(self.checkpoint_name, None)
        if restored is not None:
            stored = int(restored["shared"]["num_samples"].item())
            if stored != num_samples:
                raise ValueError(
                    f"the checkpoint holds {self.log_prefix} values for {stored} training rows but train_dataset has "
                    f"{num_samples}: the dataset changed since they were created; resume with the same training set"
                )
            self.num_samples = num_samples
            self._load_state(restored["shared"])
            self.load_rank_local_tensors(restored["local"])
        elif self.num_samples is not None and self.num_samples != num_samples:
            raise ValueError(
                f"this {type(self).__name__} holds values for {self.num_samples} training rows but train_dataset has "
                f"{num_samples}: the dataset size changed since they were created; use a new callback"
            )
        elif self.num_samples is None:
            self.num_samples = num_samples
            self._create_state()
        self._sync_state()
        self._corrupt = self._read_corrupt_column(dataset)
        self._setup(model, trainer, args)

    def _check_dataset(self, dataset) -> int:
        column, expected = self.config.index_column, self.config.num_samples
        if dataset is None:
            raise ValueError(f"{type(self).__name__} needs a train_dataset")
        num_samples = len(dataset)
        if expected is not None and expected != num_samples:
            raise ValueError(f"num_samples={expected} but train_dataset has {num_samples} rows")
        names = getattr(dataset, "column_names", None)
        has_index = column in names if names is not None else self._first_row_has(dataset, column)
        if not has_index:
            raise ValueError(
                f"train_dataset has no {column!r} column, the stable row index the per-instance values are keyed by: "
                "add it before any shuffle or shard with hf_eff.callbacks.instance_lr.add_sample_index(train_dataset)"
                f" (or set index_column to the name of your index column)"
            )
        return num_samples

    @staticmethod
    def _first_row_has(dataset, column: str) -> bool:
        row = dataset[0]
        return isinstance(row, Mapping) and column in row

    def _find_num_classes(self, model, dataset) -> int | None:
        if not self._needs_classes():
            return None
        num_labels = getattr(getattr(model, "config", None), "num_labels", None)
        if num_labels:
            return int(num_labels)
        features = getattr(dataset, "features", None) or {}
        for name in (self.config.label_column, "label", "labels"):
            if hasattr(features.get(name), "num_classes"):
                return int(features[name].num_classes)
        raise ValueError(
            "per-class values need the number of classes: give the model a config.num_labels, or the dataset a "
            f"ClassLabel column {self.config.label_column!r}"
        )

    def _needs_classes(self) -> bool:
        return False

    def _read_corrupt_column(self, dataset) -> torch.Tensor | None:
        column = self.config.corrupt_column
        if column is None:
            return None
        names = getattr(dataset, "column_names", None)
        if names is None or column not in names:
            raise ValueError(f"corrupt_column={column!r} is not a column of train_dataset")
        flags = torch.zeros(self.num_samples, dtype=torch.bool)
        flags[torch.as_tensor(dataset[self.config.index_column])] = torch.as_tensor(dataset[column]).bool()
        return flags

    def _setup(self, model, trainer, args) -> None:
        """Anything a subclass must prepare once the state exists (hooks, meta data)."""

    def _sync_state(self) -> None:
        """Make the state identical on every rank (it is deterministic, this guards against user edits)."""

    # ---------------------------------------------------------------- used by the Trainer mixin
    def check_indices(self, indices: torch.Tensor) -> torch.Tensor:
        if indices.dtype.is_floating_point or indices.dtype == torch.bool:
            raise TypeError(f"{self.config.index_column} must hold integers, got dtype {indices.dtype}")
        if indices.numel() and (int(indices.min()) < 0 or int(indices.max()) >= self.num_samples):
            raise ValueError(
                f"{self.config.index_column} values must be rows of the training set, in [0, {self.num_samples}); "
                f"got values from {int(indices.min())} to {int(indices.max())}"
            )
        return indices.long().cpu()

    def checkpoint_tensors(self) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def rank_local_tensors(self) -> dict[str, torch.Tensor]:
        """State that differs between ranks (saved by every rank into its own file)."""
        return {}

    def load_rank_local_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        """Counterpart of :meth:`rank_local_tensors`."""

    # ---------------------------------------------------------------- diagnostics and export
    def row_values(self) -> torch.Tensor:
        """The learned value of every training row, indexed by the row index."""
        raise NotImplementedError

    def summary(self) -> dict[str, float]:
        values = self.row_values()
        summary = {
            f"{self.log_prefix}/mean": values.mean().item(),
            f"{self.log_prefix}/min": values.min().item(),
            f"{self.log_prefix}/max": values.max().item(),
        }
        if self._corrupt is not None and self._corrupt.any() and (~self._corrupt).any():
            summary[f"{self.log_prefix}/mean_corrupt"] = values[self._corrupt].mean().item()
            summary[f"{self.log_prefix}/mean_clean"] = values[~self._corrupt].mean().item()
        return summary

    def add_values_column(self, dataset, column: str | None = None):
        """``dataset`` (a ``datasets.Dataset`` carrying the index column) with the learned value of each row as
        a new column, e.g. to sort by it and inspect the examples the model trusts least."""
        if self.num_samples is None:
            raise ValueError("nothing learned yet: train first (or resume from a checkpoint)")
        column = column or self.log_prefix
        if self.config.index_column not in dataset.column_names:
            raise ValueError(f"dataset has no {self.config.index_column!r} column to look the values up by")
        indices = self.check_indices(torch.as_tensor(dataset[self.config.index_column]))
        return dataset.add_column(column, self.row_values()[indices].tolist())


def log_bounds(low: float, high: float) -> tuple[float, float]:
    return math.log(low), math.log(high)
