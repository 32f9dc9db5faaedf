"""``pipeline("video-background-subtraction")``: construction, call forms, outputs, save / reload, errors."""

import numpy as np
import pytest
from PIL import Image
from transformers import pipeline

import hf_eff
from hf_eff.video import make_handheld_pair, mask_scores


@pytest.fixture(scope="module")
def pair():
    return make_handheld_pair(16, 20, height=72, width=96, seed=5)


@pytest.fixture(scope="module")
def pipe():
    model = hf_eff.VideoBackgroundSubtractionModel(hf_eff.VideoBackgroundSubtractionConfig(working_size=160))
    return pipeline("video-background-subtraction", model=model, device="cpu")


def test_pipeline_factory_builds_the_registered_class(pipe):
    assert isinstance(pipe, hf_eff.VideoBackgroundSubtractionPipeline)
    assert pipe.device.type == "cpu"


def test_call_returns_per_frame_masks_foreground_and_matches(pipe, pair):
    import cv2

    cv2.setRNGSeed(0)
    out = pipe(pair.foreground, background_video=pair.background)
    assert len(out["masks"]) == len(out["foreground"]) == len(out["matches"]) == 16
    assert out["masks"][0].mode == "L" and out["masks"][0].size == (96, 72)
    assert out["foreground"][0].mode == "RGBA"
    masks = np.stack([np.asarray(m) > 127 for m in out["masks"]])
    assert mask_scores(masks, pair.masks)["f1"] >= 0.85
    assert np.abs(np.array(out["matches"]) - pair.true_matches).max() <= 1
    rgba = np.asarray(out["foreground"][3])
    np.testing.assert_array_equal(rgba[..., 3] > 0, masks[3])
    np.testing.assert_array_equal(rgba[..., :3], pair.foreground[3])
    assert np.array(out["homographies"]).shape == (16, 3, 3)
    assert set(out["alignment"]) <= {"features", "chained", "ecc", "prior"} and out["stats"]["frames"] == 16


def test_dict_input_numpy_output_and_per_call_overrides(pipe, pair):
    inputs = {"video": list(pair.foreground), "background_video": pair.background}
    out = pipe(inputs, output_format="numpy", return_foreground=False, verify_window=1)
    assert out["masks"].shape == (16, 72, 96) and out["masks"].dtype == bool
    assert "foreground" not in out
    assert out["stats"]["verifications"] <= 16 * 3  # window 1 -> at most 3 candidates per frame
    assert pipe.model.config.verify_window == 2  # the override did not change the model


def test_list_of_pairs_is_a_batch(pipe, pair):
    inputs = {"video": pair.foreground[:4], "background_video": pair.background[:6]}
    outputs = pipe([inputs, inputs], output_format="numpy", return_foreground=False)
    assert isinstance(outputs, list) and len(outputs) == 2
    np.testing.assert_array_equal(outputs[0]["masks"], outputs[1]["masks"])


def test_output_video_is_written(pipe, pair, tmp_path):
    out = pipe(pair.foreground, background_video=pair.background, output_video=tmp_path / "object.mp4")
    assert out["output_video"] == str(tmp_path / "object.mp4") and (tmp_path / "object.mp4").stat().st_size > 0


def test_task_name_alone_builds_the_parameter_free_model():
    # before: transformers raised KeyError: 'default' (a task without a default repository)
    pipe = pipeline("video-background-subtraction", device="cpu")
    assert isinstance(pipe, hf_eff.VideoBackgroundSubtractionPipeline)
    assert pipe.model.config.to_settings() == hf_eff.BackgroundSubtractor().settings


def test_direct_construction_uses_default_settings():
    pipe = hf_eff.VideoBackgroundSubtractionPipeline(device="cpu")
    assert pipe.model.config.to_settings() == hf_eff.BackgroundSubtractor().settings


def test_invalid_config_and_arguments(pipe, pair):
    with pytest.raises(ValueError, match="matching must be one of"):
        hf_eff.VideoBackgroundSubtractionConfig(matching="greedy")
    with pytest.raises(TypeError, match="unknown argument"):
        pipe(pair.foreground, background_video=pair.background, window=3)
    with pytest.raises(ValueError, match="exactly the keys"):
        pipe({"video": pair.foreground})
    with pytest.raises(ValueError, match="not both"):
        pipe({"video": pair.foreground, "background_video": pair.background}, background_video=pair.background)
    with pytest.raises(ValueError, match="output_format"):
        pipe(pair.foreground, background_video=pair.background, output_format="tensor")
    with pytest.raises(ValueError, match="^background_video: the video has no frames"):
        pipe(pair.foreground, background_video=np.zeros((0, 72, 96, 3), np.uint8))
    with pytest.raises(FileNotFoundError, match="no such video file"):
        pipe("missing.mp4", background_video=pair.background)


def test_a_pil_image_is_a_one_frame_video(pipe, pair):
    out = pipe(Image.fromarray(pair.foreground[5]), background_video=pair.background, output_format="numpy")
    assert out["masks"].shape == (1, 72, 96)
    assert abs(out["matches"][0] - pair.true_matches[5]) <= 1


def test_a_dataset_of_pairs_is_processed_to_files(pipe, pair, tmp_path):
    import datasets

    from hf_eff.video import read_video, write_video

    write_video(tmp_path / "fg.mkv", pair.foreground[:4])
    write_video(tmp_path / "bg.mkv", pair.background[:6])
    rows = {"video": [str(tmp_path / "fg.mkv")] * 2, "background_video": [str(tmp_path / "bg.mkv")] * 2}
    summaries = pipe(
        datasets.Dataset.from_dict({**rows, "name": ["x", "y"]}),
        output_dir=tmp_path / "out",
        num_workers=0,
        progress=False,
        verify_window=1,
    )
    assert [s["name"] for s in summaries] == ["x", "y"] and summaries[0]["matches"] == summaries[1]["matches"]
    assert read_video(tmp_path / "out" / "y_masks.mp4").shape[0] == 4
    with pytest.raises(ValueError, match="output_dir is required"):
        pipe(datasets.Dataset.from_dict(rows))
    with pytest.raises(ValueError, match="missing \\['background_video'\\]"):
        pipe(datasets.Dataset.from_dict({"video": rows["video"]}), output_dir=tmp_path)
    with pytest.raises(ValueError, match="omit background_video"):
        pipe(str(tmp_path), background_video=pair.background, output_dir=tmp_path)
