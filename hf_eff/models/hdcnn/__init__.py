"""HD-CNN as a transformers model family; importing this module registers it with the Auto classes."""

from transformers import AutoConfig, AutoModelForImageClassification

from .configuration_hdcnn import HDCNNConfig
from .hierarchy_hdcnn import CategoryHierarchy, build_category_hierarchy
from .modeling_hdcnn import HDCNNForImageClassification, HDCNNImageClassifierOutput, HDCNNPreTrainedModel
from .quantization_hdcnn import ProductQuantized, QuantizationReport, product_quantize_


AutoConfig.register(HDCNNConfig.model_type, HDCNNConfig, exist_ok=True)
AutoModelForImageClassification.register(HDCNNConfig, HDCNNForImageClassification, exist_ok=True)

# also write `auto_map` into saved configs, so a folder loads with trust_remote_code=True where nobody imported
# hf_eff first (the copied modeling file imports hf_eff, so hf_eff must be installed)
HDCNNConfig.register_for_auto_class()
HDCNNForImageClassification.register_for_auto_class("AutoModelForImageClassification")

_RECIPE_NAMES = ("BranchPretrainer", "HDCNNRecipeResult", "freeze_for_branch_pretraining", "train_hdcnn")


def __getattr__(name: str):
    """The recipe (it imports ``Trainer``) loads on first use, not when the Auto classes are registered."""
    if name in _RECIPE_NAMES:
        from . import recipe_hdcnn

        return getattr(recipe_hdcnn, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "BranchPretrainer",
    "HDCNNRecipeResult",
    "freeze_for_branch_pretraining",
    "train_hdcnn",
    "CategoryHierarchy",
    "HDCNNConfig",
    "HDCNNForImageClassification",
    "HDCNNImageClassifierOutput",
    "HDCNNPreTrainedModel",
    "ProductQuantized",
    "QuantizationReport",
    "build_category_hierarchy",
    "product_quantize_",
]
