"""Johnson–Lindenstrauss down-projections R^D -> R^E that preserve inner products in expectation.

- :class:`SubsampledRandomizedHadamard` (SRHT, Tropp 2011): random signs, orthonormal Walsh–Hadamard rotation,
  keep E of the m = 2^ceil(log2 D) coordinates (without replacement), rescale by sqrt(m / E). O(D log D) per row
  and O(D + E) stored numbers.
- :class:`GaussianProjection`: a dense E x D Gaussian matrix / sqrt(E); the simple reference, O(D E) per row.
"""

import math

import torch
import torch.nn.functional as F

from hf_eff.random_features.base import RandomFeatureMap, random_signs, seeded_generator
from hf_eff.random_features.hadamard import fwht, next_power_of_two


class SubsampledRandomizedHadamard(RandomFeatureMap):
    """SRHT: E[<S u, S v>] = <u, v> for every u, v in R^D (the linear kernel, estimated in E dimensions)."""

    def __init__(self, n_features_in: int, n_components: int, seed: int = 0, batch_size: int | None = None):
        super().__init__(n_features_in, n_components, seed, batch_size)
        self.padded_dim = next_power_of_two(n_features_in)
        if n_components > self.padded_dim:
            raise ValueError(
                f"n_components={n_components} exceeds the {self.padded_dim} Hadamard coordinates available for "
                f"n_features_in={n_features_in}"
            )
        self._register_sampled_buffers()

    def sample_buffers(self) -> dict[str, torch.Tensor]:
        generator = seeded_generator(self.seed)
        signs = random_signs((self.n_features_in,), generator)
        kept = torch.randperm(self.padded_dim, generator=generator, device="cpu")[: self.n_components]
        return {"signs": signs, "kept": kept.sort().values}

    def workspace_width(self) -> int:
        return 2 * self.padded_dim

    def transform_batch(self, u: torch.Tensor) -> torch.Tensor:
        u = u * self.signs.to(u.dtype)
        if self.padded_dim != self.n_features_in:
            u = F.pad(u, (0, self.padded_dim - self.n_features_in))
        # orthonormal H times sqrt(m / E) is the unnormalised H times 1 / sqrt(E)
        return fwht(u, scale=1 / math.sqrt(self.n_components)).index_select(1, self.kept)


class GaussianProjection(RandomFeatureMap):
    """Dense Gaussian JL map u -> G u / sqrt(E), G with i.i.d. N(0, 1) entries (stored as float32)."""

    def __init__(self, n_features_in: int, n_components: int, seed: int = 0, batch_size: int | None = None):
        super().__init__(n_features_in, n_components, seed, batch_size)
        self._register_sampled_buffers()

    def sample_buffers(self) -> dict[str, torch.Tensor]:
        generator = seeded_generator(self.seed)
        shape = (self.n_features_in, self.n_components)
        return {"matrix": torch.randn(shape, generator=generator, device="cpu", dtype=torch.float32)}

    def transform_batch(self, u: torch.Tensor) -> torch.Tensor:
        return u @ self.matrix.to(u.dtype) / math.sqrt(self.n_components)
