"""Video background subtraction (two handheld videos) as a parameter-free transformers model; importing this module
registers it with the Auto classes. The pipeline lives in :mod:`hf_eff.pipelines.video_background_subtraction`."""

from transformers import AutoConfig, AutoModel

from hf_eff.models.video_bgsub.configuration_video_bgsub import VideoBackgroundSubtractionConfig
from hf_eff.models.video_bgsub.modeling_video_bgsub import VideoBackgroundSubtractionModel


AutoConfig.register(VideoBackgroundSubtractionConfig.model_type, VideoBackgroundSubtractionConfig, exist_ok=True)
AutoModel.register(VideoBackgroundSubtractionConfig, VideoBackgroundSubtractionModel, exist_ok=True)

# also write `auto_map` into saved configs, as every hf_eff family does: a folder then loads with
# trust_remote_code=True where nobody imported hf_eff (the copied files import hf_eff, so it must be installed)
VideoBackgroundSubtractionConfig.register_for_auto_class()
VideoBackgroundSubtractionModel.register_for_auto_class("AutoModel")

__all__ = ["VideoBackgroundSubtractionConfig", "VideoBackgroundSubtractionModel"]
