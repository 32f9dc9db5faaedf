"""SPDF: sparse pre-training and dense fine-tuning of GPT models (Thangarasa et al., UAI 2023, arXiv 2303.10464).

- :class:`SparsityConfig` (``config.py``): how much and which weights are masked.
- ``targets.py``: the paper's sparsified matrices per architecture.
- ``masks.py``: drawing exact-count static masks and :class:`StaticMaskManager`, which enforces them (also on
  FSDP2-sharded ``DTensor`` parameters).
- ``checkpointing.py``: masks as safetensors next to the weights.
- :func:`training_flops` (``flops.py``): the analytic FLOP accountant.
- :class:`SparsePretrainer` / :class:`DenseFinetuneTrainer` (``trainers.py``): the two ``Trainer`` subclasses.
- ``downstream.py``: greedy completions scored with ROUGE-L / exact match (the benchmark's generation metric).
- ``recipe.py``: the end-to-end pre-train / fine-tune / evaluate run behind ``hf-eff spdf`` and the benchmark.

Names are imported lazily so that the config and FLOP accountant do not pull in ``transformers.Trainer``.
"""

import importlib
from typing import Any


_NAMES = {
    "SparsityConfig": "hf_eff.sparsity.config",
    "TrainingFlops": "hf_eff.sparsity.flops",
    "training_flops": "hf_eff.sparsity.flops",
    "StaticMaskManager": "hf_eff.sparsity.masks",
    "SparsePretrainer": "hf_eff.sparsity.trainers",
    "DenseFinetuneTrainer": "hf_eff.sparsity.trainers",
    "densify": "hf_eff.sparsity.trainers",
}

__all__ = sorted(_NAMES)


def __getattr__(name: str) -> Any:
    if name not in _NAMES:
        raise AttributeError(f"module 'hf_eff.sparsity' has no attribute {name!r}")
    return getattr(importlib.import_module(_NAMES[name]), name)
