"""Images in the dtypes a new user passes: uint8 gets a message naming the fix, float64 simply works."""

import pytest
import torch

from hf_eff import RevBiFPNConfig, RevBiFPNForImageClassification


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    config = RevBiFPNConfig(
        stem_factor=2, channels=[12, 16, 24, 32], neck_channels=[12, 16, 24, 40], fc_features=48, num_labels=3
    )
    return RevBiFPNForImageClassification(config).eval()


def test_uint8_images_name_the_dtype_and_the_image_processor(model):
    images = torch.randint(0, 256, (1, 3, 32, 32), dtype=torch.uint8)
    with pytest.raises(TypeError, match="got dtype torch.uint8: preprocess images with RevBiFPNImageProcessor"):
        model(pixel_values=images)


def test_float64_images_give_the_float32_result(model):
    images = torch.randn(2, 3, 32, 32, dtype=torch.float64)
    with torch.no_grad():
        logits64 = model(pixel_values=images).logits
        logits32 = model(pixel_values=images.float()).logits
    assert logits64.dtype == torch.float32
    torch.testing.assert_close(logits64, logits32)
