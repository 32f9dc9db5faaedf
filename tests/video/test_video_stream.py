"""Streaming (``matching="online"``): one pass, frames handled as they arrive, one background index for many
videos; and the local (flow) refinement on the parallax mode of the generator."""

import cv2
import numpy as np
import pytest

from hf_eff.video import BackgroundSubtractor, make_handheld_pair, mask_scores
from hf_eff.video.matching import OnlineMatcher


def _subtractor(**overrides):
    return BackgroundSubtractor(working_size=160, **overrides)


def test_stream_matches_and_masks_like_the_two_pass_method(small_pair):
    subtractor = _subtractor(matching="online")
    index = subtractor.index(small_pair.background)
    streamed = list(subtractor.stream(small_pair.foreground, index))
    masks = np.stack([r.mask for r in streamed])
    matches = np.array([r.match for r in streamed])
    assert np.abs(matches - small_pair.true_matches).max() <= 1
    f1 = mask_scores(masks, small_pair.masks)["f1"]
    assert f1 >= 0.85
    cv2.setRNGSeed(0)
    two_pass = _subtractor()(small_pair.foreground, index, return_frames=False)
    assert f1 == pytest.approx(mask_scores(two_pass.masks, small_pair.masks)["f1"], abs=0.03)
    # __call__ with matching="online" streams too, and counts its work
    result = subtractor(small_pair.foreground, index, return_frames=False)
    assert result.stats["strategy"] == "online" and result.stats["verifications"] <= 24 * 5


def test_stream_pulls_frames_one_at_a_time_from_a_generator(small_pair):
    pulled = []

    def camera():  # a source of unknown length, like a camera
        for k, frame in enumerate(small_pair.foreground):
            pulled.append(k)
            yield frame

    subtractor = _subtractor(matching="online")
    stream = subtractor.stream(camera(), subtractor.index(small_pair.background))
    first = next(stream)
    assert first.index == 0 and len(pulled) == 1  # the first mask is out before the second frame is read
    second = next(stream)
    assert second.index == 1 and len(pulled) == 2
    assert first.mask.shape == small_pair.masks.shape[1:]


def test_stream_rejects_frames_that_change_size(small_pair):
    frames = iter([small_pair.foreground[0], small_pair.foreground[1][:-8]])
    subtractor = _subtractor(matching="online")
    with pytest.raises(ValueError, match="frame 1 has shape"):
        list(subtractor.stream(frames, subtractor.index(small_pair.background)))


def test_online_matcher_searches_the_allowed_band_and_falls_back_to_the_anchor():
    background = np.eye(10, dtype=np.float32)  # descriptor j is unit vector j
    matcher = OnlineMatcher(background, window=1, max_step=2, max_back=0)
    anchor, candidates = matcher.candidates(background[6])
    assert anchor == 6 and candidates == [5, 6, 7]  # first frame: the whole video is searched
    assert matcher.choose(candidates, [0.3, 0.2, 0.1], anchor) == 7
    anchor, candidates = matcher.candidates(background[0])  # a descriptor outside the band cannot pull it back
    assert all(7 <= j <= 9 for j in candidates)
    assert matcher.choose(candidates, [float("inf")] * len(candidates), anchor) == anchor
    assert matcher.verifications == 3 + len(candidates)


def test_flow_refinement_aligns_two_planes_at_different_depths():
    pair = make_handheld_pair(16, 20, height=120, width=160, seed=0, near_plane_parallax=0.5, pass_offset=10.0)
    scores = {}
    for refinement in ("none", "flow"):
        cv2.setRNGSeed(0)
        result = _subtractor(refinement=refinement)(pair.foreground, pair.background, return_frames=False)
        scores[refinement] = mask_scores(result.masks, pair.masks)
    # the homography aligns one plane; the other's parallax is false foreground until the flow removes it
    assert scores["flow"]["precision"] >= scores["none"]["precision"] + 0.08, scores
    assert scores["flow"]["f1"] >= 0.87, scores


def test_two_threads_give_the_same_results_in_order(small_pair):
    subtractor = _subtractor(matching="online")
    index = subtractor.index(small_pair.background)
    cv2.setRNGSeed(0)  # RANSAC draws from OpenCV's generator: both runs start from the same state
    one = list(subtractor.stream(small_pair.foreground[:8], index))
    cv2.setRNGSeed(0)
    two = list(subtractor.stream(small_pair.foreground[:8], index, threads=2))
    assert [r.index for r in two] == list(range(8))
    for a, b in zip(one, two):
        assert a.match == b.match
        np.testing.assert_array_equal(a.mask, b.mask)
    with pytest.raises(ValueError, match="threads must be 1 or 2"):
        next(subtractor.stream(small_pair.foreground, index, threads=3))
