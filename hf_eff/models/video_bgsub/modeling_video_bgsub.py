"""The video background-subtraction method as a (parameter-free) ``PreTrainedModel``.

The method has no learned weights: its "model" is the algorithm of :mod:`hf_eff.video` with its hyper-parameters in
a :class:`VideoBackgroundSubtractionConfig`. Being a ``PreTrainedModel`` is what lets it live in the Hugging Face
workflow unchanged: ``pipeline("video-background-subtraction")`` builds it, ``save_pretrained`` / ``push_to_hub``
share a tuned configuration as a normal repository, and ``AutoModel.from_pretrained(dir)`` reloads it.
(``Pipeline`` and ``Trainer`` read ``model.device`` from the first parameter, hence one dummy parameter; it is never
used.)
"""

from pathlib import Path
from typing import Any

import torch
from torch import nn
from transformers import PreTrainedModel

from hf_eff.modelcard import ModelCardMixin
from hf_eff.video.subtractor import BackgroundSubtractor, SubtractionResult

from .configuration_video_bgsub import VideoBackgroundSubtractionConfig


class VideoBackgroundSubtractionModel(ModelCardMixin, PreTrainedModel):
    """The method as a model: ``model(video, background_video)`` runs :class:`hf_eff.video.BackgroundSubtractor`
    with the configured hyper-parameters and returns a :class:`hf_eff.video.subtractor.SubtractionResult`."""

    config_class = VideoBackgroundSubtractionConfig
    base_model_prefix = "video_bgsub"
    main_input_name = "video"
    model_card_template = "video_bgsub"

    def __init__(self, config: VideoBackgroundSubtractionConfig | None = None):
        super().__init__(config if config is not None else VideoBackgroundSubtractionConfig())
        self.device_anchor = nn.Parameter(torch.zeros(()), requires_grad=False)
        self.post_init()

    def _init_weights(self, module: nn.Module) -> None:
        if module is self:
            from transformers import initialization as init

            init.zeros_(self.device_anchor)

    def model_card_data(self) -> dict[str, Any]:
        return {"tags": ["background-subtraction", "video"], "pipeline_tag": None, "metrics": ["mask_f1"]}

    def forward(
        self,
        video: Any,
        background_video: Any,
        *,
        output_video: str | Path | None = None,
        mask_video: str | Path | None = None,
        return_frames: bool = True,
        progress: bool = False,
        **overrides: Any,
    ) -> SubtractionResult:
        subtractor = BackgroundSubtractor(self.config.to_settings(**overrides))
        return subtractor(
            video,
            background_video,
            output_video=output_video,
            mask_video=mask_video,
            return_frames=return_frames,
            progress=progress,
        )


__all__ = ["VideoBackgroundSubtractionModel"]
