"""Additive couplings with exact inverses: the RevNet block and the multi-scale RevSilo.

Both are sequences of *coupling steps*: ``stream[target] += sum(T(stream[src]) for src, T in terms)``, where no
step reads the stream it writes. Such a step is inverted by subtracting the same sum, and its backward needs one
recompute of each ``T``: the recomputed value both restores the target's input and carries the gradient
(``d src += J_T(src)^T d target``; ``d target`` passes through unchanged). A step may also *create* a stream
(``stream[new] = sum(...)``); the inverse simply drops it, so a silo that adds a stream stores nothing for it.

Everything here works for tensors of any dimensionality (channels on dim 1).
"""

from collections.abc import Sequence

import torch
from torch import nn

from hf_eff.reversible.base import InvertibleModule, ParamGrads, Streams, _leaf
from hf_eff.reversible.replay import TransformRunner


# one step: (target stream, [(source stream, key of the transform in self.transforms)], creates a new stream)
Step = tuple[int, list[tuple[int, str]], bool]


class AdditiveCoupling(InvertibleModule):
    """A fixed sequence of additive coupling steps over ``num_inputs`` streams.

    Subclasses fill ``self.transforms`` (an ``nn.ModuleDict``) and ``self.steps``; :meth:`to_streams` and
    :meth:`from_streams` let a coupling work on channel halves of a single tensor (RevNet).
    """

    def __init__(self, num_inputs: int, transforms: nn.ModuleDict, steps: Sequence[Step]):
        super().__init__()
        self.num_inputs = num_inputs
        self.transforms = transforms
        self.steps = list(steps)
        count = num_inputs
        for target, terms, creates in self.steps:
            if creates and target != count:
                raise ValueError(f"a step creating a stream must target stream {count}, got {target}")
            if not creates and not 0 <= target < count:
                raise ValueError(f"step target {target} is not one of the {count} streams")
            for src, key in terms:
                if src == target or not 0 <= src < count:
                    raise ValueError(f"step writing stream {target} cannot read stream {src}")
                if key not in transforms:
                    raise ValueError(f"no transform named {key!r}")
            count += int(creates)
        self.num_outputs = count

    # channel-half couplings override these two
    def to_streams(self, tensors: Streams) -> list[torch.Tensor]:
        if len(tensors) != self.num_inputs:
            raise ValueError(f"{type(self).__name__} expects {self.num_inputs} streams, got {len(tensors)}")
        return list(tensors)

    def from_streams(self, streams: list[torch.Tensor]) -> Streams:
        return tuple(streams)

    def _sum_terms(self, run: TransformRunner, streams: list[torch.Tensor], terms) -> torch.Tensor:
        total = None
        for src, key in terms:
            value = run(key, self.transforms[key], streams[src])
            total = value if total is None else total + value
        return total

    def invertible_forward(self, run: TransformRunner, tensors: Streams) -> Streams:
        streams = self.to_streams(tensors)
        for target, terms, creates in self.steps:
            update = self._sum_terms(run, streams, terms)
            if creates:  # a new stream takes the sources' precision (fp32 under autocast)
                streams.append(update.to(torch.promote_types(update.dtype, streams[terms[0][0]].dtype)))
            else:
                streams[target] = streams[target] + update  # fp32 stream + low-precision update stays fp32
        return self.from_streams(streams)

    def invertible_inverse(self, run: TransformRunner, tensors: Streams) -> Streams:
        streams = list(self.to_streams_out(tensors))
        for target, terms, creates in reversed(self.steps):
            if creates:
                streams.pop(target)
            else:
                streams[target] = streams[target] - self._sum_terms(run, streams, terms)
        return self.from_streams(streams)

    def to_streams_out(self, tensors: Streams) -> list[torch.Tensor]:
        """Split the op's *outputs* into streams (same as :meth:`to_streams` but for ``num_outputs``)."""
        if len(tensors) != self.num_outputs:
            raise ValueError(f"{type(self).__name__} produces {self.num_outputs} streams, got {len(tensors)}")
        return list(tensors)

    def backward_pass(
        self, run: TransformRunner, outputs: Streams, grads: Streams, param_grads: ParamGrads
    ) -> tuple[Streams, Streams]:
        """Fused inverse and gradient: each transform is recomputed once, with grad."""
        streams = self.to_streams_out(outputs)
        dstreams = self.to_streams_out(grads)
        for target, terms, creates in reversed(self.steps):
            dtarget = dstreams[target]
            total = None
            for src, key in terms:
                transform = self.transforms[key]
                leaf = _leaf(streams[src])
                with torch.enable_grad():
                    value = run(key, transform, leaf)
                (dsrc,) = param_grads.vjp([value], [dtarget], [leaf], [transform])
                if dsrc is not None:
                    dstreams[src] = dstreams[src] + dsrc
                value = value.detach()
                total = value if total is None else total + value
            if creates:
                streams.pop(target)
                dstreams.pop(target)
            else:
                streams[target] = streams[target] - total
        return self.from_streams(streams), self.from_streams(dstreams)


class RevNetBlock(AdditiveCoupling):
    """RevNet residual block on channel halves (Gomez et al., 2017), as used by RevBiFPN.

    ``x1, x2 = x[:, :ceil(C/2)], x[:, ceil(C/2):]``; ``y2 = x2 + F(x1)``; ``y1 = x1 + G(y2)``; output
    ``cat(y1, y2)``. ``F`` maps ``ceil(C/2) -> floor(C/2)`` channels and ``G`` the reverse.
    """

    def __init__(self, f: nn.Module, g: nn.Module):
        super().__init__(2, nn.ModuleDict({"f": f, "g": g}), [(1, [(0, "f")], False), (0, [(1, "g")], False)])

    @property
    def f(self) -> nn.Module:
        return self.transforms["f"]

    @property
    def g(self) -> nn.Module:
        return self.transforms["g"]

    def to_streams(self, tensors: Streams) -> list[torch.Tensor]:
        (x,) = tensors
        first = (x.shape[1] + 1) // 2
        return [x[:, :first], x[:, first:]]

    to_streams_out = to_streams

    def from_streams(self, streams: list[torch.Tensor]) -> Streams:
        return (torch.cat(streams, dim=1),)


class RevSilo(AdditiveCoupling):
    """The RevSilo of RevBiFPN (Chiley et al., MLSys 2023): invertible fusion of streams ordered fine -> coarse.

    First half (fine -> coarse, reading the inputs): ``y_j = x_j + sum_{i<j} down[i->j](x_i)``, and, when
    ``num_outputs = num_inputs + 1``, a new coarsest stream ``y_N = sum_{i<N} down[i->N](x_i)``.
    Second half (coarse -> fine, reading the first half's outputs): ``z_j = y_j + sum_{i>j} up[i->j](y_i)``.

    ``down`` and ``up`` map ``(source, target)`` pairs to modules; a missing pair is simply absent from the sum.
    """

    def __init__(
        self,
        num_inputs: int,
        down: dict[tuple[int, int], nn.Module],
        up: dict[tuple[int, int], nn.Module],
        add_stream: bool = False,
    ):
        num_outputs = num_inputs + int(add_stream)
        transforms = nn.ModuleDict()
        for (i, j), module in down.items():
            if not 0 <= i < j < num_outputs or i >= num_inputs:
                raise ValueError(f"down transform {i}->{j} must go from a finer input to a coarser stream")
            transforms[f"down_{i}_{j}"] = module
        for (i, j), module in up.items():
            if not 0 <= j < i < num_outputs:
                raise ValueError(f"up transform {i}->{j} must go from a coarser to a finer stream")
            transforms[f"up_{i}_{j}"] = module
        steps: list[Step] = []
        if add_stream:
            terms = [(i, f"down_{i}_{num_inputs}") for i in range(num_inputs) if (i, num_inputs) in down]
            if not terms:
                raise ValueError("a silo that adds a stream needs at least one down transform into it")
            steps.append((num_inputs, terms, True))
        # descending targets: every step reads sources the first half has not updated yet
        for j in reversed(range(1, num_inputs)):
            terms = [(i, f"down_{i}_{j}") for i in range(j) if (i, j) in down]
            if terms:
                steps.append((j, terms, False))
        # ascending targets: every step reads coarser streams the second half has not updated yet
        for j in range(num_outputs - 1):
            terms = [(i, f"up_{i}_{j}") for i in range(j + 1, num_outputs) if (i, j) in up]
            if terms:
                steps.append((j, terms, False))
        super().__init__(num_inputs, transforms, steps)

    def down(self, i: int, j: int) -> nn.Module:
        return self.transforms[f"down_{i}_{j}"]

    def up(self, i: int, j: int) -> nn.Module:
        return self.transforms[f"up_{i}_{j}"]
