"""Tiny models shared by the RevUNet3D tests."""

import torch

from hf_eff import RevUNet3DConfig, RevUNet3DForSemanticSegmentation


def tiny_config(**overrides) -> RevUNet3DConfig:
    """3 levels (size multiple 4), widths 8/16/32 with 2 norm groups: milliseconds per step on 16^3 crops."""
    settings = {
        "channels": (8, 16, 32),
        "encoder_depths": (1, 1, 1),
        "decoder_depths": (1, 1),
        "norm_groups": 2,
        "expand_ratio": 2.0,
        "crop_size": (16, 16, 16),
    }
    return RevUNet3DConfig(**{**settings, **overrides})


def tiny_model(seed: int = 0, **overrides) -> RevUNet3DForSemanticSegmentation:
    torch.manual_seed(seed)
    return RevUNet3DForSemanticSegmentation(tiny_config(**overrides))
