"""CRAFTMaps (Hamid, Xiao, Gittens, DeCoste, ICML 2014): up-project, then down-project.

Random Maclaurin and TensorSketch features are rank deficient: at E dimensions they waste much of the space. A
CRAFTMap draws D > E of them (``up``) and compresses those D features to E with a Johnson–Lindenstrauss map
(``down``): both stages are unbiased, so <z(x), z(y)> estimates the kernel, with the up-map's error at D (small)
plus a JL error at E that does not grow with the input dimension. Rows are processed in batches, so the n x D
up-projection is never materialised for the whole input.
"""

import torch

from hf_eff.random_features.base import RandomFeatureMap, check_positive_int, seeded_generator
from hf_eff.random_features.kernels import PolynomialKernel
from hf_eff.random_features.maclaurin import RandomMaclaurin
from hf_eff.random_features.projections import GaussianProjection, SubsampledRandomizedHadamard
from hf_eff.random_features.tensor_sketch import TensorSketch


UP_PROJECTIONS = ("auto", "ts", "rm")
DOWN_PROJECTIONS = ("srht", "gaussian")
DEFAULT_UP_FACTOR = 4  # D = 4E: miniature runs get most of the gain at D = 4E to 8E


def default_up_dimension(n_components: int) -> int:
    return DEFAULT_UP_FACTOR * n_components


def make_polynomial_map(
    kind: str,
    n_features_in: int,
    n_components: int,
    kernel: PolynomialKernel,
    h01: bool = True,
    seed: int = 0,
    batch_size: int | None = None,
) -> RandomFeatureMap:
    """A plain (single-stage) polynomial map: ``kind`` is "ts" (TensorSketch) or "rm" (Random Maclaurin)."""
    if kind == "auto":
        kind = "ts"  # a single-stage map has no room to spare for exact terms: TS is the better all-rounder
    if kind == "ts":
        return TensorSketch(n_features_in, n_components, kernel, seed=seed, batch_size=batch_size)
    if kind == "rm":
        return RandomMaclaurin(n_features_in, n_components, kernel, h01=h01, seed=seed, batch_size=batch_size)
    raise ValueError(f"up must be one of {UP_PROJECTIONS}, got {kind!r}")


class CraftMap(RandomFeatureMap):
    """The compact map x -> down(up(x)) with up: R^d -> R^D (RM or TS) and down: R^D -> R^E (SRHT or Gaussian).

    Args:
        n_features_in: input dimension d.
        n_components: output dimension E.
        kernel: the polynomial kernel to approximate.
        n_components_up: the intermediate dimension D (> E); default 4E.
        up: "ts" (TensorSketch), "rm" (Random Maclaurin) or "auto": TS for homogeneous kernels; for inhomogeneous
            ones RM with h01 when h01 is on and E leaves room for the exact terms (E >= 2 (d + 1)), else TS.
        down: "srht" (subsampled randomized Hadamard, O(D log D)) or "gaussian" (dense, O(D E)).
        h01: with up="rm" and an inhomogeneous kernel, emit the degree-0/1 terms exactly as 1 + d of the E
            outputs (Kar & Karnick's H0/1 heuristic) and compress only the sampled degree >= 2 features: the
            exact part has no error at all, so it is not worth spending JL error on. Ignored by "ts".
        seed: everything random derives from it (the two stages get independent sub-seeds).
        batch_size: rows per batch; default keeps the widest intermediate near 2^23 elements (32 MiB in float32).
    """

    def __init__(
        self,
        n_features_in: int,
        n_components: int,
        kernel: PolynomialKernel,
        n_components_up: int | None = None,
        up: str = "auto",
        down: str = "srht",
        h01: bool = True,
        seed: int = 0,
        batch_size: int | None = None,
    ):
        super().__init__(n_features_in, n_components, seed, batch_size)
        n_components_up = default_up_dimension(n_components) if n_components_up is None else n_components_up
        check_positive_int(n_components_up, "n_components_up")
        if n_components >= n_components_up:
            raise ValueError(
                f"n_components (E={n_components}) must be smaller than n_components_up (D={n_components_up}): "
                "CRAFTMaps project up to D and then down to E < D"
            )
        if down not in DOWN_PROJECTIONS:
            raise ValueError(f"down must be one of {DOWN_PROJECTIONS}, got {down!r}")
        if up == "auto":  # RM only pays off through its exact h01 terms, so it needs h01 and room for them
            roomy = n_components >= 2 * (n_features_in + 1)
            up = "rm" if (h01 and roomy and not kernel.homogeneous) else "ts"
        self.kernel = kernel
        self.n_components_up = n_components_up
        self.up_kind, self.down_kind = up, down
        up_seed, down_seed = torch.randint(0, 2**62, (2,), generator=seeded_generator(seed), device="cpu").tolist()
        self.up = make_polynomial_map(up, n_features_in, n_components_up, kernel, h01=h01, seed=up_seed)
        self.n_exact = getattr(self.up, "n_exact", 0)  # exact h01 features pass through uncompressed
        if n_components <= self.n_exact:
            raise ValueError(
                f"n_components={n_components} leaves no compressed features: h01=True keeps 1 + n_features_in = "
                f"{self.n_exact} exact ones; use more components or h01=False"
            )
        projection = SubsampledRandomizedHadamard if down == "srht" else GaussianProjection
        self.down = projection(n_components_up - self.n_exact, n_components - self.n_exact, seed=down_seed)

    def sample_buffers(self) -> dict[str, torch.Tensor]:
        return {}  # the randomness lives in the two stages

    def workspace_width(self) -> int:
        return max(self.up.workspace_width(), self.down.workspace_width())

    def transform_batch(self, x: torch.Tensor) -> torch.Tensor:
        if self.n_exact:
            compressed = self.down.transform_batch(self.up.random_features(x))
            return torch.cat([self.up.exact_features(x), compressed], dim=1)
        return self.down.transform_batch(self.up.transform_batch(x))

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, n_components_up={self.n_components_up}, up={self.up_kind!r}, down={self.down_kind!r}"
