"""RevBiFPN as a transformers model family; importing this module registers it with the Auto classes."""

from transformers import AutoBackbone, AutoConfig, AutoModel, AutoModelForImageClassification

from .configuration_revbifpn import RevBiFPNConfig
from .modeling_revbifpn import (
    RevBiFPNBackbone,
    RevBiFPNForImageClassification,
    RevBiFPNModel,
    RevBiFPNPreTrainedModel,
)


AutoConfig.register(RevBiFPNConfig.model_type, RevBiFPNConfig, exist_ok=True)
AutoModel.register(RevBiFPNConfig, RevBiFPNModel, exist_ok=True)
AutoModelForImageClassification.register(RevBiFPNConfig, RevBiFPNForImageClassification, exist_ok=True)
AutoBackbone.register(RevBiFPNConfig, RevBiFPNBackbone, exist_ok=True)

# also write `auto_map` into saved configs, so a folder loads with trust_remote_code=True even where nobody
# imported hf_eff first (the copied modeling file imports hf_eff's engine, so hf_eff must be installed)
RevBiFPNConfig.register_for_auto_class()
RevBiFPNModel.register_for_auto_class("AutoModel")
RevBiFPNForImageClassification.register_for_auto_class("AutoModelForImageClassification")
RevBiFPNBackbone.register_for_auto_class("AutoBackbone")

try:  # AutoImageProcessor needs pillow (the [vision] extra)
    from transformers import AutoImageProcessor

    from .image_processing_revbifpn import RevBiFPNImageProcessor

    AutoImageProcessor.register(
        RevBiFPNConfig,
        image_processor_classes={"pil": RevBiFPNImageProcessor, "torchvision": RevBiFPNImageProcessor},
        exist_ok=True,
    )
except ImportError:  # pragma: no cover - pillow missing
    RevBiFPNImageProcessor = None

__all__ = [
    "RevBiFPNBackbone",
    "RevBiFPNConfig",
    "RevBiFPNForImageClassification",
    "RevBiFPNImageProcessor",
    "RevBiFPNModel",
    "RevBiFPNPreTrainedModel",
]
