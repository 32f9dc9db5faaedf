"""Model cards for hf_eff checkpoints.

One Jinja template per model family lives in ``model_cards/<name>.md`` at the repository root, the single source of
the templates; the wheel ships that folder as ``hf_eff/model_cards`` (``package_dir`` in ``setup.py``), so
the templates are found next to the installed package, or in a source checkout next to the ``hf_eff`` folder. A
template starts with the YAML front matter placeholder ``{{ card_data }}`` and may use any variable passed to
:func:`render_model_card`.

A new model family adds ``model_cards/<family>.md`` (nothing else: the wheel and the checkout find every ``*.md``
there; ``tests/core/test_packaging.py`` checks the wheel) and sets ``model_card_template = "<family>"`` on its
:class:`ModelCardMixin` model; family tags go in :meth:`ModelCardMixin.model_card_data`, values the text needs in
:meth:`ModelCardMixin.model_card_variables`, and measured numbers in ``model.card_metadata["eval_results"]``
(``huggingface_hub.EvalResult``: they become ``model-index`` in the YAML and the template's ``results``).

Models get their card on ``save_pretrained`` and ``push_to_hub`` through :class:`ModelCardMixin`; trainers that
produce plain transformers checkpoints (SPDF) call :func:`render_model_card` themselves.

Every card's YAML has ``library_name: hf_eff``, the ``hf_eff`` tag and a ``license`` (the library's, Apache-2.0,
unless the caller gives one); ``pipeline_tag`` is a Hub task or absent (a method whose interface matches no Hub
task, such as a hf_eff-only pipeline, sets none); ``model-index`` needs a ``model_name``, which defaults to the
name of the folder or repository the card is written for.
"""

import tempfile
from pathlib import Path
from typing import Any, ClassVar

from huggingface_hub import EvalResult, ModelCard, ModelCardData


LIBRARY_NAME = "hf_eff"
DEFAULT_LICENSE = "apache-2.0"  # hf_eff's own license; a card for weights under other terms passes license=

_PACKAGE = Path(__file__).resolve().parent


def accuracy_card_metadata(dataset: str, accuracy: float, task_type: str = "image-classification") -> dict[str, Any]:
    """``card_metadata`` for a model evaluated on ``dataset``'s test split: the dataset, the metric, and the measured
    accuracy as a ``model-index`` entry (what the training examples record before they save)."""
    result = EvalResult(
        task_type=task_type,
        dataset_type=dataset,
        dataset_name=dataset,
        dataset_split="test",
        metric_type="accuracy",
        metric_value=round(accuracy, 4),
    )
    return {"datasets": [dataset], "metrics": ["accuracy"], "eval_results": [result]}


def templates_folder() -> Path:
    """Where the card templates are: inside the installed package, else at the root of a source checkout."""
    for folder in (_PACKAGE / "model_cards", _PACKAGE.parent / "model_cards"):
        if folder.is_dir():
            return folder
    raise FileNotFoundError(
        f"no model_cards folder in {_PACKAGE} or {_PACKAGE.parent}: hf_eff is installed incompletely"
    )


def available_templates() -> list[str]:
    """Names of the model card templates, for ``render_model_card(name, ...)``."""
    return sorted(p.stem for p in templates_folder().glob("*.md"))


def template_text(template: str) -> str:
    """The text of template ``model_cards/<template>.md``; a clear error names the templates that exist."""
    path = templates_folder() / f"{template}.md"
    if not isinstance(template, str) or not path.is_file():
        raise ValueError(f"unknown model card template {template!r}; expected one of {available_templates()}")
    return path.read_text()


def render_model_card(template: str, card_data: dict[str, Any] | None = None, **variables: Any) -> ModelCard:
    """Fill template ``template`` with ``variables``; ``card_data`` becomes the YAML metadata.

    ``library_name`` is always ``hf_eff`` and the tag ``hf_eff`` is always present; ``license`` defaults to
    :data:`DEFAULT_LICENSE`.
    """
    data = dict(card_data or {})
    data["library_name"] = LIBRARY_NAME
    data["tags"] = list(dict.fromkeys([LIBRARY_NAME, *(data.get("tags") or [])]))
    data.setdefault("license", DEFAULT_LICENSE)
    return ModelCard.from_template(ModelCardData(**data), template_str=template_text(template), **variables)


class ModelCardMixin:
    """Give a ``PreTrainedModel`` a filled card on ``save_pretrained`` and ``push_to_hub``.

    Subclasses set ``model_card_template`` and may override :meth:`model_card_data` and
    :meth:`model_card_variables`. Extra metadata gathered while training (datasets, metrics, results) can be
    put in ``model.card_metadata`` and is merged into the YAML.
    """

    model_card_template: ClassVar[str]
    card_metadata: dict[str, Any] | None = None

    def model_card_data(self) -> dict[str, Any]:
        return {}

    def model_card_variables(self) -> dict[str, Any]:
        results = (self.card_metadata or {}).get("eval_results")  # measured numbers, for the card's table
        return {"config": self.config, "model_class": type(self).__name__, "results": results}

    def create_model_card(self, **card_data: Any) -> ModelCard:
        data = {**self.model_card_data(), **(self.card_metadata or {}), **card_data}
        return render_model_card(self.model_card_template, data, **self.model_card_variables())

    def save_pretrained(self, save_directory, *args, is_main_process: bool = True, **kwargs):
        result = super().save_pretrained(save_directory, *args, is_main_process=is_main_process, **kwargs)
        if is_main_process and not kwargs.get("push_to_hub", False):
            card = self.create_model_card(**self._default_model_name(Path(save_directory).resolve().name))
            card.save(Path(save_directory) / "README.md")
        return result

    def _default_model_name(self, name: str) -> dict[str, str]:
        """``model_name`` for the card (``model-index`` requires one), unless the caller's metadata names it."""
        return {} if (self.card_metadata or {}).get("model_name") else {"model_name": name}

    def push_to_hub(
        self,
        repo_id: str,
        *,
        commit_message: str | None = None,
        private: bool | None = None,
        token: str | None = None,
        revision: str | None = None,
        create_pr: bool = False,
        tags: list[str] | None = None,
        **save_kwargs: Any,
    ):
        """Upload weights, config and *this library's* card (transformers' own push would replace the card
        with its generic one)."""
        from huggingface_hub import HfApi

        api = HfApi(token=token)
        repo_id = api.create_repo(repo_id, private=private, exist_ok=True).repo_id
        with tempfile.TemporaryDirectory() as folder:
            self.save_pretrained(folder, **save_kwargs)
            # the card again, named after the repository instead of the temporary folder
            known = {**self.model_card_data(), **(self.card_metadata or {})}.get("tags") or []
            extra_tags = {"tags": [*known, *tags]} if tags else {}
            card = self.create_model_card(**self._default_model_name(repo_id.split("/")[-1]), **extra_tags)
            card.save(Path(folder) / "README.md")
            return api.upload_folder(
                repo_id=repo_id,
                folder_path=folder,
                commit_message=commit_message or "Upload model (hf_eff)",
                revision=revision,
                create_pr=create_pr,
            )
