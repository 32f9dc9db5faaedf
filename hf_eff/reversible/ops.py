"""Structural invertible ops: space-to-depth and per-stream application of invertible modules."""

from collections.abc import Sequence

import torch
from torch import nn

from hf_eff.reversible.base import InvertibleModule, ParamGrads, Streams
from hf_eff.reversible.replay import TransformRunner


class SpaceToDepth(InvertibleModule):
    """Invertible downsampling (i-RevNet): ``(B, C, *S) -> (B, C * f^d, *S / f)`` for ``d`` spatial dims.

    Output channels are ordered ``(offset_1, ..., offset_d, channel)``, the layout RevBiFPN's stem uses. A pure
    permutation: its backward applies the inverse permutation to the gradient and recomputes nothing.
    """

    def __init__(self, factor: int):
        super().__init__()
        if not isinstance(factor, int) or factor < 1:
            raise ValueError(f"factor must be a positive int, got {factor!r}")
        self.factor = factor

    def extra_repr(self) -> str:
        return f"factor={self.factor}"

    def _space_to_depth(self, x: torch.Tensor) -> torch.Tensor:
        f, (b, c, *spatial) = self.factor, x.shape
        if any(s % f for s in spatial):
            raise ValueError(f"spatial size {tuple(spatial)} is not divisible by the space-to-depth factor {f}")
        d = len(spatial)
        split = [b, c] + [n for s in spatial for n in (s // f, f)]
        order = [0, *(3 + 2 * k for k in range(d)), 1, *(2 + 2 * k for k in range(d))]
        return x.reshape(split).permute(order).reshape(b, c * f**d, *(s // f for s in spatial))

    def _depth_to_space(self, y: torch.Tensor) -> torch.Tensor:
        f, (b, cf, *spatial) = self.factor, y.shape
        d = len(spatial)
        c = cf // f**d
        y = y.reshape(b, *([f] * d), c, *spatial)
        # (b, f_1..f_d, c, s_1..s_d) -> (b, c, s_1, f_1, ..., s_d, f_d)
        order = [0, d + 1, *(n for k in range(d) for n in (d + 2 + k, 1 + k))]
        return y.permute(order).reshape(b, c, *(s * f for s in spatial))

    def invertible_forward(self, run: TransformRunner, streams: Streams) -> Streams:
        return tuple(self._space_to_depth(x) for x in streams)

    def invertible_inverse(self, run: TransformRunner, outputs: Streams) -> Streams:
        return tuple(self._depth_to_space(y) for y in outputs)

    def backward_pass(
        self, run: TransformRunner, outputs: Streams, grads: Streams, param_grads: ParamGrads
    ) -> tuple[Streams, Streams]:
        return self.invertible_inverse(run, outputs), self.invertible_inverse(run, grads)


class ParallelStreams(InvertibleModule):
    """Apply one invertible module per stream (``None`` leaves a stream unchanged)."""

    def __init__(self, modules: Sequence[InvertibleModule | None]):
        super().__init__()
        self.num_inputs = self.num_outputs = len(modules)
        self.streams = nn.ModuleList(nn.Identity() if m is None else m for m in modules)

    def _check(self, tensors: Streams) -> None:
        if len(tensors) != self.num_inputs:
            raise ValueError(f"ParallelStreams expects {self.num_inputs} streams, got {len(tensors)}")

    def invertible_forward(self, run: TransformRunner, streams: Streams) -> Streams:
        self._check(streams)
        return tuple(
            x if isinstance(m, nn.Identity) else m.invertible_forward(run.scope(k), (x,))[0]
            for k, (m, x) in enumerate(zip(self.streams, streams))
        )

    def invertible_inverse(self, run: TransformRunner, outputs: Streams) -> Streams:
        self._check(outputs)
        return tuple(
            y if isinstance(m, nn.Identity) else m.invertible_inverse(run.scope(k), (y,))[0]
            for k, (m, y) in enumerate(zip(self.streams, outputs))
        )

    def backward_pass(
        self, run: TransformRunner, outputs: Streams, grads: Streams, param_grads: ParamGrads
    ) -> tuple[Streams, Streams]:
        inputs, input_grads = [], []
        for k, (m, y, dy) in enumerate(zip(self.streams, outputs, grads)):
            if isinstance(m, nn.Identity):
                inputs.append(y)
                input_grads.append(dy)
            else:
                (x,), (dx,) = m.backward_pass(run.scope(k), (y,), (dy,), param_grads)
                inputs.append(x)
                input_grads.append(dx)
        return tuple(inputs), tuple(input_grads)
