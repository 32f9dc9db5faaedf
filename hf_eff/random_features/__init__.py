"""Random feature maps for polynomial kernels and the one-pass ECOC ridge learner (torch only, no transformers).

- :class:`RandomMaclaurin`, :class:`TensorSketch`: the classic maps (Kar & Karnick 2012; Pham & Pagh 2013).
- :class:`SubsampledRandomizedHadamard`, :class:`GaussianProjection`: JL down-projections; :func:`fwht` is the
  batched O(m log m) Walsh–Hadamard transform behind SRHT.
- :class:`CraftMap`: up-project to D, down-project to E < D (Hamid et al., ICML 2014); by default per Maclaurin
  term, with exact monomials (:class:`ExplicitPolynomialFeatures`) or complex-to-real TensorSRHT features
  (:class:`ComplexTensorSRHT`, Wacker et al., JMLR 2024) compressed by a :class:`BalancedCountSketch`, the outputs
  split across degrees by :func:`plan_degrees`.
- :class:`OnePassClassifier`, :class:`NormalEquations`: single-pass ridge onto error-correcting output codes.

The scikit-learn transformer :class:`~hf_eff.random_features.sampler.CraftMapsSampler` lives in ``.sampler``.
"""

from hf_eff.random_features.base import RandomFeatureMap
from hf_eff.random_features.craftmaps import CraftMap, make_polynomial_map
from hf_eff.random_features.degree_split import plan_degrees
from hf_eff.random_features.explicit import ExplicitPolynomialFeatures, explicit_dimension
from hf_eff.random_features.hadamard import fwht, hadamard_matrix, next_power_of_two
from hf_eff.random_features.kernels import PolynomialKernel, relative_gram_error
from hf_eff.random_features.maclaurin import RandomMaclaurin
from hf_eff.random_features.projections import BalancedCountSketch, GaussianProjection, SubsampledRandomizedHadamard
from hf_eff.random_features.ridge import (
    NormalEquations,
    OnePassClassifier,
    code_logits,
    iter_batches,
    make_code_matrix,
)
from hf_eff.random_features.tensor_sketch import TensorSketch
from hf_eff.random_features.tensor_srht import ComplexTensorSRHT


__all__ = [
    "BalancedCountSketch",
    "ComplexTensorSRHT",
    "CraftMap",
    "ExplicitPolynomialFeatures",
    "GaussianProjection",
    "NormalEquations",
    "OnePassClassifier",
    "PolynomialKernel",
    "RandomFeatureMap",
    "RandomMaclaurin",
    "SubsampledRandomizedHadamard",
    "TensorSketch",
    "code_logits",
    "explicit_dimension",
    "fwht",
    "hadamard_matrix",
    "iter_batches",
    "make_code_matrix",
    "make_polynomial_map",
    "next_power_of_two",
    "plan_degrees",
    "relative_gram_error",
]
