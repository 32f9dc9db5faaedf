"""`SparsityConfig`: what SPDF sparsifies, how much, and how the static masks are drawn."""

import json
import math
from dataclasses import asdict, dataclass, field
from typing import Any


DISTRIBUTIONS = ("uniform", "erk")


@dataclass
class SparsityConfig:
    """Configuration of the static random masks used for sparse pre-training.

    Args:
        sparsity: fraction of each sparsified weight matrix held at exactly zero, in ``[0, 1)``. The paper
            (Thangarasa et al., 2023) uses 50% and 75%; ``0`` gives a dense run through the same code path.
        distribution: how the sparsity is spread over the matrices. ``"uniform"`` (the paper): every matrix has
            sparsity ``sparsity``. ``"erk"`` (Erdős–Rényi-kernel, Evci et al. 2020): density proportional to
            ``(rows + cols) / (rows * cols)``, so large matrices are sparser, with the same total number of kept
            weights.
        targets: glob patterns (``fnmatch``) over parameter names, or over module names, in which case the
            module's ``weight`` is meant. ``None`` picks the paper's choice for the architecture (attention QKV and
            output projections and both MLP matrices of every block); see :mod:`hf_eff.sparsity.targets`. Every
            pattern must match at least one weight matrix.
        exclude: glob patterns over parameter names removed from the matched set (e.g. ``"*.h.0.*"`` to keep the
            first block dense). Embeddings, the LM head, norms and biases are never sparsified: they are not
            matched by the defaults, and a pattern that selects a 1-D parameter or an embedding is an error.
        seed: seed of the mask generator. Masks are drawn from a private ``torch.Generator`` seeded from this
            value and the parameter's name, so they do not depend on (or disturb) the global RNG and are the same
            on every rank; in a distributed run they are also broadcast from rank 0.
    """

    sparsity: float = 0.75
    distribution: str = "uniform"
    targets: list[str] | None = None
    exclude: list[str] = field(default_factory=list)
    seed: int = 0

    def __post_init__(self):
        if isinstance(self.sparsity, bool) or not isinstance(self.sparsity, (int, float)):
            raise TypeError(f"sparsity must be a float in [0, 1), got {type(self.sparsity).__name__}")
        self.sparsity = float(self.sparsity)
        if math.isnan(self.sparsity) or not 0.0 <= self.sparsity < 1.0:
            raise ValueError(f"sparsity must be in [0, 1), got {self.sparsity}")
        if self.distribution not in DISTRIBUTIONS:
            raise ValueError(f"distribution must be one of {DISTRIBUTIONS}, got {self.distribution!r}")
        self.targets = None if self.targets is None else _pattern_list(self.targets, "targets")
        if self.targets is not None and not self.targets:
            raise ValueError("targets must name at least one pattern, or be None for the architecture's default")
        self.exclude = _pattern_list(self.exclude, "exclude")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise TypeError(f"seed must be an int, got {type(self.seed).__name__}")

    @property
    def density(self) -> float:
        return 1.0 - self.sparsity

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json_string(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "SparsityConfig":
        unknown = set(values) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown SparsityConfig fields {sorted(unknown)}")
        return cls(**values)


def _pattern_list(patterns: Any, name: str) -> list[str]:
    if isinstance(patterns, str):
        patterns = [patterns]
    patterns = list(patterns)
    if not all(isinstance(p, str) and p for p in patterns):
        raise TypeError(f"{name} must be a list of non-empty glob strings, got {patterns!r}")
    return patterns
