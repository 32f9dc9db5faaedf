"""The default CRAFTMap: per-degree blocks, exact monomials, CtR TensorSRHT, balanced count sketch, the variance split.

Unbiasedness is checked entry by entry against the exact kernel over many seeds, and the same check is shown to
catch a 5% scale error, so a biased estimator cannot slip through.
"""

import math

import pytest
import torch

from hf_eff.random_features import CraftMap, PolynomialKernel, TensorSketch
from hf_eff.random_features.degree_split import block_variance, plan_degrees
from hf_eff.random_features.explicit import ExplicitPolynomialFeatures, explicit_dimension
from hf_eff.random_features.projections import BalancedCountSketch
from hf_eff.random_features.tensor_srht import ComplexTensorSRHT


SEEDS = 400


@pytest.fixture(scope="module")
def rows() -> torch.Tensor:
    """Five correlated unit rows (non-negative, like MinMax-scaled data): where estimator variances differ most."""
    torch.manual_seed(0)
    return torch.nn.functional.normalize(torch.rand(5, 6, dtype=torch.float64), dim=1)


def _gram_samples(make, x: torch.Tensor, seeds: int = SEEDS) -> torch.Tensor:
    return torch.stack([(lambda z: z @ z.T)(make(seed)(x)) for seed in range(seeds)])


def _within(samples: torch.Tensor, exact: torch.Tensor, z: float = 4.5) -> bool:
    mean, sem = samples.mean(0), samples.std(0) / math.sqrt(len(samples))
    return bool(((mean - exact).abs() <= z * sem + 1e-10).all())


MAPS = {
    "ctr-even": (lambda s: ComplexTensorSRHT(6, 160, 3, seed=s), PolynomialKernel(3)),
    "ctr-odd": (lambda s: ComplexTensorSRHT(6, 63, 2, seed=s), PolynomialKernel(2)),
    "auto-homogeneous": (lambda s: CraftMap(6, 40, PolynomialKernel(3), seed=s), PolynomialKernel(3)),
    "auto-split": (lambda s: CraftMap(6, 24, PolynomialKernel(3, 0.7, 1.0), seed=s), PolynomialKernel(3, 0.7, 1.0)),
    "auto-augmented": (
        lambda s: CraftMap(6, 70, PolynomialKernel(3, 1.0, 2.0), h01=False, seed=s),
        PolynomialKernel(3, 1.0, 2.0),
    ),
    "ctr-split-srht": (
        lambda s: CraftMap(6, 24, PolynomialKernel(3, 1.0, 1.0), up="ctr", down="srht", seed=s),
        PolynomialKernel(3, 1.0, 1.0),
    ),
}


@pytest.mark.parametrize("name", sorted(MAPS))
def test_kernel_estimates_are_unbiased(rows, name):
    make, kernel = MAPS[name]
    samples = _gram_samples(make, rows)
    exact = kernel.gram(rows)
    assert _within(samples, exact), f"{name}: mean {samples.mean(0)} vs exact {exact}"
    assert not _within(samples, exact * 1.05), "the check is too loose to catch a 5% bias"


def test_balanced_count_sketch_is_unbiased_and_an_isometry_when_nothing_is_compressed():
    u = torch.randn(4, 11, dtype=torch.float64)
    assert _within(_gram_samples(lambda s: BalancedCountSketch(11, 4, seed=s), u), u @ u.T)
    z = BalancedCountSketch(11, 11, seed=3)(u)
    torch.testing.assert_close(z @ z.T, u @ u.T)
    sizes = (BalancedCountSketch(11, 4, seed=0).buckets < 11).sum(dim=1)  # padding entries point at index 11
    assert sorted(sizes.tolist()) == [2, 3, 3, 3]  # balanced buckets


@pytest.mark.parametrize("degree", [1, 2, 3])
def test_explicit_features_reproduce_the_kernel_exactly(degree):
    x = torch.randn(7, 5, dtype=torch.float64)
    features = ExplicitPolynomialFeatures(5, degree)
    assert features.n_components == explicit_dimension(5, degree) == math.comb(5 + degree - 1, degree)
    z = features(x)
    torch.testing.assert_close(z @ z.T, (x @ x.T) ** degree)


@pytest.mark.parametrize("kernel", [PolynomialKernel(2), PolynomialKernel(3, 0.5, 1.0)], ids=str)
def test_map_is_exact_where_e_reaches_the_explicit_dimension(kernel):
    d = 6
    total = math.comb(d + kernel.degree - (kernel.homogeneous), kernel.degree)  # C(d+p-1, p) or C(d+p, p)
    x = torch.randn(9, d, dtype=torch.float64)
    for e in (total, total + 5):
        feature_map = CraftMap(d, e, kernel, seed=0)
        z = feature_map(x)
        assert z.shape == (9, e)
        torch.testing.assert_close(z @ z.T, kernel.gram(x), rtol=1e-10, atol=1e-10)
        assert feature_map.n_exact == total


def test_variance_is_lower_than_tensor_sketch_on_a_fixed_case(rows):
    """Same E, same rows: the mean squared error of the Gram estimate, over seeds, is well below TensorSketch's."""
    kernel = PolynomialKernel(3)
    x = torch.nn.functional.normalize(
        torch.rand(6, 16, dtype=torch.float64, generator=torch.Generator().manual_seed(1)), dim=1
    )
    exact = kernel.gram(x)

    def mse(make):
        return float(((_gram_samples(make, x, 120) - exact) ** 2).mean())

    ours = mse(lambda s: CraftMap(16, 48, kernel, seed=s))
    ctr = mse(lambda s: CraftMap(16, 48, kernel, up="ctr", seed=s))
    tensor_sketch = mse(lambda s: TensorSketch(16, 48, kernel, seed=s))
    assert ours < 0.5 * tensor_sketch and ctr < 0.7 * tensor_sketch, (ours, ctr, tensor_sketch)


def test_plan_keeps_low_degrees_exact_and_spends_every_output():
    kernel = PolynomialKernel(3, 1.0, 1.0)
    plan = plan_degrees(kernel, 64, 512, 4.0)
    assert plan.constant == 1.0 and not plan.augmented
    degrees = {b.degree: b for b in plan.blocks}
    assert degrees[1].kind == "explicit" and degrees[1].n_components == 64
    assert degrees[2].kind == "explicit-down" and degrees[3].kind == "ctr-down"
    assert 1 + sum(b.n_components for b in plan.blocks) + plan.n_padding == 512 and plan.n_padding == 0
    # no output moves profitably between the two sampled degrees: the greedy split is at a (discrete) optimum
    a2, a3 = degrees[2], degrees[3]

    def cost(e2, e3):
        v2 = block_variance(a2.kind, 2, e2, a2.n_components_up)
        v3 = block_variance(a3.kind, 3, e3, round(4.0 * e3))
        return a2.coefficient**2 * v2 + a3.coefficient**2 * v3

    here = cost(a2.n_components, a3.n_components)
    assert here <= cost(a2.n_components - 8, a3.n_components + 8) and here <= cost(
        a2.n_components + 8, a3.n_components - 8
    )


def test_too_few_outputs_for_a_split_fall_back_to_one_homogeneous_term():
    plan = plan_degrees(PolynomialKernel(3, 1.0, 1.0), 10, 3, 4.0)
    assert plan.augmented and len(plan.blocks) == 1 and plan.constant == 0


@pytest.mark.parametrize("kernel", [PolynomialKernel(3), PolynomialKernel(3, 1.0, 1.0)], ids=str)
def test_float32_stays_float32_and_agrees_with_float64(kernel):
    feature_map = CraftMap(20, 64, kernel, seed=0)
    x = torch.nn.functional.normalize(torch.rand(30, 20, dtype=torch.float64), dim=1)
    z64, z32 = feature_map(x), feature_map(x.float())
    assert (z64.dtype, z32.dtype, z64.shape) == (torch.float64, torch.float32, (30, 64))
    torch.testing.assert_close(z32.double(), z64, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(CraftMap(20, 64, kernel, seed=0, batch_size=7)(x), z64)  # batching changes nothing


def test_bad_down_projection_for_the_default_map_raises():
    with pytest.raises(ValueError, match="count sketch or an SRHT"):
        CraftMap(10, 8, PolynomialKernel(2), down="gaussian")
    with pytest.raises(ValueError, match="pass down='auto'"):
        CraftMap(10, 8, PolynomialKernel(2), up="ts", down="countsketch")
