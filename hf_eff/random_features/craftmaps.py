"""CRAFTMaps (Hamid, Xiao, Gittens, DeCoste, ICML 2014): up-project, then down-project.

Random Maclaurin and TensorSketch features are rank deficient: at E dimensions they waste much of the space. A
CRAFTMap draws D > E of them (``up``) and compresses those D features to E with a Johnson–Lindenstrauss map
(``down``): both stages are unbiased, so <z(x), z(y)> estimates the kernel, with the up-map's error at D (small)
plus a JL error at E that does not grow with the input dimension. Rows are processed in batches, so the n x D
up-projection is never materialised for the whole input.

The default (``up="auto"``) applies this per Maclaurin term of the kernel, with the variance analysis of Wacker,
Kanagawa & Filippone (JMLR 2024): the constant exactly, each degree n in its own block sized by closed-form
variances (:mod:`~hf_eff.random_features.degree_split`), and within a block the best unbiased up-projection
affordable: the exact monomials when they fit in E (error 0), the exact monomials compressed by a balanced count
sketch when they fit in the up-projection's width (no up-projection error at all), else complex-to-real TensorSRHT
features (:class:`~hf_eff.random_features.tensor_srht.ComplexTensorSRHT`) compressed by the count sketch. A block
is evaluated fused: the up-projection's raw products, every scale and sign folded into one multiply, one scatter
into the count-sketch buckets, written straight into the block's columns of the output.
"""

import math

import torch
from torch import nn

from hf_eff.random_features.base import RandomFeatureMap, check_positive_int, scaled_input, seeded_generator
from hf_eff.random_features.degree_split import DegreeBlock, plan_degrees
from hf_eff.random_features.explicit import ExplicitPolynomialFeatures
from hf_eff.random_features.kernels import PolynomialKernel
from hf_eff.random_features.maclaurin import RandomMaclaurin
from hf_eff.random_features.projections import BalancedCountSketch, GaussianProjection, SubsampledRandomizedHadamard
from hf_eff.random_features.tensor_sketch import TensorSketch
from hf_eff.random_features.tensor_srht import ComplexTensorSRHT


UP_PROJECTIONS = ("auto", "ctr", "ts", "rm")
DOWN_PROJECTIONS = ("auto", "countsketch", "srht", "gaussian")
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
    if kind in ("auto", "ctr"):
        kind = "ts"  # a single-stage map has no room to spare for exact terms: TS is the better all-rounder
    if kind == "ts":
        return TensorSketch(n_features_in, n_components, kernel, seed=seed, batch_size=batch_size)
    if kind == "rm":
        return RandomMaclaurin(n_features_in, n_components, kernel, h01=h01, seed=seed, batch_size=batch_size)
    raise ValueError(f"up must be one of {UP_PROJECTIONS}, got {kind!r}")


class DegreeSketch(RandomFeatureMap):
    """sqrt(a_n) times E_n features whose inner products estimate <x, y>^n: one :class:`DegreeBlock` of a plan."""

    def __init__(self, n_features_in: int, block: DegreeBlock, down: str = "countsketch", seed: int = 0):
        super().__init__(n_features_in, block.n_components, seed)
        self.block = block
        up_seed, down_seed = torch.randint(0, 2**62, (2,), generator=seeded_generator(seed), device="cpu").tolist()
        if block.kind == "ctr-down":
            self.up = ComplexTensorSRHT(n_features_in, block.n_components_up, block.degree, seed=up_seed)
        else:
            self.up = ExplicitPolynomialFeatures(n_features_in, block.degree)
        self.down = None
        if block.kind != "explicit":
            projection = BalancedCountSketch if down == "countsketch" else SubsampledRandomizedHadamard
            self.down = projection(block.n_components_up, block.n_components, seed=down_seed)
        self.scale = math.sqrt(block.coefficient)

    def sample_buffers(self) -> dict[str, torch.Tensor]:
        return {}  # the randomness lives in the two stages

    def workspace_width(self) -> int:
        return max(self.up.workspace_width(), 0 if self.down is None else self.down.workspace_width())

    def transform_batch(self, x: torch.Tensor) -> torch.Tensor:
        return self.transform_into(x, x.new_zeros(x.shape[0], self.n_components))

    def transform_into(self, x: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        """Write the block's (n, E_n) features into ``out``, which must be zero (a column slice is fine).

        Fused for the count sketch: the up-projection's raw products (complex CtR products, or the exact monomials
        feature-major), every scale and sign folded into one multiply, then one scatter into the buckets.
        """
        if self.down is not None and not isinstance(self.down, BalancedCountSketch):  # the SRHT ablation
            return out.copy_(self.down.transform_batch(self.up.transform_batch(x))).mul_(self.scale)
        weight = self.derived("weight", lambda: self._scatter_plan()[1], x.dtype)
        if self.block.kind == "ctr-down":
            raw = torch.view_as_real(self.up.complex_features(x)).reshape(x.shape[0], -1)
            return out.index_add_(1, self.derived("bucket", lambda: self._scatter_plan()[0]), raw.mul_(weight))
        raw = self.up.monomial_products(x).mul_(weight.unsqueeze(1))  # (monomials, n)
        if self.down is None:
            return out.copy_(raw.T)
        sketch = raw.new_zeros(self.n_components, x.shape[0])
        return out.copy_(sketch.index_add_(0, self.derived("bucket", lambda: self._scatter_plan()[0]), raw).T)

    def _scatter_plan(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Per raw up-projection entry: its count-sketch bucket, and the weight it is summed with."""
        if self.block.kind == "ctr-down":
            coordinate, scale = self.up.interleaved_layout()
        else:  # the exact monomials: coordinate i is monomial i, with its sqrt(multinomial) weight
            coordinate, scale = torch.arange(self.up.n_components), self.up.weights.cpu()
        if self.down is None:
            return coordinate, scale * self.scale
        kept = coordinate >= 0  # an odd E drops the last imaginary part: weight 0
        coordinate = coordinate.clamp(min=0)
        signs = self.down.signs.cpu().to(torch.float64)[coordinate]
        return self.down.bucket_of().cpu()[coordinate], scale * signs * kept * self.scale

    def extra_repr(self) -> str:
        b = self.block
        return f"degree={b.degree}, coefficient={b.coefficient:g}, kind={b.kind!r}, width={b.n_components_up}"


class CraftMap(RandomFeatureMap):
    """The compact map x -> down(up(x)) with up: R^d -> R^D and down: R^D -> R^E (SRHT or Gaussian).

    Args:
        n_features_in: input dimension d.
        n_components: output dimension E.
        kernel: the polynomial kernel to approximate.
        n_components_up: the intermediate dimension D (> E); default 4E. With up="auto"/"ctr" it sets the
            up-projection factor D / E of every sampled degree block (per block rounded up to a power of two for an
            SRHT). It is the speed knob: a TensorSRHT block's cost is mostly its d x D matrix product, so 2E runs
            up to about twice as fast as the default (where TensorSRHT blocks dominate) for a somewhat higher error.
        up: "auto" (default): per Maclaurin term, the exact monomials where they fit in E, the exact monomials
            compressed by a count sketch where they fit in max(D_n, 8192), else complex-to-real TensorSRHT features
            compressed by a count sketch, with E split across the terms by closed-form variances (see the module
            docstring); "ctr": the same, always with the TensorSRHT up-projection for degrees >= 2; "ts"
            (TensorSketch) or "rm" (Random Maclaurin): the original single up-projection of the whole kernel.
        down: "countsketch" (balanced count sketch, O(D); the default of "auto"/"ctr"), "srht" (subsampled
            randomized Hadamard, O(D log D); the default of "ts"/"rm") or "gaussian" (dense, O(D E); "ts"/"rm"
            only: "auto"/"ctr" need a finite-population error, which a Gaussian map does not have).
        h01: inhomogeneous kernels only. With up="rm": emit the degree-0/1 terms exactly as 1 + d of the E
            outputs (Kar & Karnick's H0/1 heuristic) and compress only the sampled degree >= 2 features. With
            "auto"/"ctr": split the kernel into its Maclaurin terms (False: treat it as the homogeneous kernel of
            [x, sqrt(coef0)], as TensorSketch does). Ignored by "ts".
        seed: everything random derives from it (every stage and block gets an independent sub-seed).
        batch_size: rows per batch; default keeps the widest intermediate near 2^20 elements (8 MiB in float64).
    """

    # about 100-200 rows per batch: the intermediates stay near the cache, which measured ~1.5x faster on CPU than
    # the 2^23 default of single-stage maps; the per-batch overhead is still small at this size
    workspace_elements = 1 << 20

    def __init__(
        self,
        n_features_in: int,
        n_components: int,
        kernel: PolynomialKernel,
        n_components_up: int | None = None,
        up: str = "auto",
        down: str = "auto",
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
        if up not in UP_PROJECTIONS:
            raise ValueError(f"up must be one of {UP_PROJECTIONS}, got {up!r}")
        if up in ("auto", "ctr") and down == "gaussian":
            raise ValueError(f"up={up!r} compresses with a count sketch or an SRHT; pass down='auto' or up='ts'/'rm'")
        if up in ("ts", "rm") and down == "countsketch":
            raise ValueError(f"up={up!r} compresses with an SRHT or a Gaussian map; pass down='auto'")
        if down == "auto":
            down = "countsketch" if up in ("auto", "ctr") else "srht"
        self.kernel = kernel
        self.n_components_up = n_components_up
        self.up_kind, self.down_kind = up, down
        if up in ("auto", "ctr"):
            self._build_blocks(n_components_up / n_components, explicit_up=up == "auto", split=h01, down=down)
        else:
            self._build_single(h01)

    def _build_blocks(self, up_factor: float, explicit_up: bool, split: bool, down: str) -> None:
        plan = plan_degrees(self.kernel, self.n_features_in, self.n_components, up_factor, explicit_up, split, down)
        self.plan = plan
        generator = seeded_generator(self.seed)
        seeds = torch.randint(0, 2**62, (len(plan.blocks),), generator=generator, device="cpu").tolist()
        width = self.n_features_in + plan.augmented
        self.blocks = nn.ModuleList(DegreeSketch(width, block, down, seed=s) for block, s in zip(plan.blocks, seeds))
        exact = [b.n_components for b in plan.blocks if b.kind == "explicit"]
        self.n_exact = (plan.constant > 0) + sum(exact)

    def _build_single(self, h01: bool) -> None:
        up, n_components = self.up_kind, self.n_components
        up_seed, down_seed = torch.randint(
            0, 2**62, (2,), generator=seeded_generator(self.seed), device="cpu"
        ).tolist()
        self.up = make_polynomial_map(up, self.n_features_in, self.n_components_up, self.kernel, h01=h01, seed=up_seed)
        self.n_exact = getattr(self.up, "n_exact", 0)  # exact h01 features pass through uncompressed
        if n_components <= self.n_exact:
            raise ValueError(
                f"n_components={n_components} leaves no compressed features: h01=True keeps 1 + n_features_in = "
                f"{self.n_exact} exact ones; use more components or h01=False"
            )
        projection = SubsampledRandomizedHadamard if self.down_kind == "srht" else GaussianProjection
        self.down = projection(self.n_components_up - self.n_exact, n_components - self.n_exact, seed=down_seed)

    def sample_buffers(self) -> dict[str, torch.Tensor]:
        return {}  # the randomness lives in the stages

    def workspace_width(self) -> int:
        if hasattr(self, "blocks"):
            return max(block.workspace_width() for block in self.blocks) + self.n_components
        return max(self.up.workspace_width(), self.down.workspace_width())

    def transform_batch(self, x: torch.Tensor) -> torch.Tensor:
        if hasattr(self, "blocks"):
            return self._blocks_transform(x)
        if self.n_exact:
            compressed = self.down.transform_batch(self.up.random_features(x))
            return torch.cat([self.up.exact_features(x), compressed], dim=1)
        return self.down.transform_batch(self.up.transform_batch(x))

    def _blocks_transform(self, x: torch.Tensor) -> torch.Tensor:
        plan = self.plan
        x = scaled_input(x, self.kernel.gamma)
        if plan.augmented:
            x = torch.cat([x, x.new_full((x.shape[0], 1), math.sqrt(self.kernel.coef0))], dim=1)
        out = x.new_zeros(x.shape[0], self.n_components)  # E beyond the explicit dimension: zero padding at the end
        start = 0
        if plan.constant > 0:
            out[:, 0] = math.sqrt(plan.constant)
            start = 1
        for block in self.blocks:  # one block per Maclaurin degree (<= p), each writing its own columns
            block.transform_into(x, out[:, start : start + block.n_components])
            start += block.n_components
        return out

    def describe(self) -> str:
        """One sentence on how the E outputs are spent (used by the model card)."""
        if not hasattr(self, "blocks"):
            name = {"ts": "TensorSketch", "rm": "Random Maclaurin"}[self.up_kind]
            down = "subsampled randomized Hadamard" if self.down_kind == "srht" else "Gaussian"
            exact = f" (of which {self.n_exact} are the exact degree-0/1 kernel terms)" if self.n_exact else ""
            return f"{name} up-projection to {self.n_components_up} features, {down} down-projection to {self.n_components}{exact}"
        names = {
            "explicit": "{E} exact monomial features",
            "explicit-down": "the {D} exact monomials compressed to {E} by a {down}",
            "ctr-down": "{D} complex-to-real TensorSRHT features compressed to {E} by a {down}",
        }
        plan = self.plan
        down = {"countsketch": "balanced count sketch", "srht": "subsampled randomized Hadamard transform"}[plan.down]
        parts = ["the constant term exactly (1 feature)"] if plan.constant > 0 else []
        for b in plan.blocks:
            parts.append(
                f"degree {b.degree}: " + names[b.kind].format(E=b.n_components, D=b.n_components_up, down=down)
            )
        if plan.n_padding:
            parts.append(f"{plan.n_padding} zero features (E exceeds the explicit dimension)")
        prefix = "the kernel of [x, sqrt(coef0)] as one homogeneous term: " if plan.augmented else ""
        return prefix + "; ".join(parts)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, n_components_up={self.n_components_up}, up={self.up_kind!r}, down={self.down_kind!r}"
