"""The fused CRAFTMap path against a reference written straight from the stored buffers.

The fast path (complex-interleaved projection, in-place products, every scale and sign folded into one weight, a
scatter into the count-sketch buckets, blocks writing into one output) must give the same features as the plain
definitions: CtR features [Re z, Im z] / sqrt(K) from the ``projection`` buffer, the exact monomials from the
``monomials`` / ``weights`` buffers, and a count sketch that sums the signed coordinates listed in ``buckets``.
"""

import math

import pytest
import torch

from hf_eff.random_features import CraftMap, PolynomialKernel
from hf_eff.random_features.craftmaps import DegreeSketch
from hf_eff.random_features.degree_split import DegreeBlock
from hf_eff.random_features.explicit import ExplicitPolynomialFeatures
from hf_eff.random_features.projections import BalancedCountSketch
from hf_eff.random_features.tensor_srht import ComplexTensorSRHT


def reference_ctr(up: ComplexTensorSRHT, x: torch.Tensor) -> torch.Tensor:
    d, k, e = up.n_features_in, up.n_complex, up.n_components
    w = up.projection.double().view(d, up.degree, 2, k)
    z = torch.ones(x.shape[0], k, dtype=torch.complex128)
    for j in range(up.degree):
        z = z * torch.complex(x @ w[:, j, 0], x @ w[:, j, 1])
    out = torch.cat([z.real, z.imag[:, : e - k]], dim=1) / math.sqrt(k)
    if e % 2:
        out[:, k - 1] *= math.sqrt(2)
    return out


def reference_explicit(up: ExplicitPolynomialFeatures, x: torch.Tensor) -> torch.Tensor:
    columns = [up.weights[i] * x[:, up.monomials[i]].prod(dim=1) for i in range(up.n_components)]
    return torch.stack(columns, dim=1)


def reference_count_sketch(down: BalancedCountSketch, u: torch.Tensor) -> torch.Tensor:
    signed = u * down.signs.double()
    columns = [signed[:, row[row < down.n_features_in]].sum(dim=1) for row in down.buckets]
    return torch.stack(columns, dim=1)


def reference_block(block: DegreeSketch, x: torch.Tensor) -> torch.Tensor:
    up = reference_ctr(block.up, x) if block.block.kind == "ctr-down" else reference_explicit(block.up, x)
    return block.scale * (up if block.down is None else reference_count_sketch(block.down, up))


BLOCKS = {
    "ctr-even-degree-3": DegreeBlock(3, 3.0, 20, "ctr-down", 96),
    "ctr-odd-degree-2": DegreeBlock(2, 1.0, 7, "ctr-down", 45),  # the last imaginary part is dropped
    "ctr-beyond-one-hadamard-block": DegreeBlock(3, 1.0, 30, "ctr-down", 70),  # 35 complex > 16 rows per block
    "explicit-down": DegreeBlock(2, 2.0, 11, "explicit-down", 78),
    "explicit": DegreeBlock(2, 1.0, 78, "explicit", 78),
}


@pytest.mark.parametrize("name", sorted(BLOCKS))
def test_fused_block_equals_the_reference_definition(name):
    x = torch.randn(9, 12, dtype=torch.float64)
    block = DegreeSketch(12, BLOCKS[name], seed=3)
    torch.testing.assert_close(block.transform_batch(x), reference_block(block, x), rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(
        block.transform_batch(x.float()).double(), reference_block(block, x), rtol=1e-4, atol=1e-5
    )


def test_balanced_count_sketch_scatter_equals_gather_and_sum():
    down = BalancedCountSketch(37, 8, seed=1)  # 37 / 8: buckets of 4 and 5
    u = torch.randn(5, 37, dtype=torch.float64)
    torch.testing.assert_close(down(u), reference_count_sketch(down, u), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(
    "kernel, n_components",
    [(PolynomialKernel(3), 40), (PolynomialKernel(3, 0.5, 1.0), 90), (PolynomialKernel(2, 1.0, 1.0), 200)],
    ids=["homogeneous", "split", "padded"],
)
def test_map_is_its_blocks_side_by_side(kernel, n_components):
    feature_map = CraftMap(12, n_components, kernel, seed=5, batch_size=4)
    x = torch.randn(11, 12, dtype=torch.float64)
    scaled = x * math.sqrt(kernel.gamma)
    parts = [torch.full((11, 1), math.sqrt(feature_map.plan.constant), dtype=torch.float64)]
    parts = parts if feature_map.plan.constant > 0 else []
    parts += [reference_block(block, scaled) for block in feature_map.blocks]
    parts.append(torch.zeros(11, feature_map.plan.n_padding, dtype=torch.float64))
    torch.testing.assert_close(feature_map(x), torch.cat(parts, dim=1), rtol=1e-10, atol=1e-12)


def test_cached_layouts_follow_in_place_buffer_writes():
    """load_state_dict / from_pretrained copy into the buffers: the fast path must not keep stale derived copies."""
    kernel = PolynomialKernel(3, 1.0, 1.0)
    source, target = CraftMap(12, 60, kernel, seed=0), CraftMap(12, 60, kernel, seed=1)
    x = torch.randn(6, 12, dtype=torch.float64)
    target(x), target(x.float())  # fill the caches of both dtypes
    target.load_state_dict(source.state_dict())
    torch.testing.assert_close(target(x), source(x), rtol=0, atol=0)
    torch.testing.assert_close(target(x.float()), source(x.float()), rtol=0, atol=0)


def test_tensor_srht_sampling_draws_permuted_hadamard_rows_with_complex_signs():
    up = ComplexTensorSRHT(8, 64, 2, seed=0)  # 32 complex features: 4 blocks of 8 per factor
    w = up.projection.view(8, 2, 2, 32) * math.sqrt(2)  # (d, factor, re/im, k), entries +-1
    torch.testing.assert_close(w.abs(), torch.ones_like(w))
    for j in range(2):
        for part in range(2):
            for b in range(4):
                rows = w[:, j, part, 8 * b : 8 * b + 8].T  # 8 rows H_k * signs of one block
                torch.testing.assert_close(rows @ rows.T, 8 * torch.eye(8))  # orthogonal: permuted Hadamard rows
    assert not torch.equal(w[:, 0], w[:, 1])  # independent factors


def test_cached_layouts_are_not_pickled_and_follow_dtype_moves():
    import pickle

    feature_map = CraftMap(12, 60, PolynomialKernel(3, 1.0, 1.0), seed=0)
    x = torch.randn(6, 12, dtype=torch.float64)
    z = feature_map(x)
    copy = pickle.loads(pickle.dumps(feature_map))
    assert all(not module.__dict__.get("_derived") for module in copy.modules())
    torch.testing.assert_close(copy(x), z, rtol=0, atol=0)
    torch.testing.assert_close(feature_map.double()(x), z, rtol=0, atol=0)  # .double(): caches rebuilt, same map
