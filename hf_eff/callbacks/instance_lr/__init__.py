"""Per-instance dynamic learning rates (arXiv 2105.13464) and the Data Parameters baseline (NeurIPS 2019), as
``TrainerCallback``s with the small Trainer mixin that carries sample indices and per-sample losses."""

from hf_eff.callbacks.instance_lr.callback import InstanceLRCallback
from hf_eff.callbacks.instance_lr.collator import IndexPreservingCollator, add_sample_index
from hf_eff.callbacks.instance_lr.config import DataParametersConfig, InstanceLRConfig
from hf_eff.callbacks.instance_lr.data_parameters import DataParametersCallback
from hf_eff.callbacks.instance_lr.trainer import InstanceLRTrainer, InstanceLRTrainerMixin


__all__ = [
    "IndexPreservingCollator",
    "InstanceLRCallback",
    "InstanceLRConfig",
    "InstanceLRTrainer",
    "InstanceLRTrainerMixin",
    "DataParametersCallback",
    "DataParametersConfig",
    "add_sample_index",
]
