"""CraftMapsSampler as a scikit-learn citizen: check_estimator, Pipeline, clone, pickle, sparse input, errors."""

import inspect
import pickle

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.base import clone
from sklearn.datasets import load_digits
from sklearn.kernel_approximation import PolynomialCountSketch
from sklearn.linear_model import RidgeClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MinMaxScaler, Normalizer
from sklearn.utils.estimator_checks import check_estimator

from hf_eff import CraftMapsSampler


def test_passes_scikit_learn_check_estimator():
    results = check_estimator(CraftMapsSampler(n_components=8, random_state=0), on_fail=None)
    failed = {r["check_name"]: r["exception"] for r in results if r["status"] == "failed"}
    assert not failed, failed
    assert len(results) > 30


def test_parameter_names_match_polynomial_count_sketch():
    ours = set(inspect.signature(CraftMapsSampler).parameters)
    theirs = set(inspect.signature(PolynomialCountSketch).parameters)
    assert theirs <= ours


def test_works_in_a_pipeline_and_classifies_digits():
    x, y = load_digits(return_X_y=True)
    model = make_pipeline(
        MinMaxScaler(),
        Normalizer(),
        CraftMapsSampler(degree=3, coef0=1.0, n_components=256, random_state=0),
        RidgeClassifier(alpha=1e-3),
    )
    model.fit(x[::2], y[::2])
    assert model.score(x[1::2], y[1::2]) > 0.95


def test_clone_and_pickle_round_trips():
    x = np.random.default_rng(0).random((20, 6))
    sampler = CraftMapsSampler(degree=3, n_components=16, up="rm", down="gaussian", random_state=4).fit(x)
    restored = pickle.loads(pickle.dumps(sampler))
    np.testing.assert_array_equal(restored.transform(x), sampler.transform(x))
    cloned = clone(sampler)
    assert cloned.get_params() == sampler.get_params() and not hasattr(cloned, "feature_map_")
    np.testing.assert_array_equal(cloned.fit(x).transform(x), sampler.transform(x))  # same random_state


def test_sparse_input_equals_dense_input_and_dtype_is_preserved():
    x = sp.random(30, 12, density=0.3, random_state=0, format="csr")
    sampler = CraftMapsSampler(n_components=16, batch_size=7, random_state=0).fit(x)
    np.testing.assert_allclose(sampler.transform(x), sampler.transform(x.toarray()))
    assert sampler.transform(x.toarray().astype(np.float32)).dtype == np.float32
    assert sampler.transform(x.toarray()).dtype == np.float64


def test_feature_names_out():
    sampler = CraftMapsSampler(n_components=3, random_state=0).fit(np.ones((2, 4)))
    assert list(sampler.get_feature_names_out()) == ["craftmapssampler0", "craftmapssampler1", "craftmapssampler2"]


def test_bad_parameters_and_inputs_raise():
    x = np.random.default_rng(0).random((5, 4))
    with pytest.raises(ValueError, match="degree"):
        CraftMapsSampler(degree=0).fit(x)
    with pytest.raises(ValueError, match="must be smaller than n_components_up"):
        CraftMapsSampler(n_components=64, n_components_up=32).fit(x)
    sampler = CraftMapsSampler(n_components=8, random_state=0).fit(x)
    with pytest.raises(ValueError, match="features"):
        sampler.transform(np.ones((2, 5)))
    with pytest.raises(ValueError, match="NaN|infinity"):
        sampler.transform(np.full((2, 4), np.nan))


def test_old_module_path_warns_and_gives_the_same_class(monkeypatch):
    import importlib
    import sys

    from hf_eff.random_features.sampler import CraftMapsSampler as moved

    monkeypatch.delitem(sys.modules, "hf_eff.random_features.sklearn", raising=False)
    with pytest.warns(DeprecationWarning, match="hf_eff.random_features.sampler"):
        old = importlib.import_module("hf_eff.random_features.sklearn")
    assert old.CraftMapsSampler is moved is CraftMapsSampler
