"""Recompute a non-invertible piece (a neck, a head) in backward instead of storing its activations.

A reversible stack stores only its outputs; whatever runs after it would store its own activations again. Such a
piece runs through :func:`recompute`, checkpoint-style: its tensor arguments are saved, its activations are not,
and backward recomputes it with the engine's replay guarantees (the random state and autocast of the forward pass,
BatchNorm running statistics updated once). Like the reversible ops, each piece is its own autograd node whose
parameters are inputs: their gradients are returned when the piece's backward is done, so they reach ``p.grad``,
DDP's reducer and gradient hooks right away.

Recompute piece by piece (one stream at a time) so that only one piece's activations are alive in backward.
``torch.utils.checkpoint`` is not used because its recompute must save exactly the tensors the forward saved,
and a BatchNorm that does not update its statistics saves fewer.
"""

from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import nn
from torch.autograd.function import once_differentiable

from hf_eff.reversible.base import ParamGrads, _leaf, trainable_parameters
from hf_eff.reversible.replay import AutocastState, RNGTape, recomputing


class _Piece:
    """A call ``function(*args)`` whose tensor arguments are swapped for the autograd node's inputs."""

    def __init__(self, function: Callable[..., Any], args: tuple, modules: list[nn.Module], device: torch.device):
        self.positions = [i for i, a in enumerate(args) if isinstance(a, torch.Tensor)]
        # tensors are not kept here: the node would hold them until the whole graph is freed
        self.args = tuple(None if i in self.positions else a for i, a in enumerate(args))
        self.function, self.modules = function, modules
        self.params = list(dict.fromkeys(p for m in modules for p in trainable_parameters(m)))
        self.rng = RNGTape(device)
        self.autocast = AutocastState.capture(device.type)
        self.returns_tuple = False

    def __call__(self, tensors) -> tuple[torch.Tensor, ...]:
        args = list(self.args)
        for i, t in zip(self.positions, tensors):
            args[i] = t
        out = self.function(*args)
        self.returns_tuple = isinstance(out, (tuple, list))
        return tuple(out) if self.returns_tuple else (out,)


def _unlisted_parameters(outputs: Iterable[torch.Tensor], params: set[torch.Tensor]) -> list[torch.Tensor]:
    """Leaves requiring grad that the recomputed graph reaches but that are not inputs of the node."""
    seen, stack, found = set(), [o.grad_fn for o in outputs if o.grad_fn is not None], []
    while stack:
        node = stack.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        variable = getattr(node, "variable", None)
        if variable is not None and variable not in params and isinstance(variable, nn.Parameter):
            found.append(variable)
        stack.extend(next_node for next_node, _ in node.next_functions)
    return found


class _Recompute(torch.autograd.Function):
    @staticmethod
    def forward(ctx, piece: _Piece, *tensors: torch.Tensor):
        inputs = tensors[: len(piece.positions)]
        piece.rng.stash(0)
        outputs = piece(inputs)
        ids = {id(t) for t in tensors}
        outputs = tuple(o.clone() if id(o) in ids else o for o in outputs)  # an output must be a new tensor
        ctx.piece = piece
        ctx.save_for_backward(*inputs)
        return outputs

    @staticmethod
    @once_differentiable
    def backward(ctx, *grads: torch.Tensor):
        piece: _Piece = ctx.piece
        leaves = tuple(_leaf(x) for x in ctx.saved_tensors)
        sink = ParamGrads()
        with piece.rng.preserved(), piece.autocast.context(), recomputing(piece.modules):
            piece.rng.restore(0)
            with torch.enable_grad():
                outputs = piece(leaves)
            unlisted = _unlisted_parameters(outputs, set(piece.params))
            if unlisted:
                raise RuntimeError(
                    f"recompute: the function uses {len(unlisted)} parameter(s) of modules not listed in `modules` "
                    f"(shapes {[tuple(p.shape) for p in unlisted[:3]]}); they would get no gradient"
                )
            input_grads = sink.vjp(outputs, grads, leaves, piece.modules)
        return (None, *input_grads, *(sink.grads.get(p) for p in piece.params))


def recompute(function: Callable[..., Any], *args: Any, modules: Iterable[nn.Module]) -> Any:
    """``function(*args)``, storing only its tensor ``args`` for backward and recomputing the rest there.

    ``modules`` must hold every module whose parameters ``function`` uses (a missing one is an error in backward);
    their BatchNorm layers are not updated by the recompute. Without a gradient to compute this is a plain call.
    """
    modules = list(modules)
    if not all(isinstance(m, nn.Module) for m in modules):
        raise TypeError("modules must be nn.Module instances (the modules the recomputed function runs)")
    if not torch.is_grad_enabled():
        return function(*args)
    tensors = [a for a in args if isinstance(a, torch.Tensor)]
    if not tensors:
        raise ValueError("recompute needs at least one tensor argument")
    piece = _Piece(function, args, modules, tensors[0].device)
    outputs = _Recompute.apply(piece, *tensors, *piece.params)
    return outputs if piece.returns_tuple else outputs[0]
