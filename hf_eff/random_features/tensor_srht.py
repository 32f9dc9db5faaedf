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
makes the features negatively correlated and lowers the variance further. For the small d this library targets the rows are applied as one dense matrix product
(for d <= 64 a Hadamard pass costs the same flops and is slower), so one matmul yields every factor of every
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
        parts = []
        for _ in range(self.degree * blocks):  # per factor: independent blocks
            rows = hadamard[torch.randperm(m, generator=generator, device="cpu")]
            signs = random_signs((2, 1, d), generator).float()  # a complex Rademacher diagonal (a + i b) / sqrt(2)
            parts.append(rows * signs)  # (2, m, d): the real and imaginary parts of m vectors H_k (a + i b)
        # with one Hadamard row per complex vector, w_k^H w_l = sum_i H_ki H_li (a_i^2 + b_i^2) / 2 = 0 for k != l
        # (exactly when d = m): each block is Hermitian-orthogonal
        # (degree, blocks, 2, m, d) -> (degree, 2, blocks * m, d) -> keep k vectors -> (d, degree, 2, k): one matmul
        # gives the real and imaginary parts of every factor of every feature as contiguous (n, k) slices
        stacked = torch.stack(parts).view(self.degree, blocks, 2, m, d).transpose(1, 2).reshape(self.degree, 2, -1, d)
        stacked = stacked[:, :, :k]
        return {"projection": (stacked.permute(3, 0, 1, 2) / math.sqrt(2)).contiguous().view(d, -1)}

    def workspace_width(self) -> int:
        return 2 * self.degree * self.n_complex + 4 * self.n_complex

    def complex_features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Real and imaginary parts, each (n, K), of the complex features prod_j <w_j, x>, unscaled.

        The products are written out in real arithmetic: on CPU that is several times faster than torch's
        complex multiply, and it needs no complex dtype at all.
        """
        factors = (x @ self.projection.to(x.dtype)).view(x.shape[0], self.degree, 2, -1)
        real, imag = factors[:, 0, 0], factors[:, 0, 1]
        for j in range(1, self.degree):  # (a + ib)(c + id) = (ac - bd) + i(ad + bc)
            c, d = factors[:, j, 0], factors[:, j, 1]
            real, imag = real * c - imag * d, real * d + imag * c
        return real, imag

    def transform_batch(self, x: torch.Tensor) -> torch.Tensor:
        real, imag = self.complex_features(x)
        k, e = self.n_complex, self.n_components
        out = torch.cat([real, imag[:, : e - k]], dim=1).mul_(1 / math.sqrt(k))
        if e % 2:  # the unpaired real part carries half the expectation
            out[:, k - 1] *= math.sqrt(2)
        return out

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, degree={self.degree}"
