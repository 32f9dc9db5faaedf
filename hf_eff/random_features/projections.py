"""Johnson–Lindenstrauss down-projections R^D -> R^E that preserve inner products in expectation.

- :class:`SubsampledRandomizedHadamard` (SRHT, Tropp 2011): random signs, orthonormal Walsh–Hadamard rotation,
  keep E of the m = 2^ceil(log2 D) coordinates (without replacement), rescale by sqrt(m / E). O(D log D) per row
  and O(D + E) stored numbers.
- :class:`GaussianProjection`: a dense E x D Gaussian matrix / sqrt(E); the simple reference, O(D E) per row.
- :class:`BalancedCountSketch`: a random partition of the D coordinates into E buckets of equal size (+-1), summed
  per bucket; O(D) per row. Its variance, sum over same-bucket pairs i != j of (u_i^2 v_j^2 + u_i v_i u_j v_j), is
  (D/E - 1)/(D - 1) (||u||^2 ||v||^2 + <u, v>^2 - 2 sum_i u_i^2 v_i^2) in expectation: the finite-population factor
  of sampling without replacement (zero at E = D, where it is an isometry) *and* the diagonal term that a Hadamard
  rotation flattens away, which makes it far better than an SRHT on spiky vectors (one dominant feature, or one
  dominant monomial after a polynomial map).
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


class BalancedCountSketch(RandomFeatureMap):
    """u -> (sum_{i in bucket b} s_i u_i)_b over a random balanced partition into E buckets; E<Cu, Cv>> = <u, v>."""

    def __init__(self, n_features_in: int, n_components: int, seed: int = 0, batch_size: int | None = None):
        super().__init__(n_features_in, n_components, seed, batch_size)
        if n_components > n_features_in:
            raise ValueError(f"n_components={n_components} exceeds n_features_in={n_features_in}: nothing to compress")
        self._register_sampled_buffers()

    def sample_buffers(self) -> dict[str, torch.Tensor]:
        generator = seeded_generator(self.seed)
        signs = random_signs((self.n_features_in,), generator)
        # the coordinate of rank r in a random order goes to bucket r mod E: every bucket gets floor or ceil(D / E)
        order = torch.randperm(self.n_features_in, generator=generator, device="cpu")
        width = -(-self.n_features_in // self.n_components)
        # (E, width) table of each bucket's coordinates, short buckets padded with D (an appended zero column)
        table = torch.full((width * self.n_components,), self.n_features_in, dtype=torch.int64, device="cpu")
        table[: self.n_features_in] = order
        return {"signs": signs, "buckets": table.view(width, self.n_components).T.contiguous()}

    def workspace_width(self) -> int:
        return 2 * (self.n_features_in + self.n_components)

    def bucket_of(self) -> torch.Tensor:
        """(D,) the bucket of every input coordinate (the inverse of the ``buckets`` table)."""

        def build():
            table, d = self.buckets.cpu(), self.n_features_in
            bucket = torch.arange(self.n_components).unsqueeze(1).expand_as(table)
            used = table < d
            out = torch.empty(d, dtype=torch.int64)
            out[table[used]] = bucket[used]
            return out

        return self.derived("bucket_of", build)

    def transform_batch(self, u: torch.Tensor) -> torch.Tensor:
        # a scatter into the buckets: on CPU about twice as fast as gathering them and summing
        return u.new_zeros(u.shape[0], self.n_components).index_add_(1, self.bucket_of(), u * self.signs.to(u.dtype))
