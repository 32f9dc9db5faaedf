"""``pipeline("video-background-subtraction")``: foreground objects from two handheld videos of one scene.

The method has no learned weights: its model is the parameter-free
:class:`hf_eff.models.video_bgsub.VideoBackgroundSubtractionModel` (the algorithm of :mod:`hf_eff.video` with its
hyper-parameters in a config), so the task name alone is enough: without ``model=`` the pipeline builds it with the
default settings. ``pipeline(task, model="that/dir")`` reloads tuned settings through ``AutoModel``.

>>> from transformers import pipeline
>>> import hf_eff  # registers the task
>>> pipe = pipeline("video-background-subtraction", device="cpu")
>>> out = pipe("with_object.mp4", background_video="empty_scene.mp4", output_video="object_only.mp4")
>>> out["masks"][0], out["matches"][:5]

Share tuned settings with ``model.save_pretrained(dir)`` (config + a one-number safetensors file + card); a folder
written by ``pipe.save_pretrained`` additionally records a custom pipeline, which transformers only reloads with
``trust_remote_code=True`` or ``pipeline_class=VideoBackgroundSubtractionPipeline``.

A Python list passed to a pipeline is a *batch*: pass a list of frames for one video through the ``background_video``
form above or inside a dict ``{"video": ..., "background_video": ...}``; a list of such dicts is a batch of pairs.

Many pairs on disk: pass a folder (pairs named ``NAME.mp4`` + ``NAME_background.mp4``) or a ``datasets.Dataset``
with string columns ``video`` and ``background_video`` (and optionally ``name``), plus ``output_dir``. They are
processed by ``num_workers`` processes (default 2), each streaming its videos from disk, with a progress bar; the
call returns one summary per pair and writes ``NAME_foreground.mp4`` / ``NAME_masks.mp4`` to ``output_dir``:

>>> summaries = pipe("pairs/", output_dir="out/", num_workers=2)
"""

import os
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from transformers import PreTrainedModel
from transformers.pipelines import Pipeline

from hf_eff.models import video_bgsub
from hf_eff.models.video_bgsub.configuration_video_bgsub import SETTING_NAMES
from hf_eff.pipelines import register_task
from hf_eff.video.io import VideoReader
from hf_eff.video.subtractor import SubtractionResult


TASK = "video-background-subtraction"
_MOVED = ("VideoBackgroundSubtractionConfig", "VideoBackgroundSubtractionModel")


class VideoBackgroundSubtractionPipeline(Pipeline):
    """Foreground masks and object-only frames for a video, given a second video of the same scene without the object.

    Call it as ``pipe(video, background_video=background)`` or ``pipe({"video": ..., "background_video": ...})``.
    Each video is a file path, an array ``(T, H, W[, C])`` or a list of frames (see :class:`hf_eff.video.VideoReader`).
    Arrays are ``uint8`` (0-255) or floating point with values in ``[0, 1]``; other dtypes raise ``TypeError`` and
    float values outside ``[0, 1]`` raise ``ValueError`` (nothing is clipped). A file that is not a video (e.g. text,
    which FFmpeg would render as a video of characters) raises ``ValueError`` naming the argument.

    Call options: ``output_video`` / ``mask_video`` (paths; the object-only video and the mask video are streamed to
    them), ``return_foreground`` (default ``True``; ``False`` keeps memory to the masks for long videos),
    ``output_format`` (``"pil"``: lists of PIL images, the default; ``"numpy"``: arrays), ``progress`` (tqdm bars),
    and any :class:`~hf_eff.VideoBackgroundSubtractionConfig` field to override it for this call (e.g. ``verify_window=3``).

    Returns a dict: ``masks`` (per frame, ``"L"`` images with 255 = object), ``foreground`` (per frame, RGBA images
    whose alpha is the mask; RGB is the input frame), ``matches`` (the background frame index per frame),
    ``homographies`` (3x3 lists mapping that background frame onto the frame, in pixels), ``alignment`` (``features``,
    ``chained``, ``ecc`` or ``prior`` per frame), ``inliers``, ``costs`` (alignment residual, lower = more confident),
    ``output_video``, ``mask_video`` and ``stats`` (work counts and seconds per phase).
    """

    _load_tokenizer = False
    _load_image_processor = False
    _load_feature_extractor = False
    _load_processor = False
    _load_video_processor = False

    def __init__(self, model: PreTrainedModel | None = None, **kwargs: Any):
        super().__init__(model if model is not None else video_bgsub.VideoBackgroundSubtractionModel(), **kwargs)

    def __call__(self, inputs: Any, background_video: Any = None, **kwargs: Any) -> Any:
        if _is_pair_collection(inputs):
            if background_video is not None:
                raise ValueError(
                    "a folder or dataset of video pairs holds the background videos: omit background_video"
                )
            return self._process_collection(inputs, **kwargs)
        if background_video is not None:
            if isinstance(inputs, dict):
                raise ValueError("pass background_video either as a keyword or inside the input dict, not both")
            inputs = {"video": inputs, "background_video": background_video}
        return super().__call__(inputs, **kwargs)

    def _process_collection(
        self,
        pairs: Any,
        output_dir: str | Path | None = None,
        num_workers: int = 2,
        progress: bool = True,
        **overrides: Any,
    ) -> list[dict[str, Any]]:
        """Every pair of a folder or dataset, in ``num_workers`` processes (see :mod:`hf_eff.video.batch`)."""
        from dataclasses import asdict

        from hf_eff.video.batch import VideoPair, find_pairs, process_pairs

        if output_dir is None:
            raise ValueError("output_dir is required for a folder or dataset of video pairs (outputs are files)")
        unknown = set(overrides) - set(SETTING_NAMES)
        if unknown:
            raise TypeError(
                f"unknown argument(s) {sorted(unknown)} for a folder or dataset of pairs; valid: output_dir, "
                f"num_workers, progress and the settings {sorted(SETTING_NAMES)}"
            )
        settings = asdict(self.model.config.to_settings(**overrides))
        if isinstance(pairs, (str, os.PathLike)):
            jobs = find_pairs(pairs)
        else:
            missing = {"video", "background_video"} - set(pairs.column_names)
            if missing:
                raise ValueError(
                    f"the dataset needs the columns 'video' and 'background_video' (file paths); missing {sorted(missing)}"
                )
            names = pairs["name"] if "name" in pairs.column_names else [f"pair{k:05d}" for k in range(len(pairs))]
            jobs = []
            for name, row in zip(names, pairs.select_columns(["video", "background_video"])):
                for column in ("video", "background_video"):
                    if not isinstance(row[column], (str, os.PathLike)):
                        raise TypeError(
                            f"dataset row {name!r}: column {column!r} must hold a file path, got {type(row[column]).__name__}"
                        )
                jobs.append(VideoPair(str(name), Path(row["video"]), Path(row["background_video"])))
        return process_pairs(jobs, output_dir, settings, num_workers=num_workers, progress=progress)

    def _sanitize_parameters(
        self,
        output_video: str | Path | None = None,
        mask_video: str | Path | None = None,
        return_foreground: bool | None = None,
        output_format: str | None = None,
        progress: bool | None = None,
        **overrides: Any,
    ) -> tuple[dict, dict, dict]:
        unknown = set(overrides) - set(SETTING_NAMES)
        if unknown:
            raise TypeError(
                f"unknown argument(s) {sorted(unknown)} for {TASK}; valid settings are {sorted(SETTING_NAMES)}"
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


def _is_pair_collection(inputs: Any) -> bool:
    """A folder of video pairs or a ``datasets.Dataset`` of them (not one video)."""
    if isinstance(inputs, (str, os.PathLike)):
        return Path(inputs).is_dir()
    datasets = sys.modules.get("datasets")  # a Dataset can only exist if datasets was imported
    return datasets is not None and isinstance(inputs, datasets.Dataset)


register_task(TASK, VideoBackgroundSubtractionPipeline)


def __getattr__(name: str) -> Any:
    if name in _MOVED:
        warnings.warn(
            f"hf_eff.pipelines.video_background_subtraction.{name} moved to hf_eff.models.video_bgsub (or use "
            f"hf_eff.{name}); the old path will be removed",
            DeprecationWarning,
            stacklevel=2,
        )
        return getattr(video_bgsub, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["VideoBackgroundSubtractionPipeline"]
