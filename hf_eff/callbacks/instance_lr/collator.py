"""Carry each example's stable global index from the dataset into the batch.

Trainer drops columns its model's ``forward`` does not name (``remove_unused_columns``), and many collators drop or
choke on keys they do not know. The index must survive both, be the *row of the training set* (added before any
shuffle or shard, so it is stable across epochs, resumes and ranks), and never reach the model's ``forward``:
:class:`~hf_eff.callbacks.instance_lr.trainer.InstanceLRTrainerMixin` keeps the column and pops it again.
"""

from collections.abc import Callable, Mapping
from typing import Any

import torch
from transformers import default_data_collator


__all__ = ["IndexPreservingCollator", "add_sample_index"]


def add_sample_index(dataset, column: str = "sample_idx"):
    """Return ``dataset`` (a ``datasets.Dataset``) with ``column`` holding each row's position, 0..N-1.

    Call it on the training set exactly as it will be passed to the Trainer, before any shuffle or shard.
    """
    if column in dataset.column_names:
        raise ValueError(f"dataset already has a column named {column!r}; pass another name or reuse it")
    return dataset.add_column(column, list(range(len(dataset))))


class IndexPreservingCollator:
    """Wrap ``base_collator``: take ``index_column`` out of every example, collate the rest, add it back as a
    ``long`` tensor. Examples without the column pass through untouched (e.g. an evaluation set)."""

    def __init__(
        self, base_collator: Callable[[list], Mapping[str, Any]] | None = None, index_column: str = "sample_idx"
    ):
        self.base_collator = base_collator if base_collator is not None else default_data_collator
        self.index_column = index_column

    def __call__(self, features: list[Mapping[str, Any]]) -> dict[str, Any]:
        if not features or not all(isinstance(f, Mapping) and self.index_column in f for f in features):
            return self.base_collator(features)
        indices = [int(f[self.index_column]) for f in features]
        batch = dict(self.base_collator([{k: v for k, v in f.items() if k != self.index_column} for f in features]))
        batch[self.index_column] = torch.tensor(indices, dtype=torch.long)
        return batch

    def __repr__(self) -> str:
        return f"IndexPreservingCollator({self.base_collator!r}, index_column={self.index_column!r})"
