"""``pipeline("video-background-subtraction")``: foreground objects from two handheld videos of one scene.

The method has no learned weights: its "model" is the algorithm of :mod:`hf_eff.video` with its hyper-parameters in
a :class:`VideoBackgroundSubtractionConfig`. Making that a (parameter-free) ``PreTrainedModel`` is what lets the
method live in the Hugging Face workflow unchanged: ``pipeline(task, model=...)`` builds it, ``save_pretrained`` /
``push_to_hub`` share a tuned configuration as a normal repository, and ``pipeline(task, model="that/dir")`` reloads
it through ``AutoModel``. (``Pipeline`` reads ``model.device`` from the first parameter, hence one dummy buffer-like
parameter; it is never used.)

>>> from transformers import pipeline
>>> import hf_eff  # registers the task
>>> pipe = pipeline("video-background-subtraction", model=hf_eff.VideoBackgroundSubtractionModel(), device="cpu")
>>> out = pipe("with_object.mp4", background_video="empty_scene.mp4", output_video="object_only.mp4")
>>> out["masks"][0], out["matches"][:5]

Share tuned settings with ``model.save_pretrained(dir)`` (config + a one-number safetensors file + card); a folder
written by ``pipe.save_pretrained`` additionally records a custom pipeline, which transformers only reloads with
``trust_remote_code=True`` or ``pipeline_class=VideoBackgroundSubtractionPipeline``.

A Python list passed to a pipeline is a *batch*: pass a list of frames for one video through the ``background_video``
form above or inside a dict ``{"video": ..., "background_video": ...}``; a list of such dicts is a batch of pairs.
"""

from dataclasses import fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from transformers import AutoConfig, AutoModel, PreTrainedConfig, PreTrainedModel
from transformers.pipelines import PIPELINE_REGISTRY, Pipeline

from hf_eff.modelcard import ModelCardMixin
from hf_eff.video.io import VideoReader
from hf_eff.video.subtractor import BackgroundSubtractor, SubtractionResult, SubtractorSettings


TASK = "video-background-subtraction"
_SETTING_NAMES = tuple(f.name for f in fields(SubtractorSettings))


class VideoBackgroundSubtractionConfig(PreTrainedConfig):
    r"""Hyper-parameters of two-video background subtraction (see :class:`hf_eff.video.SubtractorSettings`, which
    documents each field; the defaults are the same).

    Example:

    ```python
    >>> config = VideoBackgroundSubtractionConfig(verify_window=3, threshold=30.0)
    >>> model = VideoBackgroundSubtractionModel(config)
    ```
    """

    model_type = "hf_eff_video_bgsub"

    working_size: int = 320
    descriptor_size: tuple[int, int] | list[int] = (32, 24)
    matching: str = "windowed"
    search_radius: int = 3
    verify_window: int = 2
    max_step: int | None = None
    max_back: int = 0
    num_features: int = 500
    ratio_test: float = 0.8
    ransac_threshold: float = 3.0
    min_inliers: int = 15
    alignment_fallback: str = "ecc"
    border: int = 4
    reference_frames: int = 1
    threshold: float | str = "auto"
    min_threshold: float = 15.0
    threshold_sigmas: float = 6.0
    blur_sigma: float = 1.5
    open_size: int = 3
    close_size: int = 9
    min_area: float = 0.002
    fill_holes: bool = True
    chroma_weight: float = 1.5
    shift_tolerance: int = 1

    def __post_init__(self, **kwargs):
        self.descriptor_size = list(self.descriptor_size)
        self.to_settings()  # validates every field with a clear error
        super().__post_init__(**kwargs)

    def to_settings(self, **overrides: Any) -> SubtractorSettings:
        values = {name: getattr(self, name) for name in _SETTING_NAMES}
        values["descriptor_size"] = tuple(values["descriptor_size"])
        return SubtractorSettings(**values).replace(**overrides) if overrides else SubtractorSettings(**values)


class VideoBackgroundSubtractionModel(ModelCardMixin, PreTrainedModel):
    """The method as a model: ``model(video, background_video)`` runs :class:`hf_eff.video.BackgroundSubtractor`
    with the configured hyper-parameters and returns a :class:`hf_eff.video.subtractor.SubtractionResult`."""

    config_class = VideoBackgroundSubtractionConfig
    base_model_prefix = "video_bgsub"
    main_input_name = "video"
    model_card_template = "generic"

    def __init__(self, config: VideoBackgroundSubtractionConfig | None = None):
        super().__init__(config if config is not None else VideoBackgroundSubtractionConfig())
        # Pipeline and Trainer read the device from the first parameter; the method itself has none
        self.device_anchor = nn.Parameter(torch.zeros(()), requires_grad=False)
        self.post_init()

    def _init_weights(self, module: nn.Module) -> None:
        if module is self:
            from transformers import initialization as init

            init.zeros_(self.device_anchor)

    def model_card_data(self) -> dict[str, Any]:
        return {"tags": ["background-subtraction", "video"], "pipeline_tag": None}

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


class VideoBackgroundSubtractionPipeline(Pipeline):
    """Foreground masks and object-only frames for a video, given a second video of the same scene without the object.

    Call it as ``pipe(video, background_video=background)`` or ``pipe({"video": ..., "background_video": ...})``.
    Each video is a file path, an array ``(T, H, W[, C])`` or a list of frames (see :class:`hf_eff.video.VideoReader`).

    Call options: ``output_video`` / ``mask_video`` (paths; the object-only video and the mask video are streamed to
    them), ``return_foreground`` (default ``True``; ``False`` keeps memory to the masks for long videos),
    ``output_format`` (``"pil"``: lists of PIL images, the default; ``"numpy"``: arrays), ``progress`` (tqdm bars),
    and any :class:`VideoBackgroundSubtractionConfig` field to override it for this call (e.g. ``verify_window=3``).

    Returns a dict: ``masks`` (per frame, ``"L"`` images with 255 = object), ``foreground`` (per frame, RGBA images
    whose alpha is the mask; RGB is the input frame), ``matches`` (the background frame index per frame),
    ``homographies`` (3x3 lists mapping that background frame onto the frame, in pixels), ``alignment`` (``features``,
    ``ecc`` or ``prior`` per frame), ``inliers``, ``costs`` (alignment residual, lower = more confident),
    ``output_video``, ``mask_video`` and ``stats`` (work counts and seconds per phase).
    """

    _load_tokenizer = False
    _load_image_processor = False
    _load_feature_extractor = False
    _load_processor = False
    _load_video_processor = False

    def __init__(self, model: PreTrainedModel | None = None, **kwargs: Any):
        super().__init__(model if model is not None else VideoBackgroundSubtractionModel(), **kwargs)

    def __call__(self, inputs: Any, background_video: Any = None, **kwargs: Any) -> Any:
        if background_video is not None:
            if isinstance(inputs, dict):
                raise ValueError("pass background_video either as a keyword or inside the input dict, not both")
            inputs = {"video": inputs, "background_video": background_video}
        return super().__call__(inputs, **kwargs)

    def _sanitize_parameters(
        self,
        output_video: str | Path | None = None,
        mask_video: str | Path | None = None,
        return_foreground: bool | None = None,
        output_format: str | None = None,
        progress: bool | None = None,
        **overrides: Any,
    ) -> tuple[dict, dict, dict]:
        unknown = set(overrides) - set(_SETTING_NAMES)
        if unknown:
            raise TypeError(
                f"unknown argument(s) {sorted(unknown)} for {TASK}; valid settings are {sorted(_SETTING_NAMES)}"
            )
        forward = dict(overrides)
        if output_video is not None:
            forward["output_video"] = output_video
        if mask_video is not None:
            forward["mask_video"] = mask_video
        if progress is not None:
            forward["progress"] = progress
        postprocess = {}
        if return_foreground is not None:
            forward["return_frames"] = bool(return_foreground)
            postprocess["return_foreground"] = bool(return_foreground)
        if output_format is not None:
            if output_format not in ("pil", "numpy"):
                raise ValueError(f"output_format must be 'pil' or 'numpy', got {output_format!r}")
            postprocess["output_format"] = output_format
        return {}, forward, postprocess

    def preprocess(self, inputs: Any) -> dict[str, Any]:
        if not isinstance(inputs, dict) or set(inputs) != {"video", "background_video"}:
            got = sorted(inputs) if isinstance(inputs, dict) else type(inputs).__name__
            raise ValueError(
                "expected pipe(video, background_video=...) or a dict with exactly the keys 'video' and "
                f"'background_video', got {got}"
            )
        # opening validates both videos (exists, decodable, not empty) before any work is done
        return {
            "video": VideoReader(inputs["video"], "video"),
            "background_video": VideoReader(inputs["background_video"], "background_video"),
        }

    def _forward(self, model_inputs: dict[str, Any], **forward_params: Any) -> dict[str, Any]:
        result = self.model(model_inputs["video"], model_inputs["background_video"], **forward_params)
        return {
            "result": result,
            "output_video": forward_params.get("output_video"),
            "mask_video": forward_params.get("mask_video"),
        }

    def postprocess(
        self, model_outputs: dict[str, Any], return_foreground: bool = True, output_format: str = "pil"
    ) -> dict[str, Any]:
        result: SubtractionResult = model_outputs["result"]
        if output_format == "numpy":
            masks: Any = result.masks
            foreground: Any = result.foreground
        else:
            from PIL import Image

            masks = [Image.fromarray((m * 255).astype(np.uint8), mode="L") for m in result.masks]
            foreground = (
                None if result.foreground is None else [Image.fromarray(f, mode="RGBA") for f in result.foreground]
            )
        output = {
            "masks": masks,
            "matches": result.matches.tolist(),
            "homographies": result.homographies.tolist(),
            "alignment": list(result.alignment),
            "inliers": result.inliers.tolist(),
            "costs": result.costs.tolist(),
            "output_video": None if model_outputs["output_video"] is None else str(model_outputs["output_video"]),
            "mask_video": None if model_outputs["mask_video"] is None else str(model_outputs["mask_video"]),
            "stats": {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in result.stats.items()},
        }
        if return_foreground:
            output["foreground"] = foreground
        return output


AutoConfig.register(VideoBackgroundSubtractionConfig.model_type, VideoBackgroundSubtractionConfig, exist_ok=True)
AutoModel.register(VideoBackgroundSubtractionConfig, VideoBackgroundSubtractionModel, exist_ok=True)
PIPELINE_REGISTRY.register_pipeline(
    TASK, pipeline_class=VideoBackgroundSubtractionPipeline, pt_model=AutoModel, type="multimodal"
)


__all__ = ["VideoBackgroundSubtractionConfig", "VideoBackgroundSubtractionModel", "VideoBackgroundSubtractionPipeline"]
