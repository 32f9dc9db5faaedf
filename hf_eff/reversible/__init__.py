"""Reversible (invertible-coupling) networks that train without storing activations.

The engine knows nothing of any particular model: RevBiFPN and the reversible 3D U-Net both build on it.

- :class:`ReversibleSequence`: chains :class:`InvertibleModule` ops; stores only the final outputs and
  recomputes inputs by inversion in backward (``reversible=False`` stores activations instead).
- Couplings with exact inverses: :class:`RevNetBlock` (additive coupling on channel halves) and
  :class:`RevSilo` (multi-scale fine->coarse then coarse->fine fusion, optionally adding a coarser stream);
  :class:`AdditiveCoupling` for other step patterns.
- Structural ops: :class:`SpaceToDepth` (any dimensionality), :class:`ParallelStreams`.
- :func:`is_recomputing` for custom stateful layers.
"""

from hf_eff.reversible.base import InvertibleModule, ParamGrads
from hf_eff.reversible.couplings import AdditiveCoupling, RevNetBlock, RevSilo
from hf_eff.reversible.ops import ParallelStreams, SpaceToDepth
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
]
