"""The invertible-module protocol every op of a :class:`~hf_eff.reversible.ReversibleSequence` follows.

An op maps a tuple of streams to a tuple of streams and can compute its inputs back from its outputs. Ops call
their learned sub-transforms through a :class:`~hf_eff.reversible.replay.TransformRunner` so that the engine can
stash and replay random state per transform. In backward, :meth:`InvertibleModule.backward_pass` receives the
op's outputs and their gradients and returns the op's inputs and *their* gradients; parameter gradients go to a
:class:`ParamGrads` sink that the op's autograd node returns when the op is done (so they reach ``p.grad`` and
DDP's reducer right away, through the ordinary graph).
"""

from collections.abc import Sequence

import torch
from torch import nn

from hf_eff.reversible.replay import PLAIN, TransformRunner


Streams = tuple[torch.Tensor, ...]


def trainable_parameters(module: nn.Module) -> list[nn.Parameter]:
    return [p for p in module.parameters() if p.requires_grad]


class ParamGrads:
    """Accumulates the parameter gradients of one op's (or one recomputed piece's) backward; parameters used by
    several transforms add up."""

    def __init__(self):
        self.grads: dict[nn.Parameter, torch.Tensor] = {}

    def add(self, params: Sequence[nn.Parameter], grads: Sequence[torch.Tensor | None]) -> None:
        for p, g in zip(params, grads):
            if g is None:
                continue
            held = self.grads.get(p)
            self.grads[p] = g if held is None else held.add_(g)

    def vjp(
        self,
        outputs: Sequence[torch.Tensor],
        output_grads: Sequence[torch.Tensor],
        inputs: Sequence[torch.Tensor],
        modules: Sequence[nn.Module],
    ) -> list[torch.Tensor | None]:
        """Backpropagate ``output_grads`` through a freshly recomputed graph; keep the gradients of the modules'
        parameters and return those of ``inputs`` (``None`` where an input does not influence the outputs)."""
        params = list(dict.fromkeys(p for m in modules for p in trainable_parameters(m)))
        pairs = [(o, g.to(o.dtype)) for o, g in zip(outputs, output_grads) if o.requires_grad]
        wrt = [x for x in inputs if x.requires_grad] + params
        if not pairs or not wrt:
            return [None] * len(inputs)
        grads = torch.autograd.grad(
            [o for o, _ in pairs], wrt, [g for _, g in pairs], allow_unused=True, materialize_grads=False
        )
        it = iter(grads)
        input_grads = [next(it) if x.requires_grad else None for x in inputs]
        self.add(params, list(it))
        return input_grads


def _leaf(x: torch.Tensor) -> torch.Tensor:
    return x.detach().requires_grad_(x.is_floating_point())


class InvertibleModule(nn.Module):
    """Base class of reversible ops. Subclasses implement :meth:`invertible_forward` and
    :meth:`invertible_inverse`; they may override :meth:`backward_pass` with a fused inverse-and-gradient pass
    (the additive couplings do: one recompute per transform instead of two).

    Calling the module (``op(*streams)``) runs the plain, differentiable forward that stores activations.
    """

    def forward(self, *streams: torch.Tensor) -> Streams:
        return self.invertible_forward(PLAIN, streams)

    def inverse(self, *outputs: torch.Tensor) -> Streams:
        """The exact inverse of :meth:`forward` (evaluation without stochastic layers; no gradient needed)."""
        with torch.no_grad():
            return self.invertible_inverse(PLAIN, outputs)

    def invertible_forward(self, run: TransformRunner, streams: Streams) -> Streams:
        raise NotImplementedError

    def invertible_inverse(self, run: TransformRunner, outputs: Streams) -> Streams:
        raise NotImplementedError

    def backward_pass(
        self, run: TransformRunner, outputs: Streams, grads: Streams, param_grads: ParamGrads
    ) -> tuple[Streams, Streams]:
        """Generic path: reconstruct the inputs, recompute the forward with grad, backpropagate."""
        with torch.no_grad():
            inputs = self.invertible_inverse(run, outputs)
        leaves = tuple(_leaf(x) for x in inputs)
        with torch.enable_grad():
            recomputed = self.invertible_forward(run, leaves)
        input_grads = param_grads.vjp(recomputed, grads, leaves, [self])
        input_grads = tuple(torch.zeros_like(x) if g is None else g for x, g in zip(inputs, input_grads))
        return tuple(inputs), input_grads
