"""Product quantisation of HD-CNN branch layers: error falls with centres, size is saved, checkpoints rebuild it."""

import pytest
import torch
from torch import nn


def _model():
    from hf_eff import HDCNNConfig, HDCNNForImageClassification

    config = HDCNNConfig(
        num_channels=1, num_labels=4, cnn_channels=[4, 64], cnn_convs_per_stage=1, coarse_members=[[0, 1], [2, 3]]
    )
    return HDCNNForImageClassification(config).eval()


def test_reassembly_error_decreases_with_centres():
    from hf_eff.models.hdcnn import ProductQuantized

    layer = nn.Linear(32, 128)
    errors = []
    for centers in (4, 16, 64):
        quantized = ProductQuantized(layer, centers, 2)
        quantized.fit(layer.weight)
        errors.append((quantized.weight() - layer.weight).pow(2).mean().item())
        x = torch.randn(3, 32)
        assert quantized(x).shape == (3, 128)
    assert errors[0] > errors[1] > errors[2]
    assert quantized.codes.dtype == torch.uint8


def test_quantize_branches_reports_size_and_round_trips(tmp_path):
    from transformers import AutoModelForImageClassification

    from hf_eff.models.hdcnn import ProductQuantized, product_quantize_

    model = _model()
    x = torch.randn(3, 1, 8, 8)
    before = model(x).logits
    report = product_quantize_(model, "fine", num_centers=16, segment_length=4)
    assert report.quantized == ["fine.0.stages.0.0", "fine.1.stages.0.0"]  # the 64-wide convs of the fine copies
    assert "fine.0.classifier" in report.skipped  # 2 output rows: quantising would not save anything
    assert report.bytes_after < report.bytes_before and report.model_bytes_saved > 0
    assert report.model_bytes_saved == report.bytes_before - report.bytes_after
    assert isinstance(model.fine[0].stages[0][0], ProductQuantized)
    assert model.config.pq_modules == report.quantized
    after = model(x).logits
    assert torch.allclose(after.exp().sum(-1), torch.ones(3), atol=1e-5)
    assert not torch.equal(after, before)
    model.save_pretrained(tmp_path)
    loaded = AutoModelForImageClassification.from_pretrained(tmp_path).eval()
    assert isinstance(loaded.fine[1].stages[0][0], ProductQuantized)
    assert torch.equal(loaded.fine[1].stages[0][0].codes, model.fine[1].stages[0][0].codes)
    assert torch.allclose(loaded(x).logits, after, atol=1e-6)


def test_bad_quantization_settings():
    from hf_eff.models.hdcnn import product_quantize_

    with pytest.raises(ValueError, match="num_centers must be in"):
        product_quantize_(_model(), num_centers=300)
    with pytest.raises(ValueError, match="modules must be one of"):
        product_quantize_(_model(), "everything")
    with pytest.raises(ValueError, match="no Linear/Conv2d layer named"):
        product_quantize_(_model(), ["fine.9.classifier"])
