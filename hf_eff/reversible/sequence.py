"""The reversible container and the autograd nodes that run it without storing activations.

:class:`ReversibleSequence` chains invertible ops over a tuple of streams. When it is ``reversible`` and a
gradient is needed, every op runs as its own autograd node (:class:`_ReversibleOp`) under ``no_grad``: nothing
is saved but the last op's outputs. In backward the autograd engine walks the nodes in reverse; each node takes
its op's outputs (saved, or reconstructed by the node after it), recomputes the op's transforms once, hands its
reconstructed inputs to the node before it and returns its gradients.

Design choices:

- **One node per op, gradients returned, not written.** An op's trainable parameters are inputs of its node and
  their gradients are returned from that node's ``backward``: the engine accumulates them into ``p.grad`` as
  soon as the op is done (so at most one op's parameter gradients are ever held besides ``p.grad``), and DDP's
  reducer, gradient hooks, ``torch.autograd.grad`` and gradient accumulation see an ordinary graph. Nothing calls
  ``.backward()`` re-entrantly or writes ``p.grad``.
- **RNG replay per transform** (dropout, stochastic depth) and **autocast replay**; see
  :mod:`hf_eff.reversible.replay`.
- **BatchNorm running statistics are updated once**: in forward, never in the recompute.
- **fp32 streams under autocast**: low-precision floating inputs are upcast, and additive couplings keep
  ``fp32 + low-precision update`` in fp32, so inversion error does not compound at bf16 resolution.
- ``reversible=False`` (or no gradient needed) runs the very same ops as an ordinary module storing
  activations, which is the baseline, the inference path and the reference of the gradient tests.

A non-invertible part after the stack (a neck, a head) is not the sequence's business: wrap it in
:func:`~hf_eff.reversible.recompute`, piece by piece, so that its activations are recomputed too.
"""

import contextlib
from collections.abc import Iterator, Sequence

import torch
from torch import nn
from torch.autograd.function import once_differentiable

from hf_eff.reversible.base import InvertibleModule, ParamGrads, Streams, trainable_parameters
from hf_eff.reversible.replay import PLAIN, AutocastState, RNGTape, TransformRunner, recomputing


_LOW_PRECISION = (torch.float16, torch.bfloat16)


class _Tape:
    """What the nodes of one reversible forward share: replay state, and the streams handed down in backward."""

    def __init__(self, sequence: "ReversibleSequence", device: torch.device):
        self.sequence = sequence
        self.rng = RNGTape(device, enabled=sequence.preserve_rng_state)
        self.autocast = AutocastState.capture(device.type)
        self.reconstructed: dict[int, Streams] = {}  # op index -> its outputs, rebuilt by the next op's backward

    def runner(self, index: int, mode: str) -> TransformRunner:
        return TransformRunner(self.rng, mode, (index,))

    @contextlib.contextmanager
    def replay(self, op: nn.Module) -> Iterator[None]:
        """Recompute ``op`` as its forward ran: same autocast, no BatchNorm update, global RNG left untouched."""
        with self.rng.preserved(), self.autocast.context(), recomputing([op]), torch.no_grad():
            yield


class _ReversibleOp(torch.autograd.Function):
    """One invertible op of a reversible forward; saves its outputs only when it is the last op."""

    @staticmethod
    def forward(ctx, tape: _Tape, index: int, num_streams: int, *tensors: torch.Tensor):
        op = tape.sequence.ops[index]
        streams = op.invertible_forward(tape.runner(index, "record"), tuple(tensors[:num_streams]))
        inputs = {id(t) for t in tensors}
        streams = tuple(s.clone() if id(s) in inputs else s for s in streams)  # an output must be a new tensor
        ctx.tape, ctx.index, ctx.params = tape, index, tensors[num_streams:]
        ctx.is_last = index == len(tape.sequence.ops) - 1
        if ctx.is_last:
            ctx.save_for_backward(*streams)
        return streams

    @staticmethod
    @once_differentiable  # the recompute runs under its own autograd session; no double backward
    def backward(ctx, *grads: torch.Tensor):
        tape: _Tape = ctx.tape  # kept (not deleted) so that backward(retain_graph=True) can run again
        outputs = ctx.saved_tensors if ctx.is_last else tape.reconstructed.pop(ctx.index)
        op = tape.sequence.ops[ctx.index]
        sink = ParamGrads()
        with tape.replay(op):
            inputs, input_grads = op.backward_pass(tape.runner(ctx.index, "replay"), outputs, grads, sink)
        del outputs
        if ctx.index > 0 and any(ctx.needs_input_grad[3 : 3 + len(inputs)]):  # the previous op's node will run
            tape.reconstructed[ctx.index - 1] = inputs
        return (None, None, None, *input_grads, *(sink.grads.get(p) for p in ctx.params))


class ReversibleSequence(nn.Module):
    """A stack of :class:`~hf_eff.reversible.base.InvertibleModule` ops over a tuple of streams.

    Args:
        ops: the invertible ops, applied in order.
        reversible: when True (default) and a gradient is needed, store only the final outputs and recompute
            in backward; when False, run as an ordinary module storing activations.
        preserve_rng_state: stash and replay the RNG state per transform (needed with dropout or stochastic
            depth; cheap otherwise).

    ``forward(*streams)`` returns a tuple of streams.
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

    def forward(self, *streams: torch.Tensor) -> Streams:
        if not streams:
            raise ValueError("ReversibleSequence needs at least one input stream")
        device_type = streams[0].device.type
        if torch.amp.is_autocast_available(device_type) and torch.is_autocast_enabled(device_type):
            streams = tuple(s.float() if s.dtype in _LOW_PRECISION else s for s in streams)
        needs_grad = torch.is_grad_enabled() and (
            any(p.requires_grad for p in self.parameters()) or any(s.requires_grad for s in streams)
        )
        if not (self.reversible and needs_grad):
            for op in self.ops:
                streams = op.invertible_forward(PLAIN, streams)
            return streams
        tape = _Tape(self, streams[0].device)
        for index, op in enumerate(self.ops):
            streams = _ReversibleOp.apply(tape, index, len(streams), *streams, *trainable_parameters(op))
        return streams
