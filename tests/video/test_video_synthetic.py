"""The synthetic handheld-pair generator and its ground truth."""

import cv2
import numpy as np
import pytest

from hf_eff.video import make_handheld_pair


def test_shapes_and_ground_truth(small_pair):
    p = small_pair
    assert p.foreground.shape == (24, 72, 96, 3) and p.background.shape == (30, 72, 96, 3)
    assert p.foreground.dtype == p.background.dtype == np.uint8
    assert p.masks.shape == (24, 72, 96) and p.masks.dtype == bool
    fractions = p.masks.mean(axis=(1, 2))
    assert (fractions > 0.02).all() and (fractions < 0.25).all()
    assert (np.diff(p.true_matches) >= 0).all() and p.true_matches.min() >= 0 and p.true_matches.max() < 30
    assert (np.diff(p.foreground_path) >= 0).all()


def test_deterministic_given_the_seed():
    a = make_handheld_pair(4, 5, height=24, width=32, seed=7)
    b = make_handheld_pair(4, 5, height=24, width=32, seed=7)
    c = make_handheld_pair(4, 5, height=24, width=32, seed=8)
    np.testing.assert_array_equal(a.foreground, b.foreground)
    np.testing.assert_array_equal(a.masks, b.masks)
    assert not np.array_equal(a.foreground, c.foreground)


def test_true_alignment_registers_the_background_plane(small_pair):
    p = small_pair
    i = 12
    j = p.true_matches[i]
    aligned = cv2.warpPerspective(p.background[j], p.true_alignment(i, j), (96, 72))
    misaligned = p.background[min(j + 3, 29)]
    covered = cv2.warpPerspective(np.ones((72, 96), np.uint8), p.true_alignment(i, j), (96, 72)) > 0
    keep = covered & ~cv2.dilate(p.masks[i].astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
    error = np.median(np.abs(aligned.astype(int) - p.foreground[i].astype(int))[keep])
    wrong = np.median(np.abs(misaligned.astype(int) - p.foreground[i].astype(int))[keep])
    assert error < 0.5 * wrong


def test_pauses_hold_the_camera():
    p = make_handheld_pair(12, 10, height=24, width=32, pauses=2, seed=3)
    assert (np.diff(p.foreground_path) == 0).sum() >= 4


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"num_foreground_frames": 0}, "num_foreground_frames"),
        ({"height": 8}, "at least 16"),
        ({"shake": -1.0}, "shake"),
        ({"object_size": 0.0}, "object_size"),
        ({"num_foreground_frames": 4, "pauses": 3}, "does not fit"),
    ],
)
def test_invalid_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        make_handheld_pair(
            **{"num_foreground_frames": 4, "num_background_frames": 5, "height": 24, "width": 32, **kwargs}
        )
