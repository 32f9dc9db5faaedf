"""The polynomial kernel k(x, y) = (gamma <x, y> + coef0) ** degree: validated parameters and the exact Gram matrix."""

import math
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class PolynomialKernel:
    """Parameters of (gamma <x, y> + coef0) ** degree, checked once so every feature map can trust them.

    ``coef0 = 0`` gives the homogeneous kernel. ``coef0`` must be >= 0 so that every Maclaurin coefficient is
    non-negative, which random feature maps need (they sample the expansion).
    """

    degree: int = 2
    gamma: float = 1.0
    coef0: float = 0.0

    def __post_init__(self):
        if isinstance(self.degree, bool) or not isinstance(self.degree, int):
            raise TypeError(f"degree must be an int, got {type(self.degree).__name__}")
        if self.degree < 1:
            raise ValueError(f"degree must be >= 1, got {self.degree}")
        if not (math.isfinite(self.gamma) and self.gamma > 0):
            raise ValueError(f"gamma must be a finite number > 0, got {self.gamma}")
        if not (math.isfinite(self.coef0) and self.coef0 >= 0):
            raise ValueError(f"coef0 must be a finite number >= 0, got {self.coef0}")

    @property
    def homogeneous(self) -> bool:
        return self.coef0 == 0

    def maclaurin_coefficients(self) -> list[float]:
        """a_n of k as a power series in t = <x, y>: a_n = C(p, n) coef0^(p-n) gamma^n for n = 0..p."""
        p = self.degree
        return [math.comb(p, n) * self.coef0 ** (p - n) * self.gamma**n for n in range(p + 1)]

    def gram(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """The exact kernel matrix k(x_i, y_j) (``y`` defaults to ``x``)."""
        y = x if y is None else y
        return (self.gamma * (x @ y.T) + self.coef0) ** self.degree


def relative_gram_error(features: torch.Tensor, exact_gram: torch.Tensor) -> float:
    """||K - Z Z^T||_F / ||K||_F: how well the features ``Z`` reproduce the kernel matrix ``K``."""
    approx = features @ features.T
    return (torch.linalg.matrix_norm(exact_gram - approx) / torch.linalg.matrix_norm(exact_gram)).item()
