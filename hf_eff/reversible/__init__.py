"""Reversible (invertible-coupling) networks that train without storing activations.

The engine knows nothing of any particular model: RevBiFPN and the reversible 3D U-Net both build on it.

- :class:`ReversibleSequence`: chains :class:`InvertibleModule` ops; stores only the final outputs and
  reconstructs every op's inputs by inversion in backward, one autograd node per op, so each op's parameter
  gradients reach ``p.grad`` (and DDP) as soon as it is done (``reversible=False`` stores activations instead).
- Couplings with exact inverses: :class:`RevNetBlock` (additive coupling on channel halves),
  :class:`RevSilo` (multi-scale fine->coarse then coarse->fine fusion, optionally adding a coarser stream) and
  :class:`AdditiveCoupling` for other step patterns; subclass :class:`InvertibleModule` for any other invertible
  op (it calls its learned parts through a :class:`TransformRunner` and may write a fused backward that feeds a
  :class:`ParamGrads` sink).
- Structural ops: :class:`SpaceToDepth` (any dimensionality), :class:`ParallelStreams`.
- :func:`recompute`: checkpoint a non-invertible piece after the stack (a neck, a head) with the same replay
  guarantees: random state and autocast of the forward pass, BatchNorm statistics updated once.
- :func:`is_recomputing` for custom stateful layers.

Example (a 3D reversible stage; any module pair with matching channel halves works as ``F``/``G``)::

    import torch
    from torch import nn
    from hf_eff.reversible import ReversibleSequence, RevNetBlock

    def mbconv(c):  # half-width transform: 1x1 expand, depthwise 3x3x3, linear 1x1 projection
        return nn.Sequential(nn.Conv3d(c, 4 * c, 1), nn.GroupNorm(4, 4 * c), nn.SiLU(),
                             nn.Conv3d(4 * c, 4 * c, 3, padding=1, groups=4 * c), nn.SiLU(), nn.Conv3d(4 * c, c, 1))

    stage = ReversibleSequence([RevNetBlock(mbconv(8), mbconv(8)) for _ in range(4)])
    (y,) = stage(torch.randn(1, 16, 32, 32, 32, requires_grad=True))  # stores only y for backward
"""

from hf_eff.reversible.base import InvertibleModule, ParamGrads
from hf_eff.reversible.couplings import AdditiveCoupling, RevNetBlock, RevSilo
from hf_eff.reversible.ops import ParallelStreams, SpaceToDepth
from hf_eff.reversible.recompute import recompute
from hf_eff.reversible.replay import TransformRunner, is_recomputing
from hf_eff.reversible.sequence import ReversibleSequence


__all__ = [
    "AdditiveCoupling",
    "InvertibleModule",
    "ParallelStreams",
    "ParamGrads",
    "RevNetBlock",
    "RevSilo",
    "ReversibleSequence",
    "SpaceToDepth",
    "TransformRunner",
    "is_recomputing",
    "recompute",
]
