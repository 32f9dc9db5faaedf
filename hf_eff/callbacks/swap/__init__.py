"""SWAP: Stochastic Weight Averaging in Parallel (Gupta, Akle Serrano & DeCoste, ICLR 2020) for ``Trainer``.

- :mod:`.config` — :class:`SWAPConfig`, the settings beyond the phase-1 ``TrainingArguments``;
- :mod:`.callback` — :class:`SWAPCallback`, the phase machine and its decisions (state saved in checkpoints);
- :mod:`.trainer` — :class:`SWAPTrainerMixin` / :class:`SWAPTrainer`, the loop mechanics a callback cannot reach;
- :mod:`.averaging` — phase 3 in plain torch (one all-reduce, BatchNorm recompute with dict batches);
- :mod:`.data` — each worker's resumable data order; :mod:`.checkpoint` — per-worker safetensors files.
"""

from hf_eff.callbacks.swap.callback import SWAPCallback
from hf_eff.callbacks.swap.config import SWAPConfig
from hf_eff.callbacks.swap.trainer import SWAPTrainer, SWAPTrainerMixin


__all__ = ["SWAPCallback", "SWAPConfig", "SWAPTrainer", "SWAPTrainerMixin"]
