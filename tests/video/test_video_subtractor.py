"""The method end to end on synthetic handheld pairs (ground truth known), and its input handling.

Thresholds tested (96x72 videos processed at 160 px): every matched background frame within 1 frame of the true
viewpoint, mask F1 >= 0.85 (colour), windowed matching equal to brute force. MOG2 / KNN reach F1 ~ 0.1 on the
same kind of video (see the benchmark).
"""

import cv2
import numpy as np
import pytest

from hf_eff.video import (
    BackgroundSubtractor,
    SubtractorSettings,
    make_handheld_pair,
    mask_scores,
    read_video,
    write_video,
)


def _subtractor(**overrides):
    return BackgroundSubtractor(working_size=160, **overrides)


@pytest.fixture(scope="module")
def result(small_pair):
    cv2.setRNGSeed(0)
    return _subtractor()(small_pair.foreground, small_pair.background)


def test_matches_are_within_one_frame_and_masks_are_accurate(small_pair, result):
    assert np.abs(result.matches - small_pair.true_matches).max() <= 1
    assert mask_scores(result.masks, small_pair.masks)["f1"] >= 0.85
    assert result.masks.shape == small_pair.masks.shape and result.masks.dtype == bool
    # windowed: n * (2 * window + 1) alignments at most, far fewer than n * m
    assert result.stats["verifications"] <= 24 * 5 < 24 * 30
    assert set(result.alignment) <= {"features", "chained"}  # chained: the anchor's fit, carried to a neighbour


def test_windowed_matching_agrees_with_brute_force():
    pair = make_handheld_pair(12, 15, height=72, width=96, seed=1)
    windowed = _subtractor()(pair.foreground, pair.background, return_frames=False)
    brute = _subtractor(matching="brute-force")(pair.foreground, pair.background, return_frames=False)
    assert brute.stats["verifications"] == 12 * 15
    # windowed scores chain each candidate's homography from one fit per frame; brute force fits every pair
    assert np.abs(windowed.matches - brute.matches).max() <= 1
    assert mask_scores(windowed.masks, pair.masks)["f1"] == pytest.approx(
        mask_scores(brute.masks, pair.masks)["f1"], abs=0.02
    )
    # 15 background frames over the whole sweep are ~27 px apart: the best-aligning frame may be 2 from the nearest pose
    assert np.abs(windowed.matches - pair.true_matches).max() <= 2


def test_output_is_the_frame_with_background_zeroed_exactly_where_the_mask_is_zero(small_pair, result):
    rgba = result.foreground
    assert rgba.shape == (*small_pair.foreground.shape[:3], 4) and rgba.dtype == np.uint8
    np.testing.assert_array_equal(rgba[..., :3], small_pair.foreground)
    np.testing.assert_array_equal(rgba[..., 3] == 255, result.masks)
    np.testing.assert_array_equal(rgba[..., 3] == 0, ~result.masks)
    plan = _subtractor().plan(small_pair.foreground, small_pair.background)
    frame = next(iter(_subtractor().render(plan, small_pair.foreground)))
    np.testing.assert_array_equal(frame.foreground[~frame.mask], 0)
    np.testing.assert_array_equal(frame.foreground[frame.mask], small_pair.foreground[0][frame.mask])


def test_homographies_agree_with_the_true_camera_motion(small_pair, result):
    # points spread over the frame, not its corners (a fit that also sees the mid-ground extrapolates worst there)
    points = np.array([[24, 18, 1], [72, 18, 1], [72, 54, 1], [24, 54, 1], [48, 36, 1]], dtype=float).T
    errors = []
    for i, j in enumerate(result.matches):
        estimated = result.homographies[i] @ points
        true = small_pair.true_alignment(i, j) @ points
        errors.append(np.linalg.norm(estimated[:2] / estimated[2] - true[:2] / true[2], axis=0).mean())
    assert np.median(errors) < 0.75 and max(errors) < 2.0, np.round(errors, 2)


def test_file_inputs_stream_to_output_videos(tmp_path, small_pair):
    fg = write_video(tmp_path / "fg.mkv", small_pair.foreground, fps=10)
    bg = write_video(tmp_path / "bg.mkv", small_pair.background, fps=10)
    out, masks = tmp_path / "out" / "object.mkv", tmp_path / "masks.mkv"
    result = _subtractor()(str(fg), bg, output_video=out, mask_video=masks, return_frames=False)
    assert result.foreground is None
    assert mask_scores(result.masks, small_pair.masks)["f1"] >= 0.85
    written = read_video(out)
    assert written.shape == small_pair.foreground.shape
    assert (written[~result.masks] == 0).all()  # lossless FFV1: zeroed exactly where the mask is 0
    np.testing.assert_array_equal(read_video(masks)[..., 0] > 127, result.masks)


def test_background_at_another_resolution(small_pair):
    bigger = np.stack([cv2.resize(f, (192, 144), interpolation=cv2.INTER_LINEAR) for f in small_pair.background])
    result = _subtractor()(small_pair.foreground, bigger, return_frames=False)
    assert np.abs(result.matches - small_pair.true_matches).max() <= 1
    assert mask_scores(result.masks, small_pair.masks)["f1"] >= 0.85
    # homographies map background pixels (192x144) onto foreground pixels (96x72)
    i, j = 10, result.matches[10]
    expected = small_pair.true_alignment(i, j) @ np.diag([0.5, 0.5, 1.0])
    point = np.array([100.0, 70.0, 1.0])
    a, b = result.homographies[i] @ point, expected @ point
    assert np.linalg.norm(a[:2] / a[2] - b[:2] / b[2]) < 1.5


def test_different_aspect_ratio_is_rejected(small_pair):
    portrait = np.ascontiguousarray(small_pair.background.transpose(0, 2, 1, 3))
    with pytest.raises(ValueError, match="aspect ratios differ"):
        _subtractor()(small_pair.foreground, portrait)


def test_grayscale_foreground_with_colour_background_compares_lightness(small_pair):
    gray = np.stack([cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in small_pair.foreground])
    gray_background = np.stack([cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in small_pair.background])
    mixed = _subtractor()(gray, small_pair.background, return_frames=False)
    both_gray = _subtractor()(gray, gray_background, return_frames=False)
    f1_mixed = mask_scores(mixed.masks, small_pair.masks)["f1"]
    assert f1_mixed >= 0.6  # lightness only: weaker than colour, but the colour of the background does not hurt
    assert f1_mixed == pytest.approx(mask_scores(both_gray.masks, small_pair.masks)["f1"], abs=0.05)
    assert np.abs(mixed.matches - small_pair.true_matches).max() <= 1


def test_single_frame_videos(small_pair):
    one = _subtractor()(small_pair.foreground[5:6], small_pair.background)
    assert abs(one.matches[0] - small_pair.true_matches[5]) <= 1
    assert mask_scores(one.masks, small_pair.masks[5:6])["f1"] >= 0.85
    single_background = small_pair.background[small_pair.true_matches[5]][None]
    both = _subtractor()(small_pair.foreground[5:6], single_background)
    assert both.matches.tolist() == [0]
    assert mask_scores(both.masks, small_pair.masks[5:6])["f1"] >= 0.85


def test_ecc_fallback_when_no_feature_fit_is_trusted(small_pair):
    result = _subtractor(min_inliers=10**6)(small_pair.foreground, small_pair.background, return_frames=False)
    assert set(result.alignment) == {"ecc"} and result.stats["verifications"] > 0
    assert mask_scores(result.masks, small_pair.masks)["f1"] >= 0.8


def test_robust_to_strong_exposure_changes():
    pair = make_handheld_pair(24, 30, height=72, width=96, seed=2, exposure=0.3, exposure_drift=0.3)
    result = _subtractor()(pair.foreground, pair.background, return_frames=False)
    assert mask_scores(result.masks, pair.masks)["f1"] >= 0.8


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"matching": "greedy"}, "matching must be one of"),
        ({"verify_window": -1}, "verify_window"),
        ({"threshold": "otsu"}, "threshold must be a number or 'auto'"),
        ({"threshold": 300.0}, "threshold must be in"),
        ({"working_size": 8}, "working_size"),
        ({"min_inliers": 2}, "min_inliers"),
        ({"alignment_fallback": "none"}, "fallback"),
        ({"min_area": 1.5}, "min_area"),
    ],
)
def test_invalid_settings_raise_value_error(overrides, message):
    with pytest.raises(ValueError, match=message):
        SubtractorSettings(**overrides)


def test_unknown_setting_raises_type_error():
    with pytest.raises(TypeError, match="unknown setting"):
        BackgroundSubtractor(window=3)
