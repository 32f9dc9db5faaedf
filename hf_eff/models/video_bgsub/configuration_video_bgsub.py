"""Configuration of the parameter-free video background-subtraction model.

Its fields *are* :class:`hf_eff.video.SubtractorSettings` (which documents each one, mask fields included through
:class:`hf_eff.video.masks.MaskSettings`): they are read from that dataclass, not typed again, so the engine, the
config and the pipeline's per-call overrides cannot drift apart. ``PreTrainedConfig`` turns each subclass into a
kw_only dataclass from the annotations in its class body, so the generated base class below receives the settings'
annotations and defaults in its namespace *before* it is created; the public class then adds the conversions.
"""

import types
from dataclasses import MISSING, Field, fields
from typing import Any

from transformers import PreTrainedConfig

from hf_eff.video.subtractor import SubtractorSettings


SETTING_NAMES: tuple[str, ...] = tuple(f.name for f in fields(SubtractorSettings))


def _config_field(setting: Field) -> tuple[Any, Any]:
    """(annotation, default) of one setting as a config field. JSON has no tuples: a tuple-valued setting is stored
    as a list, so its annotation admits both."""
    if setting.default is MISSING:
        raise TypeError(f"SubtractorSettings.{setting.name} needs a plain default to become a config field")
    annotation = setting.type | list if isinstance(setting.default, tuple) else setting.type
    return annotation, setting.default


def _declare_settings(namespace: dict[str, Any]) -> None:
    declared = {f.name: _config_field(f) for f in fields(SubtractorSettings)}
    namespace["__annotations__"] = {name: annotation for name, (annotation, _) in declared.items()}
    namespace.update({name: default for name, (_, default) in declared.items()})
    namespace["__module__"] = __name__


# a dataclass base holding exactly the settings' fields (not registered anywhere: it has no model_type)
_SubtractorSettingsFields = types.new_class(
    "_SubtractorSettingsFields", (PreTrainedConfig,), exec_body=_declare_settings
)


class VideoBackgroundSubtractionConfig(_SubtractorSettingsFields):
    r"""Hyper-parameters of two-video background subtraction: one field per :class:`hf_eff.video.SubtractorSettings`
    field, with the same defaults and the same validation.

    Example:

    ```python
    >>> config = VideoBackgroundSubtractionConfig(verify_window=3, threshold=30.0)
    >>> model = VideoBackgroundSubtractionModel(config)
    ```
    """

    model_type = "hf_eff_video_bgsub"

    def __post_init__(self, **kwargs):
        for name in SETTING_NAMES:  # JSON round trip: tuples are stored as lists
            if isinstance(getattr(self, name), tuple):
                setattr(self, name, list(getattr(self, name)))
        self.to_settings()  # validates every field with a clear error
        super().__post_init__(**kwargs)

    def to_settings(self, **overrides: Any) -> SubtractorSettings:
        """The engine's settings (validated), with ``overrides`` applied for one call."""
        settings = SubtractorSettings(**{name: getattr(self, name) for name in SETTING_NAMES})
        return settings.replace(**overrides) if overrides else settings


__all__ = ["SETTING_NAMES", "VideoBackgroundSubtractionConfig"]
