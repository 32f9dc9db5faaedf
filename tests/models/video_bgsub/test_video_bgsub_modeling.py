"""The parameter-free video background-subtraction model: config derived from the engine's settings, save / load."""

import dataclasses

import pytest
from transformers import AutoConfig, AutoModel, pipeline

import hf_eff
from hf_eff.video import SubtractorSettings
from hf_eff.video.masks import MaskSettings


def test_config_fields_are_the_settings_fields_with_their_defaults():
    config = hf_eff.VideoBackgroundSubtractionConfig()
    settings = {f.name: f.default for f in dataclasses.fields(SubtractorSettings)}
    assert {f.name for f in dataclasses.fields(MaskSettings)} <= set(settings)
    config_fields = {f.name for f in dataclasses.fields(hf_eff.VideoBackgroundSubtractionConfig)}
    assert set(settings) <= config_fields
    assert config.to_settings() == SubtractorSettings()
    assert all(getattr(config, name) == (list(d) if isinstance(d, tuple) else d) for name, d in settings.items())


def _changed(name, value):
    special = {
        "matching": "brute-force",
        "alignment_fallback": "prior",
        "threshold": 30.0,
        "max_step": 5,
        "refinement": "none",
    }
    if name in special:
        return special[name]
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1
    if isinstance(value, float):
        return value / 2
    if isinstance(value, tuple):
        return tuple(v + 2 for v in value)
    raise AssertionError(f"no changed value for setting {name}={value!r}: extend this test")


def test_save_and_load_keeps_every_setting(tmp_path):
    changed = {f.name: _changed(f.name, f.default) for f in dataclasses.fields(SubtractorSettings)}
    config = hf_eff.VideoBackgroundSubtractionConfig(**changed)
    assert all(getattr(config.to_settings(), k) != getattr(SubtractorSettings(), k) for k in changed)
    hf_eff.VideoBackgroundSubtractionModel(config).save_pretrained(tmp_path)
    assert AutoConfig.from_pretrained(tmp_path).to_settings() == SubtractorSettings(**changed)


def test_save_and_reload_through_auto_classes(tmp_path):
    config = hf_eff.VideoBackgroundSubtractionConfig(verify_window=3, threshold=25.0, descriptor_size=(16, 12))
    hf_eff.VideoBackgroundSubtractionModel(config).save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").exists() and (tmp_path / "README.md").exists()
    reloaded = AutoConfig.from_pretrained(tmp_path)
    assert isinstance(reloaded, hf_eff.VideoBackgroundSubtractionConfig)
    assert reloaded.to_settings() == config.to_settings()
    assert isinstance(AutoModel.from_pretrained(tmp_path), hf_eff.VideoBackgroundSubtractionModel)
    pipe = pipeline("video-background-subtraction", model=str(tmp_path), device="cpu")
    assert pipe.model.config.verify_window == 3 and pipe.model.config.threshold == 25.0


def test_invalid_setting_raises_with_the_engine_message():
    with pytest.raises(ValueError, match="matching must be one of"):
        hf_eff.VideoBackgroundSubtractionConfig(matching="greedy")
    with pytest.raises(ValueError, match="min_area must be a fraction"):
        hf_eff.VideoBackgroundSubtractionConfig(min_area=2.0)


def test_old_import_path_warns_and_still_works():
    import hf_eff.pipelines.video_background_subtraction as old

    for name in ("VideoBackgroundSubtractionConfig", "VideoBackgroundSubtractionModel"):
        with pytest.warns(DeprecationWarning, match="hf_eff.models.video_bgsub"):
            assert getattr(old, name) is getattr(hf_eff, name)
    with pytest.raises(AttributeError):
        old.NoSuchName  # noqa: B018
