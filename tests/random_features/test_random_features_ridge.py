"""The one-pass ECOC ridge learner: equals closed-form ridge, streams in chunks, merges shards, reads datasets."""

import numpy as np
import pytest
import torch

from hf_eff.random_features import NormalEquations, OnePassClassifier, iter_batches, make_code_matrix


def _closed_form_ridge(z: np.ndarray, y: np.ndarray, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """Ridge with an unpenalised intercept, the textbook way: centre, solve, recover the bias."""
    z_mean, y_mean = z.mean(0), y.mean(0)
    zc, yc = z - z_mean, y - y_mean
    w = np.linalg.solve(zc.T @ zc + alpha * np.eye(z.shape[1]), zc.T @ yc)
    return w, y_mean - z_mean @ w


@pytest.fixture
def problem():
    rng = np.random.default_rng(0)
    z = rng.normal(size=(500, 12))
    labels = rng.integers(0, 4, size=500)
    return z, labels


@pytest.mark.parametrize("code", ["ovr", "random"])
def test_one_pass_solution_equals_closed_form_ridge(problem, code):
    z, labels = problem
    classifier = OnePassClassifier(12, 4, code=code, alpha=0.3).partial_fit(torch.tensor(z), torch.tensor(labels))
    classifier.solve()
    targets = classifier.code_matrix.numpy()[labels]
    w, b = _closed_form_ridge(z, targets, 0.3)
    np.testing.assert_allclose(classifier.weights.numpy(), w, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(classifier.bias.numpy(), b, rtol=1e-8, atol=1e-10)


def test_streaming_in_chunks_gives_the_same_weights(problem):
    z, labels = (torch.tensor(a) for a in problem)
    whole = OnePassClassifier(12, 4, alpha=0.1).partial_fit(z, labels).solve()
    chunked = OnePassClassifier(12, 4, alpha=0.1)
    for features, batch_labels in iter_batches((z, labels), batch_size=37):
        chunked.partial_fit(features, batch_labels)
    chunked.solve()
    torch.testing.assert_close(chunked.weights, whole.weights, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(chunked.bias, whole.bias, rtol=1e-10, atol=1e-12)


def test_merged_shards_equal_one_pass_over_everything(problem):
    z, labels = problem
    targets = torch.tensor(make_code_matrix(4).numpy()[labels])
    z = torch.tensor(z)
    everything = NormalEquations(12, 4).update(z, targets)
    shard = (
        NormalEquations(12, 4)
        .update(z[:200], targets[:200])
        .merge(NormalEquations(12, 4).update(z[200:], targets[200:]))
    )
    assert shard.n_samples == everything.n_samples == 500
    for a, b in zip(shard.solve(0.5), everything.solve(0.5)):
        torch.testing.assert_close(a, b)


def test_normal_equations_state_round_trips(problem):
    z, labels = problem
    equations = NormalEquations(12, 3).update(torch.tensor(z), torch.randn(500, 3, dtype=torch.float64))
    restored = NormalEquations(12, 3)
    restored.load_state_dict(equations.state_dict())
    for a, b in zip(restored.solve(1.0), equations.solve(1.0)):
        torch.testing.assert_close(a, b)


def test_singular_system_without_penalty_still_solves():
    z = torch.ones(10, 3, dtype=torch.float64)  # rank 1 (and collinear with the intercept)
    w, b = NormalEquations(3, 1).update(z, torch.ones(10, 1, dtype=torch.float64)).solve(0.0)
    assert torch.isfinite(w).all() and torch.isfinite(b).all()
    torch.testing.assert_close(z @ w + b, torch.ones(10, 1, dtype=torch.float64))


def test_classifier_separates_separable_classes():
    rng = np.random.default_rng(1)
    centres = rng.normal(scale=5, size=(5, 8))
    labels = rng.integers(0, 5, 400)
    z = torch.tensor(centres[labels] + rng.normal(size=(400, 8)))
    classifier = OnePassClassifier(8, 5, code="random", alpha=1e-3).partial_fit(z, torch.tensor(labels)).solve()
    assert (classifier.predict(z).numpy() == labels).mean() > 0.95


def test_code_matrices():
    ovr = make_code_matrix(5, "ovr")
    torch.testing.assert_close(ovr, 2 * torch.eye(5, dtype=torch.float64) - 1)
    random = make_code_matrix(10, "random", seed=3)
    assert random.shape == (10, 34)  # ceil(10 log2 10)
    assert set(random.unique().tolist()) == {-1.0, 1.0}
    hamming = (random.shape[1] - random @ random.T) / 2
    assert hamming.fill_diagonal_(99).min() >= 5  # codewords far apart
    assert (random.sum(0).abs() < random.shape[0]).all()  # no constant column
    torch.testing.assert_close(make_code_matrix(10, "random", seed=3), random)
    binary = make_code_matrix(2, "random", seed=0)  # two classes: every column must still separate them
    assert binary.shape == (2, 10) and (binary[0] != binary[1]).all()


def test_iter_batches_reads_a_datasets_dataset():
    datasets = pytest.importorskip("datasets")
    data = datasets.Dataset.from_dict({"features": np.arange(20.0).reshape(10, 2).tolist(), "label": list(range(10))})
    batches = list(iter_batches(data, batch_size=4))
    assert [len(labels) for _, labels in batches] == [4, 4, 2]
    torch.testing.assert_close(torch.cat([f for f, _ in batches]).double(), torch.arange(20.0).reshape(10, 2).double())


def test_bad_inputs_raise(problem):
    z, labels = problem
    classifier = OnePassClassifier(12, 4)
    with pytest.raises(ValueError, match=r"labels must be in \[0, 3\]"):
        classifier.partial_fit(torch.tensor(z[:5]), torch.tensor([0, 1, 2, 3, 4]))
    with pytest.raises(ValueError, match=r"features must have shape \(n, 12\)"):
        classifier.partial_fit(torch.tensor(z[:5, :3]), torch.tensor(labels[:5]))
    with pytest.raises(ValueError, match="not solved yet"):
        classifier.predict(torch.tensor(z[:5]))
    with pytest.raises(ValueError, match="no samples"):
        classifier.solve()
    with pytest.raises(ValueError, match="alpha"):
        NormalEquations(2, 1).update(torch.ones(2, 2), torch.ones(2, 1)).solve(-1.0)
    with pytest.raises(ValueError, match="code must be one of"):
        make_code_matrix(3, "dense")
    with pytest.raises(ValueError, match="num_classes must be >= 2"):
        make_code_matrix(1)
    with pytest.raises(TypeError, match="data must be"):
        list(iter_batches(42))
