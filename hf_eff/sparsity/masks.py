"""Static random unstructured masks and the manager that keeps masked weights at exactly zero.

One training step with a :class:`StaticMaskManager` attached:

1. backward: a hook on every sparse parameter replaces the gradient's masked entries by 0 (``masked_fill``, so a
   NaN/Inf in a dead position cannot leak), before gradient clipping sees it;
2. optimizer step pre-hook: every optimizer-state tensor shaped like the parameter (Adam's ``exp_avg`` and
   ``exp_avg_sq``, SGD's ``momentum_buffer``, ...) is zeroed at the masked entries;
3. optimizer step post-hook: the weights are re-masked, which also undoes L2-in-gradient weight decay.

Sharded parameters (FSDP2's ``fully_shard`` turns them into ``DTensor``s): each mask is sharded exactly like its
parameter (a ``DTensor`` with the parameter's mesh and placements, cut locally, no communication) and all three
steps act on the local shards of gradient, optimizer state and weight. FSDP2 writes the reduce-scattered gradient
straight into the sharded parameter, so there the gradient hook is a post-accumulate-grad hook, which FSDP2 calls
after the reduce-scatter. Every rank also keeps the global masks on the CPU (1 byte per sparse weight): saving
needs no collective, so any rank can write them and ``model.save_pretrained`` on rank 0 alone works.

Masks live outside the model's ``state_dict``, so ``save_pretrained`` writes an ordinary dense-format checkpoint;
:meth:`StaticMaskManager.state_dict` gives them to the caller to save next to it (as safetensors).
"""

import math
import zlib
from collections.abc import Mapping

import torch
from torch import nn
from torch.distributed.tensor import DTensor, distribute_tensor

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


def local_shard(tensor: torch.Tensor) -> torch.Tensor:
    """The local shard of a ``DTensor`` (a view of its storage: in-place changes reach the DTensor), else ``tensor``."""
    return tensor.to_local() if isinstance(tensor, DTensor) else tensor


def shard_like(tensor: torch.Tensor, param: torch.Tensor) -> torch.Tensor:
    """``tensor`` (global, ``param``'s shape) on ``param``'s device, and sharded exactly like ``param`` when that is a
    ``DTensor``. Every rank holds the global tensor, so each cuts its own shard: no communication."""
    if isinstance(param, DTensor):
        device = param.to_local().device
        return distribute_tensor(tensor.to(device), param.device_mesh, param.placements, src_data_rank=None)
    return tensor.to(param.device)


def count_true(flags: torch.Tensor) -> int:
    """Number of ``True`` entries, over all shards of a ``DTensor`` (then a collective: call it on every rank)."""
    total = flags.sum()
    return int(total.full_tensor() if isinstance(total, DTensor) else total)


class StaticMaskManager:
    """Holds one static bool mask per sparse parameter and enforces it through backward and optimizer steps.

    Build it with :meth:`from_model`; call :meth:`attach_optimizer` once the optimizer exists; :meth:`remove`
    detaches every hook (the SPDF sparse-to-dense switch). If a wrapper replaces the parameters after that
    (FSDP2's ``fully_shard`` swaps each for a sharded ``DTensor``), :meth:`rebind` follows them.

    ``masks`` holds the global masks (CPU, identical on every rank); the masks that enforce them live on the
    parameters' devices, sharded like the parameters. ``tokens_seen`` is the training-token count the trainer keeps
    here so that it is saved with the masks (the FLOP accounting needs it after a resume).
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
        self.params = dict(params)
        self.masks = {name: masks[name].to("cpu") for name in params}
        # the complement on the parameter's device and shard, kept so that per-step masking allocates nothing
        self._dropped = {name: shard_like(~self.masks[name], param) for name, param in params.items()}
        self._grad_hooks: list = []
        self._optimizer_hooks: dict[int, list] = {}
        self.tokens_seen = 0

    @classmethod
    def from_model(cls, model: nn.Module, config: SparsityConfig) -> "StaticMaskManager":
        """Select the target weights, draw their masks (broadcast from rank 0), zero the masked weights and
        register the gradient hooks. The model may already be sharded with ``fully_shard``: masks are drawn for
        the global shapes, so they are the same as in a single-process run with the same seed."""
        params = select_targets(model, config.targets, config.exclude)
        masks = draw_masks({name: p.shape for name, p in params.items()}, config)
        broadcast_masks(masks)
        manager = cls(params, masks, config)
        manager.apply_to_weights()
        manager.attach_gradient_hooks()
        return manager

    def rebind(self, model: nn.Module) -> bool:
        """Follow parameters that were replaced since the masks were drawn (``fully_shard`` swaps each for a
        sharded ``DTensor``, under the same name): shard the masks like the new parameters and move the gradient
        hooks onto them. Cheap when nothing changed; returns whether anything did."""
        current = {}
        for name, param in self.params.items():
            module_name, _, leaf = name.rpartition(".")
            current[name] = model.get_submodule(module_name)._parameters.get(leaf)
            if current[name] is None or current[name].shape != param.shape:
                raise ValueError(f"the model no longer has a parameter {name!r} of shape {tuple(param.shape)}")
        if all(current[name] is param for name, param in self.params.items()):
            return False
        hooked = bool(self._grad_hooks)
        self._remove_gradient_hooks()
        self.params = current
        self._dropped = {name: shard_like(~self.masks[name], param) for name, param in current.items()}
        if hooked:
            self.attach_gradient_hooks()
        return True

    # --- enforcement -------------------------------------------------------------------------------------

    @torch.no_grad()
    def apply_to_weights(self) -> None:
        """Set every masked weight to exactly 0 (idempotent; local shards only)."""
        for name, param in self.params.items():
            local_shard(param).masked_fill_(local_shard(self._dropped[name]), 0.0)

    def attach_gradient_hooks(self) -> None:
        if self._grad_hooks:
            return
        for name, param in self.params.items():
            dropped = local_shard(self._dropped[name])
            if isinstance(param, DTensor):
                # FSDP2 assigns the reduce-scattered gradient to the sharded parameter, bypassing tensor hooks, and
                # then calls its post-accumulate-grad hooks (still before clipping)
                hook = param.register_post_accumulate_grad_hook(
                    lambda p, dropped=dropped: local_shard(p.grad).masked_fill_(dropped, 0.0)
                )
            else:
                # masked_fill (unlike grad * mask) also clears NaN/Inf in dead positions
                hook = param.register_hook(lambda grad, dropped=dropped: grad.masked_fill(dropped, 0.0))
            self._grad_hooks.append(hook)

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
            dropped = local_shard(self._dropped[name])
            for value in state.values():
                if isinstance(value, torch.Tensor) and value.shape == param.shape:
                    local_shard(value).masked_fill_(dropped, 0.0)

    def _remove_gradient_hooks(self) -> None:
        for handle in self._grad_hooks:
            handle.remove()
        self._grad_hooks = []

    def remove(self) -> None:
        """Detach every gradient and optimizer hook; the weights keep their current values (zeros included)."""
        self._remove_gradient_hooks()
        for handles in self._optimizer_hooks.values():
            for handle in handles:
                handle.remove()
        self._optimizer_hooks = {}

    # --- statistics (collectives when the parameters are sharded: call them on every rank) ----------------

    @property
    def is_sharded(self) -> bool:
        return any(isinstance(param, DTensor) for param in self.params.values())

    @property
    def num_weights(self) -> int:
        return sum(mask.numel() for mask in self.masks.values())

    @property
    def num_masked(self) -> int:
        return sum(int((~mask).sum()) for mask in self.masks.values())

    @torch.no_grad()
    def held_sparsity(self) -> float:
        """Fraction of the sparse parameters' entries that are exactly zero right now."""
        nonzero = sum(count_true(param != 0) for param in self.params.values())
        return 1.0 - nonzero / self.num_weights

    @torch.no_grad()
    def leaked(self) -> int:
        """Masked entries that are not exactly zero (0 unless something bypassed the manager)."""
        return sum(count_true(torch.logical_and(p != 0, self._dropped[n])) for n, p in self.params.items())

    # --- persistence -------------------------------------------------------------------------------------

    def state_dict(self) -> dict[str, torch.Tensor]:
        """The global masks (CPU). No collective: every rank holds them."""
        return {name: mask.clone() for name, mask in self.masks.items()}

    def load_state_dict(self, masks: Mapping[str, torch.Tensor]) -> None:
        """Replace the masks (global tensors, as :meth:`state_dict` returns them) and re-apply them to the weights;
        the hooks follow the new masks."""
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
        hooked = bool(self._grad_hooks)
        self._remove_gradient_hooks()
        for name, mask in masks.items():
            self.masks[name] = mask.to(device="cpu", dtype=torch.bool).clone()
            self._dropped[name] = shard_like(~self.masks[name], self.params[name])
        if hooked:
            self.attach_gradient_hooks()
        self.apply_to_weights()
