"""Pipelines: thin pre- and post-processing around random_features/ and video/, one module per task.

- ``"craftmaps-classification"`` (:mod:`.craftmaps_classification`) and ``"video-background-subtraction"``
  (:mod:`.video_background_subtraction`), registered with transformers' ``pipeline()`` by :func:`register_task`.
- :func:`check_model_path`: a ``model=`` path that does not exist is answered "no such folder: <path>"
  (:class:`NoSuchFolderError`) instead of transformers' invalid-repository-id message.
"""

import functools
import os
from typing import Any


class NoSuchFolderError(FileNotFoundError, ValueError):
    """A model path that is neither an existing folder nor a Hub repository id. Both a ``FileNotFoundError``
    (caught by ``except OSError`` like transformers' own load errors) and a ``ValueError`` (a bad argument)."""


def check_model_path(model: Any) -> None:
    """Raise :class:`NoSuchFolderError` when ``model`` is a string or path that names no existing file or folder
    and cannot be a Hub repository id either (``./nosuch``, ``~/x``, ``a/b/c``). Anything else passes: objects,
    existing paths, and ids the Hub may know (``org/name``), which transformers resolves itself."""
    if not isinstance(model, (str, os.PathLike)):
        return
    path = os.fspath(model)
    if os.path.exists(os.path.expanduser(path)):
        return
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    try:
        validate_repo_id(path)
    except HFValidationError:
        raise NoSuchFolderError(
            f"no such folder: {path} (neither an existing local path nor a Hub repository id)"
        ) from None


def register_task(task: str, pipeline_class: type, pt_model: type | None = None) -> None:
    """Make ``pipeline(task)`` build ``pipeline_class``, loading ``model=<path>`` with ``pt_model.from_pretrained``
    (default ``AutoModel``).

    The task's default model is ``None``, not a Hub repository: ``pipeline(task)`` without ``model=`` then reaches
    ``pipeline_class(model=None)`` instead of failing inside transformers with ``KeyError: 'default'``, and the
    class decides: a method without weights builds its model, a fitted one says what it needs.
    """
    from transformers import AutoModel
    from transformers.pipelines import PIPELINE_REGISTRY

    default: dict[str, Any] = {"model": (None, None)}
    PIPELINE_REGISTRY.register_pipeline(
        task, pipeline_class=pipeline_class, pt_model=pt_model or AutoModel, default=default, type="multimodal"
    )
    _check_paths_in_pipeline_factory()


def _check_paths_in_pipeline_factory() -> None:
    """Make ``pipeline(..., model="./nosuch")`` say "no such folder: ./nosuch" (:class:`NoSuchFolderError`).

    transformers' ``pipeline()`` reads ``model=`` / ``config=`` before it looks at the task and reports a missing
    local folder as an invalid Hub repository id ("Repo id must use alphanumeric chars ..."). The first thing it
    does with such a string is ``resolve_revision``, looked up in ``transformers.pipelines`` at call time; wrapping
    that name (only there: ``from_pretrained`` is untouched) catches the path whatever the import order of user
    code. The effect reaches every task, but only as a clearer message for a load that fails anyway, with an
    exception that is still an ``OSError``. Without that name (another transformers version) nothing changes.
    """
    import transformers.pipelines as pipelines

    resolve = getattr(pipelines, "resolve_revision", None)
    if resolve is None or getattr(resolve, "_hf_eff_checks_paths", False):
        return

    @functools.wraps(resolve)
    def resolve_revision(path_or_repo_id: Any, *args: Any, **kwargs: Any):
        check_model_path(path_or_repo_id)
        return resolve(path_or_repo_id, *args, **kwargs)

    resolve_revision._hf_eff_checks_paths = True
    pipelines.resolve_revision = resolve_revision
