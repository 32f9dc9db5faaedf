"""Static random unstructured masks and the manager that keeps masked weights at exactly zero.

One training step with a :class:`StaticMaskManager` attached:

1. backward: a tensor hook on every sparse parameter replaces the gradient's masked entries by 0 (with
   ``torch.where``, so a NaN/Inf in a dead position cannot leak), before gradient clipping sees it;
2. optimizer step pre-hook: every optimizer-state tensor shaped like the parameter (Adam's ``exp_avg`` and
   ``exp_avg_sq``, SGD's ``momentum_buffer``, ...) is zeroed at the masked entries;
3. optimizer step post-hook: the weights are re-masked, which also undoes L2-in-gradient weight decay.

Masks live outside the model's ``state_dict``, so ``save_pretrained`` writes an ordinary dense-format checkpoint;
:meth:`StaticMaskManager.state_dict` gives them to the caller to save next to it (as safetensors).
"""

import math
import zlib
from collections.abc import Mapping

import torch
from torch import nn

from hf_eff.callbacks._utils import unwrap_optimizer
from hf_eff.distributed import broadcast_
from hf_eff.sparsity.config import SparsityConfig
from hf_eff.sparsity.targets import select_targets


def kept_count(numel: int, density: float) -> int:
    """Exact number of weights a tensor keeps: ``ceil(density * numel)``, robust to float round-off."""
    return min(numel, math.ceil(round(density * numel, 6)))


def layer_densities(
    shapes: Mapping[str, torch.Size], sparsity: float, distribution: str = "uniform"
) -> dict[str, float]:
    """Density (kept fraction) per tensor for a target overall ``sparsity``.

    ``"uniform"``: every tensor keeps ``1 - sparsity``. ``"erk"``: density proportional to
    ``sum(shape) / prod(shape)`` (Evci et al., 2020, RigL), scaled so that the total number of kept weights
    equals ``(1 - sparsity)`` of all; tensors whose density would exceed 1 are kept dense and the rest rescaled.
    """
    density = 1.0 - sparsity
    if distribution == "uniform":
        return dict.fromkeys(shapes, density)
    if distribution != "erk":
        raise ValueError(f"distribution must be 'uniform' or 'erk', got {distribution!r}")
    numels = {name: math.prod(shape) for name, shape in shapes.items()}
    raw = {name: sum(shape) / numels[name] for name, shape in shapes.items()}
    dense: set[str] = set()
    while True:
        budget = density * sum(numels.values()) - sum(numels[n] for n in dense)
        scale = budget / sum(raw[n] * numels[n] for n in shapes if n not in dense)
        overfull = {n for n in shapes if n not in dense and scale * raw[n] > 1.0}
        if not overfull:
            break
        dense |= overfull
    return {name: 1.0 if name in dense else scale * raw[name] for name in shapes}


def _generator_for(name: str, seed: int) -> torch.Generator:
    # seeded from (seed, name) only: the same on every rank and independent of the global RNG state
    return torch.Generator().manual_seed(seed * 1_000_003 + zlib.crc32(name.encode()))


def draw_mask(shape: torch.Size, density: float, generator: torch.Generator) -> torch.Tensor:
    """A bool mask of ``shape`` with exactly :func:`kept_count` ``True`` entries at uniformly random places."""
    numel = math.prod(shape)
    keep = torch.randperm(numel, generator=generator)[: kept_count(numel, density)]
    mask = torch.zeros(numel, dtype=torch.bool)
    mask[keep] = True
    return mask.view(shape)


def draw_masks(shapes: Mapping[str, torch.Size], config: SparsityConfig) -> dict[str, torch.Tensor]:
    densities = layer_densities(shapes, config.sparsity, config.distribution)
    return {
        name: draw_mask(shape, densities[name], _generator_for(name, config.seed)) for name, shape in shapes.items()
    }


def broadcast_masks(masks: dict[str, torch.Tensor]) -> None:
    """Make every rank hold rank 0's masks (in place). A no-op outside a distributed run."""
    for name in sorted(masks):  # same order on every rank
        broadcast_(masks[name], src=0)


class StaticMaskManager:
    """Holds one static bool mask per sparse parameter and enforces it through backward and optimizer steps.

    Build it with :meth:`from_model`; call :meth:`attach_optimizer` once the optimizer exists; :meth:`remove`
    detaches every hook (the SPDF sparse-to-dense switch).
    """

    def __init__(self, params: dict[str, nn.Parameter], masks: dict[str, torch.Tensor], config: SparsityConfig):
        if set(params) != set(masks):
            raise ValueError(f"params and masks name different tensors: {sorted(set(params) ^ set(masks))}")
        for name, param in params.items():
            if masks[name].shape != param.shape or masks[name].dtype != torch.bool:
                raise ValueError(
                    f"mask for {name!r} must be bool of shape {tuple(param.shape)}, "
                    f"got {masks[name].dtype} {tuple(masks[name].shape)}"
                )
        self.config = config
        self.params = params
        self.masks = {name: masks[name].to(param.device) for name, param in params.items()}
        # the complement, kept so that the per-step masking allocates nothing
        self._dropped = {name: ~mask for name, mask in self.masks.items()}
        self._grad_hooks: list = []
        self._optimizer_hooks: dict[int, list] = {}

    @classmethod
    def from_model(cls, model: nn.Module, config: SparsityConfig) -> "StaticMaskManager":
        """Select the target weights, draw their masks (broadcast from rank 0), zero the masked weights and
        register the gradient hooks."""
        params = select_targets(model, config.targets, config.exclude)
        masks = draw_masks({name: p.shape for name, p in params.items()}, config)
        broadcast_masks(masks)
        manager = cls(params, masks, config)
        manager.apply_to_weights()
        manager.attach_gradient_hooks()
        return manager

    # --- enforcement -------------------------------------------------------------------------------------

    @torch.no_grad()
    def apply_to_weights(self) -> None:
        """Set every masked weight to exactly 0 (idempotent)."""
        for name, param in self.params.items():
            param.masked_fill_(self._dropped[name], 0.0)

    def attach_gradient_hooks(self) -> None:
        if self._grad_hooks:
            return
        for name, param in self.params.items():
            dropped = self._dropped[name]
            # masked_fill (unlike grad * mask) also clears NaN/Inf in dead positions
            self._grad_hooks.append(param.register_hook(lambda grad, dropped=dropped: grad.masked_fill(dropped, 0.0)))

    def attach_optimizer(self, optimizer: torch.optim.Optimizer) -> None:
        """Mask this optimizer's state before each step and the weights after it. Safe to call repeatedly."""
        optimizer = unwrap_optimizer(optimizer)  # hooks go on the torch optimizer behind accelerate's wrapper
        if id(optimizer) in self._optimizer_hooks:
            return
        self._optimizer_hooks[id(optimizer)] = [
            optimizer.register_step_pre_hook(lambda opt, args, kwargs: self.mask_optimizer_state(opt)),
            optimizer.register_step_post_hook(lambda opt, args, kwargs: self.apply_to_weights()),
        ]

    @torch.no_grad()
    def mask_optimizer_state(self, optimizer: torch.optim.Optimizer) -> None:
        """Zero, at masked entries, every state tensor shaped like its parameter (momenta, second moments)."""
        for name, param in self.params.items():
            state = optimizer.state.get(param)
            if not state:
                continue
            for value in state.values():
                if isinstance(value, torch.Tensor) and value.shape == param.shape:
                    value.masked_fill_(self._dropped[name], 0.0)

    def remove(self) -> None:
        """Detach every gradient and optimizer hook; the weights keep their current values (zeros included)."""
        for handle in self._grad_hooks:
            handle.remove()
        for handles in self._optimizer_hooks.values():
            for handle in handles:
                handle.remove()
        self._grad_hooks, self._optimizer_hooks = [], {}

    # --- statistics -------------------------------------------------------------------------------------

    @property
    def num_weights(self) -> int:
        return sum(mask.numel() for mask in self.masks.values())

    @property
    def num_masked(self) -> int:
        return sum(int((~mask).sum()) for mask in self.masks.values())

    @torch.no_grad()
    def held_sparsity(self) -> float:
        """Fraction of the sparse parameters' entries that are exactly zero right now."""
        nonzero = sum(int(torch.count_nonzero(p)) for p in self.params.values())
        return 1.0 - nonzero / self.num_weights

    @torch.no_grad()
    def leaked(self) -> int:
        """Masked entries that are not exactly zero (0 unless something bypassed the manager)."""
        return sum(int(torch.count_nonzero(p[~self.masks[n]])) for n, p in self.params.items())

    # --- persistence -------------------------------------------------------------------------------------

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {name: mask.cpu() for name, mask in self.masks.items()}

    def load_state_dict(self, masks: Mapping[str, torch.Tensor]) -> None:
        """Replace the masks in place (hooks keep working) and re-apply them to the weights."""
        if set(masks) != set(self.masks):
            raise ValueError(
                f"saved masks name different tensors than this model's targets: "
                f"missing {sorted(set(self.masks) - set(masks))}, "
                f"unexpected {sorted(set(masks) - set(self.masks))}"
            )
        for name, mask in masks.items():
            if mask.shape != self.masks[name].shape:
                raise ValueError(
                    f"saved mask {name!r} has shape {tuple(mask.shape)}, "
                    f"the parameter has {tuple(self.masks[name].shape)}"
                )
            self.masks[name].copy_(mask.to(torch.bool))
            torch.logical_not(self.masks[name], out=self._dropped[name])
        self.apply_to_weights()
