"""Deprecated location of :class:`~hf_eff.random_features.sampler.CraftMapsSampler` (a module named ``sklearn``
shadowed the library's name in tracebacks and searches). Import it from ``hf_eff.random_features.sampler`` or
``hf_eff``."""

import warnings

from hf_eff.random_features.sampler import CraftMapsSampler


warnings.warn(
    "hf_eff.random_features.sklearn moved to hf_eff.random_features.sampler; the old path will be removed",
    DeprecationWarning,
    stacklevel=2,
)

__all__ = ["CraftMapsSampler"]
