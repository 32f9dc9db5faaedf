"""Random Maclaurin features (Kar & Karnick, AISTATS 2012) for (gamma <x, y> + coef0) ** degree.

One feature is sqrt(a_N / q_N) * prod_{j <= N} <w_j, x> with Rademacher vectors w_j and a random degree N drawn
with probability q_N; averaging D such features (scale 1/sqrt(D)) makes <z(x), z(y)> an unbiased estimate of
sum_n a_n <x, y>^n. Two choices reduce the variance:

- homogeneous kernels (coef0 = 0) have a single term, so N = degree always (no degree sampling);
- ``h01=True`` (Kar & Karnick's H0/1 heuristic) writes the degree-0 and degree-1 terms exactly as the 1 + d
  features [sqrt(a_0), sqrt(a_1) x] and samples only degrees >= 2 for the remaining features.

Degrees are drawn from K&K's geometric law P[N = n] ∝ 2^-(n + 1), restricted to the degrees that carry weight
(a_n > 0, and n >= 2 with h01) and renormalised: hf_eff's reading of the truncated law.
"""

import math

import torch

from hf_eff.random_features.base import RandomFeatureMap, random_signs, scaled_input, seeded_generator
from hf_eff.random_features.kernels import PolynomialKernel


class RandomMaclaurin(RandomFeatureMap):
    """Random Maclaurin map to ``n_components`` features for ``kernel`` (see the module docstring)."""

    def __init__(
        self,
        n_features_in: int,
        n_components: int,
        kernel: PolynomialKernel,
        h01: bool = True,
        seed: int = 0,
        batch_size: int | None = None,
    ):
        super().__init__(n_features_in, n_components, seed, batch_size)
        if not isinstance(kernel, PolynomialKernel):
            raise TypeError(f"kernel must be a PolynomialKernel, got {type(kernel).__name__}")
        self.kernel = kernel
        # h01 only changes anything for inhomogeneous kernels (the homogeneous one has no degree-0/1 terms)
        self.h01 = bool(h01) and not kernel.homogeneous
        if self.h01 and kernel.degree < 2:
            raise ValueError("h01=True needs degree >= 2 (degree 1 has no terms left to sample); pass h01=False")
        self.n_exact = 1 + n_features_in if self.h01 else 0
        self.n_random = n_components - self.n_exact
        if self.n_random < 1:
            raise ValueError(
                f"n_components={n_components} leaves no random features: h01=True spends 1 + n_features_in = "
                f"{self.n_exact} of them on the exact degree-0/1 terms; use more components or h01=False"
            )
        # gamma is folded into the input, so the series is in <sqrt(g) x, sqrt(g) y>: a_n = C(p, n) coef0^(p - n)
        self._coefficients = PolynomialKernel(kernel.degree, 1.0, kernel.coef0).maclaurin_coefficients()
        lowest = kernel.degree if kernel.homogeneous else (2 if self.h01 else 0)
        self.sampled_degrees = [n for n in range(lowest, kernel.degree + 1) if self._coefficients[n] > 0]
        self._register_sampled_buffers()

    def degree_probabilities(self) -> list[float]:
        weights = [2.0 ** -(n + 1) for n in self.sampled_degrees]
        return [w / sum(weights) for w in weights]

    def sample_buffers(self) -> dict[str, torch.Tensor]:
        generator = seeded_generator(self.seed)
        p, r = self.kernel.degree, self.n_random
        buffers = {"signs": random_signs((self.n_features_in, p * r), generator)}
        if not self.kernel.homogeneous:
            probs = torch.tensor(self.degree_probabilities(), dtype=torch.float64, device="cpu")
            choice = torch.multinomial(probs, r, replacement=True, generator=generator)
            buffers["degrees"] = torch.tensor(self.sampled_degrees, dtype=torch.int64, device="cpu")[choice]
        return buffers

    def workspace_width(self) -> int:
        return self.kernel.degree * self.n_random

    def transform_batch(self, x: torch.Tensor) -> torch.Tensor:
        """All features: with h01, the 1 + d exact ones first, then the ``n_random`` sampled ones."""
        x = scaled_input(x, self.kernel.gamma)
        return self._features(x, random_only=False)

    def random_features(self, x: torch.Tensor) -> torch.Tensor:
        """Only the ``n_random`` sampled features (of the degrees >= 2 when h01 is on)."""
        return self._features(scaled_input(x, self.kernel.gamma), random_only=True)

    def _features(self, x: torch.Tensor, random_only: bool) -> torch.Tensor:
        p, r = self.kernel.degree, self.n_random
        projections = (x @ self.signs.to(x.dtype)).view(-1, p, r)  # (n, p, r): <w_j, x> for every factor j
        if self.kernel.homogeneous:
            return projections.prod(dim=1) / math.sqrt(r)  # every feature has degree p: no sampling
        degrees = self.degrees
        used = torch.arange(p, device=x.device).unsqueeze(1) < degrees  # (p, r): factor j counts if j < N
        products = torch.where(used, projections, torch.ones((), dtype=x.dtype, device=x.device)).prod(dim=1)
        table = torch.zeros(p + 1, dtype=x.dtype, device=x.device)
        for n, q in zip(self.sampled_degrees, self.degree_probabilities()):
            table[n] = math.sqrt(self._coefficients[n] / q / r)
        random_part = products * table[degrees]
        if random_only or not self.h01:
            return random_part
        return torch.cat([self.exact_features(x, prescaled=True), random_part], dim=1)

    def exact_features(self, x: torch.Tensor, prescaled: bool = False) -> torch.Tensor:
        """The h01 part: [sqrt(a_0), sqrt(a_1) x], whose inner products are exactly a_0 + a_1 <x, y>."""
        if not self.h01:
            raise ValueError("exact_features exists only with h01=True and an inhomogeneous kernel")
        x = x if prescaled else scaled_input(x, self.kernel.gamma)
        constant = torch.full((x.shape[0], 1), math.sqrt(self._coefficients[0]), dtype=x.dtype, device=x.device)
        return torch.cat([constant, math.sqrt(self._coefficients[1]) * x], dim=1)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, kernel={self.kernel}, h01={self.h01}"
