"""hf_eff's ``evaluate`` metrics load offline from the package and agree with the engine's own scores."""

import numpy as np
import pytest

import hf_eff.metrics
from hf_eff.video import mask_scores


def test_every_metric_loads_offline_by_path():
    assert "mask_f1" in hf_eff.metrics.available()
    for name in hf_eff.metrics.available():
        assert hf_eff.metrics.load(name).name  # HF_HUB_OFFLINE=1 (conftest): nothing may be fetched


def test_mask_f1_values_match_the_video_engine_in_any_batching():
    rng = np.random.default_rng(0)
    predicted = rng.random((5, 12, 16)) > 0.5
    truth = rng.random((5, 12, 16)) > 0.3
    metric = hf_eff.metrics.load("mask_f1")
    metric.add_batch(predictions=list(predicted[:3]), references=list(truth[:3]))
    for p, t in zip(predicted[3:], truth[3:]):
        metric.add(prediction=p, reference=t)
    scores = metric.compute()
    assert scores == pytest.approx(mask_scores(predicted, truth))
    assert set(scores) == {"f1", "precision", "recall", "iou"}


def test_mask_f1_hand_counted_and_empty_masks():
    metric = hf_eff.metrics.load("mask_f1")
    # tp = 1, fp = 1, fn = 2: precision 1/2, recall 1/3, F1 2/5, IoU 1/4
    scores = metric.compute(predictions=[[[1, 1, 0, 0]]], references=[[[1, 0, 1, 1]]])
    assert scores == pytest.approx({"precision": 0.5, "recall": 1 / 3, "f1": 0.4, "iou": 0.25})
    empty = metric.compute(predictions=[[[0, 0]]], references=[[[0, 0]]])
    assert empty["iou"] == 1.0 and empty["precision"] == 1.0


def test_mask_f1_names_the_example_with_mismatched_shapes():
    with pytest.raises(ValueError, match="example 1: predicted masks have shape"):
        hf_eff.metrics.load("mask_f1").compute(predictions=[[[1, 0]], [[1, 0, 1]]], references=[[[1, 0]], [[1, 0]]])


def test_unknown_metric_names_the_known_ones():
    with pytest.raises(ValueError, match="mask_f1"):
        hf_eff.metrics.path("no_such_metric")
