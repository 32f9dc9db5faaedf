"""Image processor for RevBiFPN: ImageNet-style evaluation transform (resize the shorter side to
``crop / 0.875``, bicubic; center crop; scale to [0, 1]; ImageNet mean/std), as used by timm, whose training
script the official models were trained with."""

from transformers.image_processing_backends import PilBackend
from transformers.image_utils import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD, PILImageResampling


class RevBiFPNImageProcessor(PilBackend):
    r"""
    Preprocess images for RevBiFPN. Defaults match S0 (224 px); for another variant pass its resolution, e.g.
    ``RevBiFPNImageProcessor(size={"shortest_edge": 329}, crop_size={"height": 288, "width": 288})`` for S3,
    or use :meth:`for_resolution`. Outputs must be divisible by 32 (the network's total stride).
    """

    model_input_names = ["pixel_values"]
    resample = PILImageResampling.BICUBIC
    image_mean = IMAGENET_DEFAULT_MEAN
    image_std = IMAGENET_DEFAULT_STD
    size = {"shortest_edge": 256}
    crop_size = {"height": 224, "width": 224}
    do_resize = True
    do_center_crop = True
    do_rescale = True
    do_normalize = True
    do_convert_rgb = True

    @classmethod
    def for_resolution(cls, resolution: int, crop_pct: float = 0.875, **kwargs) -> "RevBiFPNImageProcessor":
        """The evaluation transform for square inputs of ``resolution`` pixels (``crop_pct`` of the resized image)."""
        if resolution % 32:
            raise ValueError(f"resolution must be divisible by 32 (the total stride), got {resolution}")
        if not 0 < crop_pct <= 1:
            raise ValueError(f"crop_pct must be in (0, 1], got {crop_pct}")
        return cls(
            size={"shortest_edge": int(resolution / crop_pct)},
            crop_size={"height": resolution, "width": resolution},
            **kwargs,
        )


__all__ = ["RevBiFPNImageProcessor"]
