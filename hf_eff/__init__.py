"""hf_eff: training- and inference-efficiency methods from research papers as native Hugging Face pieces.

Public names are resolved lazily (PEP 562) so that ``import hf_eff`` stays cheap: nothing heavy (transformers
models, OpenCV, video decoding) is imported until a name is used. Importing ``hf_eff`` still makes every model
known to the Auto classes and every pipeline known to ``PIPELINE_REGISTRY``: see :mod:`hf_eff._registration`.
"""

import importlib
from typing import Any


__version__ = "0.1.0"

# public name -> module that defines it; a method adds its names here when it lands
_PUBLIC_NAMES: dict[str, str] = {
    # offline data
    "load_image_dataset": "hf_eff.data",
    "load_text_corpus": "hf_eff.data",
    "load_text_task": "hf_eff.data",
    # SPDF
    "SparsityConfig": "hf_eff.sparsity.config",
    "SparsePretrainer": "hf_eff.sparsity.trainers",
    "DenseFinetuneTrainer": "hf_eff.sparsity.trainers",
    "training_flops": "hf_eff.sparsity.flops",
    # RevBiFPN
    "RevBiFPNConfig": "hf_eff.models.revbifpn",
    "RevBiFPNModel": "hf_eff.models.revbifpn",
    "RevBiFPNForImageClassification": "hf_eff.models.revbifpn",
    "RevBiFPNBackbone": "hf_eff.models.revbifpn",
    "RevBiFPNImageProcessor": "hf_eff.models.revbifpn",
    # HD-CNN
    "HDCNNConfig": "hf_eff.models.hdcnn",
    "HDCNNForImageClassification": "hf_eff.models.hdcnn",
    "build_category_hierarchy": "hf_eff.models.hdcnn",
    # hot swapping (bandit learning rates)
    "BanditLRCallback": "hf_eff.callbacks.bandit_lr.callback",
    "BanditLRTrainer": "hf_eff.callbacks.bandit_lr.trainer",
    # SWAP (stochastic weight averaging in parallel)
    "SWAPCallback": "hf_eff.callbacks.swap",
    "SWAPConfig": "hf_eff.callbacks.swap",
    "SWAPTrainer": "hf_eff.callbacks.swap",
    "SWAPTrainerMixin": "hf_eff.callbacks.swap",
    # per-instance dynamic learning rates (and the Data Parameters baseline)
    "InstanceLRCallback": "hf_eff.callbacks.instance_lr",
    "InstanceLRConfig": "hf_eff.callbacks.instance_lr",
    "InstanceLRTrainer": "hf_eff.callbacks.instance_lr",
    "DataParametersCallback": "hf_eff.callbacks.instance_lr",
    # CRAFTMaps
    "CraftMapsConfig": "hf_eff.models.craftmaps",
    "CraftMapsForClassification": "hf_eff.models.craftmaps",
    "CraftMapsSampler": "hf_eff.random_features.sampler",
    "CraftMapsClassificationPipeline": "hf_eff.pipelines.craftmaps_classification",
    # background subtraction from two handheld videos
    "VideoBackgroundSubtractionPipeline": "hf_eff.pipelines.video_background_subtraction",
    "VideoBackgroundSubtractionConfig": "hf_eff.models.video_bgsub.configuration_video_bgsub",
    "VideoBackgroundSubtractionModel": "hf_eff.models.video_bgsub.modeling_video_bgsub",
    "BackgroundSubtractor": "hf_eff.video",
    "make_handheld_pair": "hf_eff.video",
    # reversible 3D U-Net
    "RevUNet3DConfig": "hf_eff.models.rev_unet3d",
    "RevUNet3DModel": "hf_eff.models.rev_unet3d",
    "RevUNet3DForSemanticSegmentation": "hf_eff.models.rev_unet3d",
}

__all__ = sorted(_PUBLIC_NAMES)


def __getattr__(name: str) -> Any:
    module = _PUBLIC_NAMES.get(name)
    if module is None:
        raise AttributeError(f"module 'hf_eff' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # cache: the next access is a plain attribute lookup
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


from hf_eff._registration import install_registration_hook  # noqa: E402


install_registration_hook()
