"""Pipelines: thin pre- and post-processing around random_features/ and video/."""

from typing import Any


def register_task(task: str, pipeline_class: type) -> None:
    """Make ``pipeline(task)`` build ``pipeline_class``, loading ``model=<path>`` through ``AutoModel``.

    The task's default model is ``None``, not a Hub repository: ``pipeline(task)`` without ``model=`` then reaches
    ``pipeline_class(model=None)`` instead of failing inside transformers with ``KeyError: 'default'``, and the
    class decides: a method without weights builds its model, a fitted one says what it needs.
    """
    from transformers import AutoModel
    from transformers.pipelines import PIPELINE_REGISTRY

    default: dict[str, Any] = {"model": (None, None)}
    PIPELINE_REGISTRY.register_pipeline(
        task, pipeline_class=pipeline_class, pt_model=AutoModel, default=default, type="multimodal"
    )
