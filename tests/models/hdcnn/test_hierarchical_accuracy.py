"""The hierarchical_accuracy evaluate metric (offline, from the package)."""

import pytest


@pytest.fixture(scope="module")
def metric():
    import hf_eff.metrics

    return hf_eff.metrics.load("hierarchical_accuracy")


def test_partition_and_overlapping_hierarchies(metric):
    predictions, references = [0, 1, 3, 2], [0, 2, 3, 0]
    result = metric.compute(predictions=predictions, references=references, fine_to_coarse=[0, 1, 1, 2])
    assert result == {"accuracy": 0.5, "coarse_accuracy": 0.75}
    overlapping = metric.compute(predictions=predictions, references=references, coarse_members=[[0, 2], [1, 2, 3]])
    assert overlapping == {"accuracy": 0.5, "coarse_accuracy": 1.0}
    assert metric.compute(predictions=predictions, references=references) == {"accuracy": 0.5}


def test_bad_hierarchy(metric):
    with pytest.raises(ValueError, match="not both"):
        metric.compute(predictions=[0], references=[0], fine_to_coarse=[0], coarse_members=[[0]])
    with pytest.raises(ValueError, match="outside the hierarchy"):
        metric.compute(predictions=[3], references=[0], fine_to_coarse=[0, 1])
