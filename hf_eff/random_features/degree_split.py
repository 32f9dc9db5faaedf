"""How to spend E output features on the Maclaurin terms of (<x, y> + c) ** p: exact where affordable, else by variance.

The kernel is sum_n a_n <x, y>^n with a_n = C(p, n) c^(p - n) (gamma folded into x). Each term gets its own block
of E_n outputs whose inner products estimate <x, y>^n; the blocks are independent, so the variance of the sum is
sum_n a_n^2 V_n(E_n). As in the Optimized Maclaurin method of Wacker, Kanagawa & Filippone (JMLR 2024), the
constant is one exact feature, and the rest of E is split to minimise that sum, with these closed forms for unit-norm
inputs at the worst case x = y (t = <x, y> = 1), so the split needs no data:

- ``explicit``: E_n >= C(d + n - 1, n), the exact monomial features: V = 0.
- ``explicit-down``: the exact features (width m = C(d + n - 1, n)) compressed by a balanced count sketch:
  V = 2 (m - E_n) / ((m - 1) E_n), the JL variance (||u||^2 ||v||^2 + <u, v>^2) / E_n with the
  finite-population factor of sampling without replacement (for an SRHT down-projection m is the padded
  2^ceil(log2 m)). Used for degree 1 and wherever the monomials fit in the up-projection's width.
- ``ctr-down``: a CRAFTMap, complex-to-real TensorSRHT up to D_n = f E_n, then the same down-projection:
  V = (2^(n+1) - 2) / D_n + 2 (D_n - E_n) / ((D_n - 1) E_n) (up-projection error at D_n plus the JL error).

Which degrees are exact is searched over every affordable subset; the remaining budget goes greedily, one output at
a time, to the term with the largest drop in a_n^2 V_n. When E is too small to give every term an output (or the
caller asks for no split) the kernel is treated as the homogeneous (<[x, sqrt(c)], [y, sqrt(c)]>)^p, one block.
"""

import functools
import heapq
import itertools
import math
from dataclasses import dataclass

from hf_eff.random_features.explicit import explicit_dimension
from hf_eff.random_features.hadamard import next_power_of_two
from hf_eff.random_features.kernels import PolynomialKernel


BLOCK_KINDS = ("explicit", "explicit-down", "ctr-down")
DOWN_KINDS = ("countsketch", "srht")
# the widest exact monomial vector worth compressing per row (an SRHT over it costs about one TensorSketch at D = 8192)
EXPLICIT_WIDTH = 8192


@dataclass(frozen=True)
class DegreeBlock:
    """E_n = ``n_components`` outputs for the term ``coefficient`` * <x, y>^``degree``, computed as ``kind``."""

    degree: int
    coefficient: float
    n_components: int
    kind: str
    n_components_up: int  # the width compressed to E_n: the monomial count, or D_n for ctr-down


@dataclass(frozen=True)
class DegreePlan:
    """The blocks of a map, and whether x is first augmented with sqrt(coef0) (the single-block fallback)."""

    down: str  # the JL map of every compressed block: "countsketch" or "srht"
    constant: float  # a_0, emitted exactly as one feature sqrt(a_0) when > 0
    blocks: tuple[DegreeBlock, ...]
    augmented: bool
    n_padding: int  # zero outputs when E exceeds the whole explicit dimension

    def variance(self) -> float:
        return sum(
            b.coefficient**2 * block_variance(b.kind, b.degree, b.n_components, b.n_components_up, self.down)
            for b in self.blocks
        )


def _jl_variance(down: str, width: int, n_out: int) -> float:
    m = next_power_of_two(width) if down == "srht" else width
    return 2.0 * (m - n_out) / (max(m - 1, 1) * n_out)


def block_variance(kind: str, degree: int, n_out: int, width: int, down: str = "countsketch") -> float:
    """The closed-form variance of one block at x = y, ||x|| = 1 (see the module docstring)."""
    if kind == "explicit":
        return 0.0
    if kind == "explicit-down":
        return _jl_variance(down, width, n_out)
    return (2.0 ** (degree + 1) - 2) / width + _jl_variance(down, width, n_out)


def _block_kind(degree, n_features, n_out, up_factor, explicit_up, down) -> tuple[str, int]:
    dim = explicit_dimension(n_features, degree)
    if n_out >= dim:
        return "explicit", dim
    up_width = max(n_out + 1, round(up_factor * n_out))
    if down == "srht":
        up_width = next_power_of_two(up_width)  # the SRHT pads D to 2^k anyway: use them all
    if degree == 1 or (explicit_up and dim <= max(EXPLICIT_WIDTH, up_width)):
        return "explicit-down", dim
    return "ctr-down", up_width


@functools.lru_cache(maxsize=256)
def plan_degrees(
    kernel: PolynomialKernel,
    n_features: int,
    n_components: int,
    up_factor: float,
    explicit_up: bool = True,
    split: bool = True,
    down: str = "countsketch",
) -> DegreePlan:
    """The variance-optimal use of ``n_components`` outputs for ``kernel`` on ``n_features`` inputs."""
    p, c = kernel.degree, kernel.coef0
    coefficients = {n: math.comb(p, n) * c ** (p - n) for n in range(p + 1)}
    terms = [p] if kernel.homogeneous else list(range(1, p + 1))
    constant = 0.0 if kernel.homogeneous else coefficients[0]
    free = n_components - (constant > 0)
    if kernel.homogeneous:
        return _single_block(kernel, n_features, n_components, up_factor, explicit_up, down, augmented=False)
    if not split or free < len(terms):
        return _single_block(kernel, n_features + 1, n_components, up_factor, explicit_up, down, augmented=True)

    dims = {n: explicit_dimension(n_features, n) for n in terms}
    if sum(dims.values()) <= free:  # the whole explicit map fits
        blocks = tuple(DegreeBlock(n, coefficients[n], dims[n], "explicit", dims[n]) for n in terms)
        return DegreePlan(down, constant, blocks, False, free - sum(dims.values()))

    best = None
    for size in range(len(terms) + 1):
        for exact in itertools.combinations(terms, size):
            sampled = [n for n in terms if n not in exact]
            budget = free - sum(dims[n] for n in exact)
            if not sampled or budget < len(sampled):
                continue
            sizes = _greedy_split(sampled, budget, coefficients, n_features, dims, up_factor, explicit_up, down)
            blocks = [DegreeBlock(n, coefficients[n], dims[n], "explicit", dims[n]) for n in exact]
            for n in sampled:
                kind, width = _block_kind(n, n_features, sizes[n], up_factor, explicit_up, down)
                blocks.append(DegreeBlock(n, coefficients[n], sizes[n], kind, width))
            padding = free - sum(b.n_components for b in blocks)
            plan = DegreePlan(down, constant, tuple(sorted(blocks, key=lambda b: b.degree)), False, padding)
            if best is None or plan.variance() < best.variance():
                best = plan
    return best


def _single_block(kernel, n_features, n_components, up_factor, explicit_up, down, augmented) -> DegreePlan:
    p = kernel.degree
    kind, width = _block_kind(p, n_features, n_components, up_factor, explicit_up, down)
    n_out = min(n_components, width) if kind == "explicit" else n_components
    block = DegreeBlock(p, 1.0, n_out, kind, width)
    return DegreePlan(down, 0.0, (block,), augmented, n_components - n_out)


def _greedy_split(sampled, budget, coefficients, n_features, dims, up_factor, explicit_up, down) -> dict[int, int]:
    """One output at a time to the term whose weighted variance drops most (the variances are convex in E_n)."""

    def cost(n, size):
        kind, width = _block_kind(n, n_features, size, up_factor, explicit_up, down)
        return coefficients[n] ** 2 * block_variance(kind, n, size, width, down)

    sizes = dict.fromkeys(sampled, 1)
    heap = [(cost(n, 2) - cost(n, 1), n) for n in sampled if dims[n] > 2]
    heapq.heapify(heap)
    for _ in range(budget - len(sampled)):
        if not heap:
            break
        _, n = heapq.heappop(heap)
        sizes[n] += 1
        if sizes[n] + 1 < dims[n]:  # reaching dims[n] would make the term exact: that is another subset's job
            heapq.heappush(heap, (cost(n, sizes[n] + 1) - cost(n, sizes[n]), n))
    return sizes
