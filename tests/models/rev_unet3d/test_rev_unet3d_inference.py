"""Whole-volume inference: sliding windows equal the direct forward where a volume fits, any size works, and the
window positions and blending agree with MONAI's sliding_window_inference (when MONAI is installed)."""

import pytest
import torch
from rev_unet3d_helpers import tiny_model

from hf_eff.models.rev_unet3d import label_map_to_regions, regions_to_label_map, sliding_window_inference
from hf_eff.models.rev_unet3d.inference_rev_unet3d import gaussian_importance_map


def test_single_window_equals_direct_forward():
    model = tiny_model().eval()
    x = torch.randn(2, 4, 16, 16, 16)
    with torch.no_grad():
        direct = model(pixel_values=x).logits
    torch.testing.assert_close(model.predict_volume(x, output="logits"), direct, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(model.predict_volume(x[0]), torch.sigmoid(direct[0]), rtol=1e-4, atol=1e-4)


def test_small_odd_volume_is_padded_and_cropped_back():
    """A 13 x 14 x 15 volume fits one 16^3 window after padding: the result is the padded forward, cropped."""
    model = tiny_model().eval()
    x = torch.randn(1, 4, 13, 14, 15)
    padded = torch.nn.functional.pad(x, (0, 1, 1, 1, 1, 2))  # centred: (before, after) = (1, 2), (1, 1), (0, 1)
    with torch.no_grad():
        expected = model(pixel_values=padded).logits[:, :, 1:14, 1:15, 0:15]
    torch.testing.assert_close(model.predict_volume(x, output="logits"), expected, rtol=1e-4, atol=1e-4)


def test_155_slices_and_other_odd_sizes_work():
    model = tiny_model().eval()
    volume = torch.randn(4, 12, 18, 155)
    labels = model.predict_volume(volume, output="labels", batch_size=4)
    assert labels.shape == (12, 18, 155) and labels.dtype == torch.long
    assert set(labels.unique().tolist()) <= {0, 1, 2, 4}
    probabilities = model.predict_volume(volume.numpy())
    assert probabilities.shape == (3, 12, 18, 155) and torch.isfinite(probabilities).all()
    assert ((probabilities >= 0) & (probabilities <= 1)).all()


def test_blending_weights_normalise_for_overlapping_windows():
    ones = sliding_window_inference(
        lambda x: torch.ones(x.shape[0], 2, *x.shape[2:]), torch.zeros(1, 1, 37, 21, 30), roi_size=(16, 16, 16),
        multiple=4, overlap=0.5, mode="gaussian",
    )  # fmt: skip
    torch.testing.assert_close(ones, torch.ones(1, 2, 37, 21, 30))
    weight = gaussian_importance_map((16, 16, 16))
    assert weight.max() == 1 and weight.min() >= 1e-3 and weight[8, 8, 8] > weight[0, 8, 8]


def test_inference_errors_are_clear():
    model = tiny_model()
    with pytest.raises(ValueError, match=r"volume must have shape \(4, X, Y, Z\)"):
        model.predict_volume(torch.randn(3, 20, 20, 20))
    with pytest.raises(ValueError, match="output must be"):
        model.predict_volume(torch.randn(4, 16, 16, 16), output="mask")
    with pytest.raises(ValueError, match="roi_size must be 3 positive multiples of 4"):
        model.predict_volume(torch.randn(4, 16, 16, 16), roi_size=(10, 16, 16))
    with pytest.raises(ValueError, match="overlap"):
        model.predict_volume(torch.randn(4, 16, 16, 16), overlap=1.0)


def test_brats_regions_round_trip_through_label_maps():
    labels = torch.tensor([0, 1, 2, 4, 2, 0]).reshape(1, 1, 2, 3)
    regions = label_map_to_regions(labels, [(1, 2, 4), (1, 4), (4,)])
    assert regions[0, :, 0, 0, 1].tolist() == [1, 1, 0]  # label 1: WT and TC
    assert torch.equal(regions_to_label_map(regions, [(1, 2, 4), (1, 4), (4,)]), labels)


def test_matches_monai_sliding_window_inference():
    monai_inferers = pytest.importorskip("monai.inferers")
    model = tiny_model().eval()
    x = torch.randn(1, 4, 20, 24, 36)

    def predictor(patch):
        return model(pixel_values=patch).logits

    with torch.no_grad():
        expected = monai_inferers.sliding_window_inference(
            x, roi_size=(16, 16, 16), sw_batch_size=2, predictor=predictor, overlap=0.5, mode="constant"
        )
    ours = sliding_window_inference(predictor, x, (16, 16, 16), multiple=4, overlap=0.5, mode="constant", batch_size=2)
    torch.testing.assert_close(ours, expected, rtol=1e-4, atol=1e-4)
