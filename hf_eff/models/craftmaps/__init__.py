"""CRAFTMaps model: config + classifier, registered with the Auto classes on import."""

from transformers import AutoConfig, AutoModel, AutoModelForImageClassification

from hf_eff.models.craftmaps.configuration_craftmaps import CraftMapsConfig
from hf_eff.models.craftmaps.modeling_craftmaps import (
    CraftMapsClassifierOutput,
    CraftMapsForClassification,
    CraftMapsPreTrainedModel,
)


AutoConfig.register(CraftMapsConfig.model_type, CraftMapsConfig, exist_ok=True)
AutoModel.register(CraftMapsConfig, CraftMapsForClassification, exist_ok=True)
# images are one of its input types, so the image-classification Auto class resolves it too
AutoModelForImageClassification.register(CraftMapsConfig, CraftMapsForClassification, exist_ok=True)

# also write `auto_map` into saved configs, as every hf_eff family does: a folder then loads with
# trust_remote_code=True where nobody imported hf_eff (the copied files import hf_eff, so it must be installed)
CraftMapsConfig.register_for_auto_class()
CraftMapsForClassification.register_for_auto_class("AutoModel")

__all__ = ["CraftMapsClassifierOutput", "CraftMapsConfig", "CraftMapsForClassification", "CraftMapsPreTrainedModel"]
