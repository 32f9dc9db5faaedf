"""Complex-to-real TensorSRHT for <x, y> ** n (Wacker, Kanagawa & Filippone, JMLR 2024; Wacker et al. 2022).

A complex feature is z(x) = prod_{j <= n} <w_j, x> with w_j = (a_j + i b_j) / sqrt(2) and a_j, b_j independent
Rademacher-like vectors. E[w w^H] = I and E[w w^T] = 0, so E[z(x) conj(z(y))] = <x, y>^n and E[z(x) z(y)] = 0:
Re(z(x) conj(z(y))) = Re z(x) Re z(y) + Im z(x) Im z(y) is an unbiased *real* estimate from the two real outputs
[Re z, Im z]. Its variance, per real output, is ((1 + t^2)^n + (2^n - 2) t^(2n)) / E for unit x, y with t = <x, y>
(Gaussian approximation), against ((1 + 2 t^2)^n - t^(2n)) / E for real Rademacher products: much less where the
data are correlated (t near 1), which is the case for the non-negative inputs polynomial kernels usually see.

Structured orthogonal blocks (TensorSRHT): the vectors of one factor come in blocks of m = 2^ceil(log2 d) rows of
H_m D, a Walsh-Hadamard matrix with randomly permuted rows times a complex Rademacher diagonal D = (A + iB)/sqrt(2),
restricted to the d input coordinates; within a block they are Hermitian-orthogonal (exactly when d = m), which
makes the features negatively correlated and lowers the variance further. For the small d this library targets the
rows are applied as one dense matrix product: a fast Walsh-Hadamard pass needs 4x fewer flops at d = 64 but then a
gather per factor for the row permutations, and measured no faster on CPU. So one matmul yields every factor of every
feature and the only loop is over the n factors of the product.
"""

import math

import torch

from hf_eff.random_features.base import RandomFeatureMap, check_positive_int, random_signs, seeded_generator
from hf_eff.random_features.hadamard import hadamard_matrix, next_power_of_two


class ComplexTensorSRHT(RandomFeatureMap):
    """CtR TensorSRHT map to ``n_components`` real features for the homogeneous kernel <x, y> ** ``degree``.

    ``ceil(E / 2)`` complex features give the E real outputs [Re z_1 .. Re z_K, Im z_1 .. Im z_K] / sqrt(K); for odd
    E the last complex feature keeps only its real part, scaled by sqrt(2) (E[Re z(x) Re z(y)] = <x, y>^n / 2).
    Inputs are used as given (fold any gamma into them first).
    """

    def __init__(
        self, n_features_in: int, n_components: int, degree: int, seed: int = 0, batch_size: int | None = None
    ):
        super().__init__(n_features_in, n_components, seed, batch_size)
        self.degree = check_positive_int(degree, "degree")
        self.n_complex = -(-n_components // 2)
        self._register_sampled_buffers()

    def sample_buffers(self) -> dict[str, torch.Tensor]:
        generator = seeded_generator(self.seed)
        d, m, k = self.n_features_in, next_power_of_two(self.n_features_in), self.n_complex
        hadamard = hadamard_matrix(m, torch.float32, device="cpu")[:, :d]  # (m, d): rows are the block's vectors
        blocks = -(-k // m)
        count = self.degree * blocks  # per factor: independent blocks
        # a uniformly random row order per block (argsort of i.i.d. uniforms) and a complex Rademacher diagonal
        # (a + i b) / sqrt(2) per block: (count, 2, m, d), the real and imaginary parts of m vectors H_k (a + i b)
        order = torch.rand(count, m, generator=generator, dtype=torch.float64, device="cpu").argsort(dim=1)
        signs = random_signs((count, 2, 1, d), generator).float()
        parts = hadamard[order].unsqueeze(1) * signs
        # with one Hadamard row per complex vector, w_k^H w_l = sum_i H_ki H_li (a_i^2 + b_i^2) / 2 = 0 for k != l
        # (exactly when d = m): each block is Hermitian-orthogonal
        # (degree, blocks, 2, m, d) -> (degree, 2, blocks * m, d) -> keep k vectors -> (d, degree, 2, k)
        stacked = parts.view(self.degree, blocks, 2, m, d).transpose(1, 2).reshape(self.degree, 2, -1, d)
        stacked = stacked[:, :, :k]
        return {"projection": (stacked.permute(3, 0, 1, 2) / math.sqrt(2)).contiguous().view(d, -1)}

    def workspace_width(self) -> int:
        return 2 * self.degree * self.n_complex + 2 * self.n_complex

    def complex_features(self, x: torch.Tensor) -> torch.Tensor:
        """The (n, K) complex features prod_j <w_j, x>, unscaled.

        One matrix product gives every factor, laid out (real, imaginary) pairwise so that it is a complex tensor
        without a copy; the products are torch's vectorised complex multiplies, in place after the first.
        """
        factors = torch.view_as_complex(self.factor_projections(x).view(x.shape[0], self.degree, self.n_complex, 2))
        if self.degree == 1:
            return factors[:, 0]
        product = factors[:, 0] * factors[:, 1]
        for j in range(2, self.degree):
            product.mul_(factors[:, j])
        return product

    def factor_projections(self, x: torch.Tensor) -> torch.Tensor:
        """(n, degree * 2K) real: every factor's projections <w_jk, x>, (real, imaginary) pairwise per k.

        The one matrix product of the map, d x (degree * 2K): at d = 64 it is most of the map's cost.
        """
        d, k = self.n_features_in, self.n_complex
        projection = self.derived(
            "interleaved", lambda: self.projection.view(d, self.degree, 2, k).transpose(2, 3).reshape(d, -1), x.dtype
        )
        return x @ projection

    def interleaved_layout(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Where each entry of ``view_as_real(complex_features(x))`` (Re z_1, Im z_1, Re z_2, ...) goes.

        Returns the output coordinate of ``transform_batch`` per entry (Re z_k -> k, Im z_k -> K + k; the last
        imaginary part is dropped, coordinate -1, when E is odd) and the scale it gets there.
        """
        k, e = self.n_complex, self.n_components
        coordinate = torch.stack([torch.arange(k), torch.arange(k, 2 * k)], dim=1).flatten()
        scale = torch.full((2 * k,), 1 / math.sqrt(k), dtype=torch.float64)
        if e % 2:  # the unpaired real part carries half the expectation
            scale[-2] *= math.sqrt(2)
            scale[-1], coordinate[-1] = 0.0, -1
        return coordinate, scale

    def transform_batch(self, x: torch.Tensor) -> torch.Tensor:
        z = self.complex_features(x)
        k, e = self.n_complex, self.n_components
        out = torch.cat([z.real, z.imag[:, : e - k]], dim=1).mul_(1 / math.sqrt(k))
        if e % 2:  # the unpaired real part carries half the expectation
            out[:, k - 1] *= math.sqrt(2)
        return out

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, degree={self.degree}"
