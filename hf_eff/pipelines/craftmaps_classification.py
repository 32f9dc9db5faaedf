"""The ``"craftmaps-classification"`` pipeline: feature vectors or images in, labels with scores out.

A single input is a numpy array / torch tensor (a feature vector, or an image of shape (H, W) or (C, H, W)), a
PIL image, or a dict with a "features", "pixel_values" or "image" entry (a ``datasets`` row, whose values may be
nested Python lists as a default-format ``datasets.Dataset`` returns them). A Python list passed to the pipeline
is a batch, as in every transformers pipeline. To stream a dataset, pass ``KeyDataset(dataset, "features")`` (its
rows are plain lists) or a generator of rows, ``(row for row in dataset)``. For many rows at once, ``model.predict``
on a tensor is faster.
"""

from typing import Any

import numpy as np
import torch
from transformers import Pipeline, PreTrainedConfig

from hf_eff.pipelines import register_task


TASK = "craftmaps-classification"
_FUNCTIONS = ("softmax", "none")


class CraftMapsClassificationPipeline(Pipeline):
    """Classify with a :class:`~hf_eff.CraftMapsForClassification`.

    Call options: ``top_k`` (default 5, at most the number of labels) and ``function_to_apply``: "softmax" turns
    the class logits -||code prediction - codeword||^2 / 2 into probabilities; "none" returns the logits.
    """

    _load_tokenizer = False
    _load_feature_extractor = False
    _load_image_processor = False
    _load_processor = False
    _load_video_processor = False

    def __init__(self, model: Any = None, *args, **kwargs):
        # imported here, not at the top: this module is imported while transformers (and maybe the model module)
        # are still initialising, when hf_eff registers its pipelines
        from hf_eff.models.craftmaps.modeling_craftmaps import CraftMapsForClassification

        if model is None:
            raise ValueError(
                f"{TASK} needs a fitted CraftMapsForClassification: pass model=<saved folder or the model object>"
            )
        if isinstance(model, PreTrainedConfig):  # a folder of another model: _CraftMapsFolder read only its config
            raise TypeError(
                f"{TASK} needs a CraftMapsForClassification model, got a folder of a {type(model).__name__} "
                f"(model_type {model.model_type!r})"
            )
        if not isinstance(model, CraftMapsForClassification):
            raise TypeError(f"{TASK} needs a CraftMapsForClassification model, got {type(model).__name__}")
        super().__init__(model, *args, **kwargs)

    def _sanitize_parameters(self, top_k: int | None = None, function_to_apply: str | None = None, **kwargs):
        postprocess = {}
        if top_k is not None:
            if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
                raise ValueError(f"top_k must be an int >= 1, got {top_k!r}")
            postprocess["top_k"] = top_k
        if function_to_apply is not None:
            if function_to_apply not in _FUNCTIONS:
                raise ValueError(f"function_to_apply must be one of {_FUNCTIONS}, got {function_to_apply!r}")
            postprocess["function_to_apply"] = function_to_apply
        return {}, {}, postprocess

    def preprocess(self, inputs: Any) -> dict[str, torch.Tensor]:
        array = self._to_array(inputs)
        if not np.issubdtype(array.dtype, np.number) or np.issubdtype(array.dtype, np.complexfloating):
            raise TypeError(f"inputs must hold real numbers, got dtype {array.dtype}")
        expected = self.model.config.num_features
        if array.size != expected:
            raise ValueError(
                f"one input must have {expected} values (config.num_features), got shape {array.shape}; "
                "pass a list for a batch"
            )
        features = torch.as_tensor(array.astype(np.float32, copy=False).reshape(1, expected))
        if not torch.isfinite(features).all():
            raise ValueError("inputs contain NaN or infinite values")
        return {"features": features}

    def _to_array(self, inputs: Any) -> np.ndarray:
        if isinstance(inputs, dict):
            key = next((k for k in ("features", "pixel_values", "image") if k in inputs), None)
            if key is None:
                raise ValueError(
                    f"a dict input needs a 'features', 'pixel_values' or 'image' key, got {sorted(inputs)}"
                )
            inputs = inputs[key]
        if isinstance(inputs, torch.Tensor):
            return inputs.detach().cpu().numpy()
        if isinstance(inputs, np.ndarray):
            return inputs
        if type(inputs).__module__.startswith("PIL."):
            return self._image_to_array(inputs)
        if hasattr(inputs, "column_names"):
            raise TypeError(
                "a whole datasets.Dataset is one input to a pipeline: pass KeyDataset(dataset, column) from "
                "transformers.pipelines.pt_utils, or (row for row in dataset), to stream its rows"
            )
        if isinstance(inputs, (list, tuple)):
            # one row of a Dataset / KeyDataset (a list given to the pipeline itself is split into a batch earlier)
            return np.asarray(inputs)
        raise TypeError(
            f"inputs must be a numpy array, a torch tensor, a PIL image or a dict of one; got {type(inputs).__name__} "
            "(a list given to the pipeline is a batch of inputs: wrap one feature vector as [vector] or an array)"
        )

    def _image_to_array(self, image) -> np.ndarray:
        config = self.model.config
        image = image.convert("L" if config.num_channels == 1 else "RGB")
        if config.image_size is not None:
            height, width = config.image_size
            if image.size != (width, height):
                image = image.resize((width, height))
        pixels = np.asarray(image, dtype=np.float32) / 255.0
        return pixels if pixels.ndim == 2 else pixels.transpose(2, 0, 1)

    def _forward(self, model_inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {"logits": self.model(features=model_inputs["features"]).logits}

    def postprocess(self, model_outputs, top_k: int = 5, function_to_apply: str = "softmax") -> list[dict]:
        logits = model_outputs["logits"][0].float()
        scores = logits.softmax(-1) if function_to_apply == "softmax" else logits
        top_k = min(top_k, scores.shape[-1])
        values, indices = scores.topk(top_k)
        id2label = self.model.config.id2label
        return [{"label": id2label[int(i)], "score": float(v)} for v, i in zip(values, indices)]


class _CraftMapsFolder:
    """What ``pipeline(TASK, model=<folder or repo>)`` loads with, instead of ``AutoModel``: a CRAFTMaps folder
    becomes the model; a folder of any other model only its config, which the pipeline then refuses by name before
    a weight is read (``AutoModel`` would load the foreign weights and print a table of unexpected keys first)."""

    @classmethod
    def from_pretrained(cls, path: str, **kwargs: Any):
        from transformers import AutoConfig

        from hf_eff.models.craftmaps.modeling_craftmaps import CraftMapsConfig, CraftMapsForClassification

        hub = {key: kwargs[key] for key in ("revision", "token", "local_files_only", "cache_dir") if key in kwargs}
        config = kwargs.pop("config", None) or AutoConfig.from_pretrained(path, **hub)
        if not isinstance(config, CraftMapsConfig):
            return config
        return CraftMapsForClassification.from_pretrained(path, config=config, **kwargs)


register_task(TASK, CraftMapsClassificationPipeline, pt_model=_CraftMapsFolder)

__all__ = ["CraftMapsClassificationPipeline"]
