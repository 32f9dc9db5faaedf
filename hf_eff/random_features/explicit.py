"""The explicit feature map of the homogeneous kernel <x, y> ** n: one feature per monomial, no randomness.

<x, y>^n = sum over multisets {i_1 <= ... <= i_n} of multinomial(n; counts) * prod x_i_k * prod y_i_k, so the
features sqrt(multinomial) * prod_k x_i_k, one per multiset, reproduce the kernel exactly with C(d + n - 1, n)
numbers instead of the d^n of the plain tensor power. Where the output size E reaches that dimension no random map
is needed at all (error 0); a little below it, compressing these exact features with a JL map beats sampling them.
"""

import itertools
import math
from collections import Counter

import torch

from hf_eff.random_features.base import RandomFeatureMap, check_positive_int


def explicit_dimension(n_features_in: int, degree: int) -> int:
    """Number of degree-``degree`` monomials in ``n_features_in`` variables: C(d + n - 1, n)."""
    return math.comb(n_features_in + degree - 1, degree)


class ExplicitPolynomialFeatures(RandomFeatureMap):
    """x -> [sqrt(multinomial) * prod_k x_i_k] over all multisets of size ``degree``; <z(x), z(y)> = <x, y>^degree.

    The monomial table is deterministic but kept in persistent buffers like every map's randomness, so the
    module saves, loads and moves between devices the same way.
    """

    def __init__(self, n_features_in: int, degree: int, batch_size: int | None = None):
        check_positive_int(degree, "degree")
        super().__init__(n_features_in, explicit_dimension(n_features_in, degree), 0, batch_size)
        self.degree = degree
        self._register_sampled_buffers()

    def sample_buffers(self) -> dict[str, torch.Tensor]:
        monomials = list(itertools.combinations_with_replacement(range(self.n_features_in), self.degree))
        weights = [
            math.factorial(self.degree) / math.prod(math.factorial(c) for c in Counter(m).values()) for m in monomials
        ]
        return {
            "monomials": torch.tensor(monomials, dtype=torch.int64, device="cpu").reshape(-1, self.degree),
            "weights": torch.tensor(weights, dtype=torch.float64, device="cpu").sqrt(),
        }

    def workspace_width(self) -> int:
        return 2 * self.n_components

    def monomial_products(self, x: torch.Tensor) -> torch.Tensor:
        """The products prod_k x_i_k without the sqrt(multinomial) weights, feature-major: (monomials, rows).

        Feature-major because each gather then copies whole contiguous rows: several times faster on CPU than
        gathering columns of the row-major input.
        """
        xt = x.T.contiguous()
        out = xt.index_select(0, self.monomials[:, 0])
        for k in range(1, self.degree):  # one gather per factor, never per monomial
            out.mul_(xt.index_select(0, self.monomials[:, k]))
        return out

    def transform_batch(self, x: torch.Tensor) -> torch.Tensor:
        return self.monomial_products(x).mul_(self.weights.to(x.dtype).unsqueeze(1)).T.contiguous()

    def extra_repr(self) -> str:
        return f"n_features_in={self.n_features_in}, degree={self.degree}, n_components={self.n_components}"
