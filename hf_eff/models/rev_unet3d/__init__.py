"""The reversible-MBConv 3D U-Net as a transformers model family; importing this module registers it with the
Auto classes (``AutoConfig``, ``AutoModel``, ``AutoModelForSemanticSegmentation``)."""

from transformers import AutoConfig, AutoModel, AutoModelForSemanticSegmentation

from .configuration_rev_unet3d import RevUNet3DConfig
from .inference_rev_unet3d import sliding_window_inference
from .labels_rev_unet3d import label_map_to_regions, logits_to_label_map, regions_to_label_map
from .modeling_rev_unet3d import RevUNet3DForSemanticSegmentation, RevUNet3DModel, RevUNet3DPreTrainedModel


AutoConfig.register(RevUNet3DConfig.model_type, RevUNet3DConfig, exist_ok=True)
AutoModel.register(RevUNet3DConfig, RevUNet3DModel, exist_ok=True)
AutoModelForSemanticSegmentation.register(RevUNet3DConfig, RevUNet3DForSemanticSegmentation, exist_ok=True)

# also write `auto_map` into saved configs, as every hf_eff family does: a folder then loads with
# trust_remote_code=True where nobody imported hf_eff (the copied files import hf_eff, so it must be installed)
RevUNet3DConfig.register_for_auto_class()
RevUNet3DModel.register_for_auto_class("AutoModel")
RevUNet3DForSemanticSegmentation.register_for_auto_class("AutoModelForSemanticSegmentation")

__all__ = [
    "RevUNet3DConfig",
    "RevUNet3DForSemanticSegmentation",
    "RevUNet3DModel",
    "RevUNet3DPreTrainedModel",
    "label_map_to_regions",
    "logits_to_label_map",
    "regions_to_label_map",
    "sliding_window_inference",
]
