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
