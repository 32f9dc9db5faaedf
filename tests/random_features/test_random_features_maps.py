"""Feature maps: the Hadamard transform, unbiasedness, error vs dimension, CRAFTMaps' gain, determinism, errors."""

import statistics

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from sklearn.preprocessing import MinMaxScaler, Normalizer

from hf_eff.random_features import (
    CraftMap,
    GaussianProjection,
    PolynomialKernel,
    RandomMaclaurin,
    SubsampledRandomizedHadamard,
    TensorSketch,
    fwht,
    hadamard_matrix,
    relative_gram_error,
)


@pytest.fixture(scope="module")
def digits() -> torch.Tensor:
    """200 real digits, MinMax-scaled and l2-normalised as scikit-learn recommends for polynomial sketches."""
    x = load_digits().data
    x = Normalizer().fit_transform(MinMaxScaler().fit_transform(x))
    rows = np.random.default_rng(0).choice(len(x), 200, replace=False)
    return torch.tensor(x[rows])


# ----------------------------------------------------------------------------------------------- Hadamard


@pytest.mark.parametrize("m", [1, 2, 4, 64, 128, 2048, 4096])
def test_fwht_matches_dense_hadamard_product(m):
    x = torch.randn(3, 2, m, dtype=torch.float64)
    torch.testing.assert_close(fwht(x), x @ hadamard_matrix(m, torch.float64), rtol=1e-12, atol=1e-9)


def test_fwht_follows_the_sylvester_recursion_beyond_dense_sizes():
    """H_2m [a, b] = [H a + H b, H a - H b]: checks the three-pass case (2^13) without a 2^26-entry matrix."""
    x = torch.randn(4, 8192, dtype=torch.float64)
    a, b = fwht(x[:, :4096]), fwht(x[:, 4096:])
    torch.testing.assert_close(fwht(x), torch.cat([a + b, a - b], dim=1))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_fwht_is_its_own_inverse_up_to_scale(dtype):
    x = torch.randn(5, 1024, dtype=dtype)
    torch.testing.assert_close(fwht(fwht(x)), 1024 * x, rtol=1e-4, atol=1e-3)
    torch.testing.assert_close(fwht(fwht(x, normalized=True), normalized=True), x, rtol=1e-4, atol=1e-5)
    assert fwht(x).dtype == dtype


def test_fwht_rejects_bad_input():
    with pytest.raises(ValueError, match="power of two"):
        fwht(torch.randn(2, 12))
    with pytest.raises(TypeError, match="floating-point"):
        fwht(torch.ones(2, 8, dtype=torch.int64))


# ------------------------------------------------------------------------------------------- unbiasedness

KERNELS = [PolynomialKernel(2, 1.0, 0.0), PolynomialKernel(3, 0.7, 0.0), PolynomialKernel(3, 1.0, 1.0)]


def _maps(kernel: PolynomialKernel, d: int):
    yield "rm", lambda s: RandomMaclaurin(d, 64, kernel, h01=False, seed=s)
    yield "ts", lambda s: TensorSketch(d, 64, kernel, seed=s)
    yield "craftmap-ts-srht", lambda s: CraftMap(d, 32, kernel, 128, up="ts", seed=s)
    yield "craftmap-rm-gauss", lambda s: CraftMap(d, 32, kernel, 128, up="rm", down="gaussian", h01=False, seed=s)
    if not kernel.homogeneous:
        yield "rm-h01", lambda s: RandomMaclaurin(d, 64, kernel, h01=True, seed=s)
        yield "craftmap-rm-h01", lambda s: CraftMap(d, 32, kernel, 128, up="rm", h01=True, seed=s)


@pytest.mark.parametrize("kernel", KERNELS, ids=str)
def test_inner_products_are_unbiased_kernel_estimates(kernel):
    """Mean over 200 seeds of Z Z^T is within 4 standard errors of the exact kernel matrix (every entry)."""
    torch.manual_seed(1)
    x = torch.nn.functional.normalize(torch.randn(4, 6, dtype=torch.float64), dim=1)
    exact = kernel.gram(x)
    for name, make in _maps(kernel, 6):
        grams = torch.stack([(lambda z: z @ z.T)(make(seed)(x)) for seed in range(200)])
        mean, sem = grams.mean(0), grams.std(0) / 200**0.5
        assert ((mean - exact).abs() <= 4 * sem + 1e-9).all(), f"{name}: mean {mean} vs exact {exact}"


@pytest.mark.parametrize("projection", [SubsampledRandomizedHadamard, GaussianProjection])
def test_down_projections_preserve_inner_products_in_expectation(projection):
    u = torch.randn(3, 40, dtype=torch.float64)
    grams = torch.stack([(lambda z: z @ z.T)(projection(40, 16, seed=s)(u)) for s in range(400)])
    mean, sem = grams.mean(0), grams.std(0) / 400**0.5
    assert ((mean - u @ u.T).abs() <= 4 * sem + 1e-9).all()


def test_srht_keeping_every_coordinate_is_an_isometry():
    u = torch.randn(5, 64, dtype=torch.float64)
    z = SubsampledRandomizedHadamard(64, 64, seed=3)(u)
    torch.testing.assert_close(z @ z.T, u @ u.T)


# ------------------------------------------------------------------------------------ error vs dimension


def _median_error(make, x, kernel, seeds=range(10)):
    exact = kernel.gram(x)
    return statistics.median(relative_gram_error(make(seed)(x), exact) for seed in seeds)


@pytest.mark.parametrize("name", ["rm", "ts", "craftmap"])
def test_gram_error_falls_as_the_dimension_grows(digits, name):
    kernel = PolynomialKernel(2)
    builders = {
        "rm": lambda e: lambda s: RandomMaclaurin(64, e, kernel, seed=s),
        "ts": lambda e: lambda s: TensorSketch(64, e, kernel, seed=s),
        "craftmap": lambda e: lambda s: CraftMap(64, e, kernel, seed=s),
    }
    errors = [_median_error(builders[name](e), digits, kernel) for e in (32, 128, 512)]
    assert errors[0] > errors[1] > errors[2], errors


def test_craftmap_error_falls_as_the_up_dimension_grows(digits):
    kernel = PolynomialKernel(3)
    small = _median_error(lambda s: CraftMap(64, 64, kernel, 96, seed=s), digits, kernel)
    large = _median_error(lambda s: CraftMap(64, 64, kernel, 1024, seed=s), digits, kernel)
    assert large < small


@pytest.mark.parametrize("degree", [2, 3])
@pytest.mark.parametrize("up", ["ts", "rm"])
def test_craftmap_beats_rm_and_ts_at_the_same_output_dimension(digits, degree, up):
    """The paper's claim on real data: at equal E, up (4E) + SRHT down beats both single-stage maps."""
    kernel = PolynomialKernel(degree)
    e = 128
    craft = _median_error(lambda s: CraftMap(64, e, kernel, up=up, seed=s), digits, kernel)
    rm = _median_error(lambda s: RandomMaclaurin(64, e, kernel, seed=s), digits, kernel)
    ts = _median_error(lambda s: TensorSketch(64, e, kernel, seed=s), digits, kernel)
    assert craft < min(rm, ts), (craft, rm, ts)


def test_exact_low_degree_terms_help_inhomogeneous_kernels(digits):
    kernel = PolynomialKernel(3, 1.0, 1.0)
    auto = _median_error(lambda s: CraftMap(64, 256, kernel, up="auto", seed=s), digits, kernel)
    ts = _median_error(lambda s: CraftMap(64, 256, kernel, up="ts", seed=s), digits, kernel)
    rm = _median_error(lambda s: CraftMap(64, 256, kernel, up="rm", seed=s), digits, kernel)
    plan = CraftMap(64, 256, kernel, up="auto").plan
    assert plan.constant == 1 and [b.kind for b in plan.blocks][0] == "explicit"  # 1 + 64 exact features
    assert CraftMap(64, 256, kernel, up="auto", h01=False).plan.augmented  # h01=False: one homogeneous term
    assert auto < min(ts, rm), (auto, ts, rm)


@pytest.mark.parametrize("coef0", [0.0, 2.0])
def test_tensor_sketch_matrix_product_route_equals_the_fft_route(coef0, monkeypatch):
    sketch = TensorSketch(12, 256, PolynomialKernel(3, 0.5, coef0), seed=0)
    assert sketch.uses_dense_dft()  # narrow input: the single matrix product is used
    x = torch.randn(9, 12, dtype=torch.float64)
    dense = sketch(x)
    monkeypatch.setattr(sketch, "uses_dense_dft", lambda: False)
    torch.testing.assert_close(dense, sketch(x), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("coef0", [0.0, 1.5])
def test_tensor_sketch_equals_scikit_learn_given_the_same_hashes(coef0):
    """Our TensorSketch is scikit-learn's PolynomialCountSketch algorithm: copy its hashes, get its features."""
    from sklearn.kernel_approximation import PolynomialCountSketch

    x = np.random.default_rng(0).random((7, 9))
    reference = PolynomialCountSketch(degree=3, gamma=0.5, coef0=coef0, n_components=32, random_state=0).fit(x)
    ours = TensorSketch(9, 32, PolynomialKernel(3, 0.5, coef0))
    ours(torch.from_numpy(x))  # builds the cached DFT matrix, which the in-place copies below must invalidate
    offsets = torch.arange(3).unsqueeze(1) * 32
    ours.index_hash.copy_((torch.from_numpy(reference.indexHash_) + offsets).flatten())
    ours.sign_hash.copy_(torch.from_numpy(reference.bitHash_).flatten().to(torch.int8))
    np.testing.assert_allclose(ours(torch.from_numpy(x)).numpy(), reference.transform(x), rtol=1e-9, atol=1e-12)


def test_tensor_sketch_cache_follows_dtype_changes_and_is_not_pickled():
    import pickle

    sketch = TensorSketch(8, 64, PolynomialKernel(2), seed=0)
    x = torch.randn(3, 8)
    z32 = sketch(x)
    torch.testing.assert_close(sketch.double()(x.double()).float(), z32, rtol=1e-5, atol=1e-6)
    assert pickle.loads(pickle.dumps(sketch))._derived == {}


# ---------------------------------------------------------------------------- determinism, dtypes, batching


@pytest.mark.parametrize("up", ["ts", "rm"])
def test_transform_is_deterministic_and_batch_size_invariant(up):
    kernel = PolynomialKernel(3, 0.5, 1.0)
    x = torch.randn(50, 10, dtype=torch.float64)
    whole = CraftMap(10, 32, kernel, 128, up=up, seed=7)(x)
    torch.testing.assert_close(CraftMap(10, 32, kernel, 128, up=up, seed=7, batch_size=7)(x), whole)
    assert not torch.allclose(CraftMap(10, 32, kernel, 128, up=up, seed=8)(x), whole)


def test_float32_and_float64_agree_and_keep_their_dtype():
    kernel = PolynomialKernel(2, 1.0, 1.0)
    feature_map = CraftMap(10, 32, kernel, 128, up="rm", seed=0)
    x = torch.nn.functional.normalize(torch.randn(20, 10, dtype=torch.float64), dim=1)
    z64, z32 = feature_map(x), feature_map(x.float())
    assert (z64.dtype, z32.dtype) == (torch.float64, torch.float32)
    torch.testing.assert_close(z32.double(), z64, rtol=1e-4, atol=1e-5)


def test_randomness_is_stored_in_persistent_buffers():
    feature_map = CraftMap(10, 32, PolynomialKernel(2), 128, up="ts", down="srht", seed=0)
    keys = set(feature_map.state_dict())
    assert keys == {"up.index_hash", "up.sign_hash", "down.signs", "down.kept"}


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_gpu_matches_cpu():
    kernel = PolynomialKernel(3, 1.0, 1.0)
    x = torch.randn(64, 20)
    for up in ("ts", "rm", "auto"):  # "auto": the fused per-degree blocks (cached layouts follow .cuda())
        feature_map = CraftMap(20, 64, kernel, 256, up=up, seed=0)
        cpu = feature_map(x)
        torch.testing.assert_close(feature_map.cuda()(x.cuda()).cpu(), cpu, rtol=1e-4, atol=1e-4)


# -------------------------------------------------------------------------------------------------- errors


def test_bad_kernel_parameters_raise():
    with pytest.raises(ValueError, match="degree must be >= 1"):
        PolynomialKernel(0)
    with pytest.raises(TypeError, match="degree must be an int"):
        PolynomialKernel(2.5)
    with pytest.raises(ValueError, match="gamma"):
        PolynomialKernel(2, gamma=0.0)
    with pytest.raises(ValueError, match="coef0"):
        PolynomialKernel(2, coef0=-1.0)


def test_output_dimension_larger_than_up_dimension_raises():
    with pytest.raises(ValueError, match="must be smaller than n_components_up"):
        CraftMap(10, 64, PolynomialKernel(2), n_components_up=32)
    with pytest.raises(ValueError, match="up must be one of"):
        CraftMap(10, 8, PolynomialKernel(2), up="fourier")
    with pytest.raises(ValueError, match="down must be one of"):
        CraftMap(10, 8, PolynomialKernel(2), down="fastfood")


def test_h01_without_room_for_random_features_raises():
    with pytest.raises(ValueError, match="leaves no random features"):
        RandomMaclaurin(64, 60, PolynomialKernel(2, coef0=1.0), h01=True)
    with pytest.raises(ValueError, match="leaves no compressed features"):
        CraftMap(64, 60, PolynomialKernel(2, coef0=1.0), 512, up="rm", h01=True)


def test_non_finite_input_and_wrong_feature_count_raise():
    feature_map = TensorSketch(5, 16, PolynomialKernel(2))
    with pytest.raises(ValueError, match="NaN or infinite"):
        feature_map(torch.tensor([[1.0, float("nan"), 0.0, 0.0, 0.0]]))
    with pytest.raises(ValueError, match=r"shape \(n_samples, 5\)"):
        feature_map(torch.randn(3, 4))
    with pytest.raises(TypeError, match="floating-point"):
        feature_map(torch.ones(3, 5, dtype=torch.int64))
