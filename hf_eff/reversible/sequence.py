"""The reversible container and the autograd Function that runs it without storing activations.

:class:`ReversibleSequence` chains invertible ops over a tuple of streams. When it is ``reversible`` and a
gradient is needed, :class:`_ReversibleFunction` runs all ops under ``no_grad`` and saves only the final
outputs; backward walks the ops in reverse, reconstructing each op's inputs from its outputs and recomputing its
transforms once. An optional non-invertible ``tail`` (e.g. a feature-pyramid neck or a classification head) is
recomputed from those saved outputs, checkpoint-style, so its activations are not stored either.

Design choices:

- **Gradients are returned, not written.** Every trainable parameter is an input of the Function and its
  gradient is returned from ``backward``; nothing calls ``.backward()`` re-entrantly or writes ``p.grad``. So
  DDP's reducer, gradient hooks and accumulation behave exactly as for an ordinary module.
- **RNG replay per transform** (dropout, stochastic depth) and **autocast replay**; see
  :mod:`hf_eff.reversible.replay`.
- **BatchNorm running statistics are updated once**: in forward, never in the recompute.
- **fp32 streams under autocast**: low-precision floating inputs are upcast, and additive couplings keep
  ``fp32 + low-precision update`` in fp32, so inversion error does not compound at bf16 resolution.
- ``reversible=False`` (or no gradient needed) runs the very same ops as an ordinary module storing
  activations, which is the baseline, the inference path and the reference of the gradient tests.
"""

from collections.abc import Sequence

import torch
from torch import nn
from torch.autograd.function import once_differentiable

from hf_eff.reversible.base import InvertibleModule, ParamGrads, Streams, _leaf, trainable_parameters
from hf_eff.reversible.replay import PLAIN, AutocastState, RNGTape, TransformRunner, recomputing


_LOW_PRECISION = (torch.float16, torch.bfloat16)
_TAIL = "tail"


class _Tape:
    """Everything one reversible forward hands to its backward, apart from the saved outputs."""

    def __init__(self, sequence: "ReversibleSequence", tail: nn.Module | None, device: torch.device):
        self.sequence = sequence
        self.tail = tail
        self.rng = RNGTape(device, enabled=sequence.preserve_rng_state)
        self.autocast = AutocastState.capture(device.type)
        self.params: list[nn.Parameter] = []

    def runner(self, index, mode: str) -> TransformRunner:
        return TransformRunner(self.rng, mode, (index,))

    def modules(self) -> list[nn.Module]:
        return list(self.sequence.ops) + ([self.tail] if self.tail is not None else [])


def _as_tuple(value) -> Streams:
    return tuple(value) if isinstance(value, (tuple, list)) else (value,)


class _ReversibleFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, tape: _Tape, num_streams: int, *tensors: torch.Tensor):
        streams = tuple(tensors[:num_streams])
        for index, op in enumerate(tape.sequence.ops):
            streams = op.invertible_forward(tape.runner(index, "record"), streams)
        ctx.tape = tape
        inputs = {id(t) for t in tensors}
        streams = tuple(s.clone() if id(s) in inputs else s for s in streams)  # an output must be a new tensor
        ctx.save_for_backward(*streams)
        if tape.tail is None:
            return streams
        tape.rng.stash(_TAIL)
        return _as_tuple(tape.tail(*streams))

    @staticmethod
    @once_differentiable  # the recompute runs under its own autograd session; no double backward
    def backward(ctx, *grads: torch.Tensor):
        tape: _Tape = ctx.tape  # kept (not deleted) so that backward(retain_graph=True) can run again
        outputs = ctx.saved_tensors
        sink = ParamGrads()
        with tape.rng.preserved(), tape.autocast.context(), recomputing(tape.modules()), torch.no_grad():
            if tape.tail is not None:
                leaves = tuple(_leaf(y) for y in outputs)
                tape.rng.restore(_TAIL)
                with torch.enable_grad():
                    tail_out = _as_tuple(tape.tail(*leaves))
                grads = sink.vjp(tail_out, grads, leaves, [tape.tail])
                grads = tuple(torch.zeros_like(y) if g is None else g for y, g in zip(outputs, grads))
            streams = outputs
            for index in reversed(range(len(tape.sequence.ops))):
                op = tape.sequence.ops[index]
                streams, grads = op.backward_pass(tape.runner(index, "replay"), streams, grads, sink)
        param_grads = [sink.grads.get(p) for p in tape.params]
        return (None, None, *grads, *param_grads)


class ReversibleSequence(nn.Module):
    """A stack of :class:`~hf_eff.reversible.base.InvertibleModule` ops over a tuple of streams.

    Args:
        ops: the invertible ops, applied in order.
        reversible: when True (default) and a gradient is needed, store only the final outputs and recompute
            in backward; when False, run as an ordinary module storing activations.
        preserve_rng_state: stash and replay the RNG state per transform (needed with dropout or stochastic
            depth; cheap otherwise).

    ``forward(*streams, tail=None)`` returns a tuple of streams, or ``tail(*streams)`` as a tuple when a
    non-invertible ``tail`` module is given (it is recomputed in backward instead of storing activations).
    """

    def __init__(self, ops: Sequence[InvertibleModule], reversible: bool = True, preserve_rng_state: bool = True):
        super().__init__()
        for op in ops:
            if not isinstance(op, InvertibleModule):
                raise TypeError(f"ops must be InvertibleModule instances, got {type(op).__name__}")
        self.ops = nn.ModuleList(ops)
        self.reversible = reversible
        self.preserve_rng_state = preserve_rng_state

    def extra_repr(self) -> str:
        return f"reversible={self.reversible}"

    def forward(self, *streams: torch.Tensor, tail: nn.Module | None = None) -> Streams:
        if not streams:
            raise ValueError("ReversibleSequence needs at least one input stream")
        device_type = streams[0].device.type
        if torch.amp.is_autocast_available(device_type) and torch.is_autocast_enabled(device_type):
            streams = tuple(s.float() if s.dtype in _LOW_PRECISION else s for s in streams)
        modules = list(self.ops) + ([tail] if tail is not None else [])
        params = list(dict.fromkeys(p for m in modules for p in trainable_parameters(m)))
        needs_grad = torch.is_grad_enabled() and (bool(params) or any(s.requires_grad for s in streams))
        if not (self.reversible and needs_grad):
            for op in self.ops:
                streams = op.invertible_forward(PLAIN, streams)
            return streams if tail is None else _as_tuple(tail(*streams))
        tape = _Tape(self, tail, streams[0].device)
        tape.params = params
        return _ReversibleFunction.apply(tape, len(streams), *streams, *params)
