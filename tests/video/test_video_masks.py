"""Differencing building blocks: the robust exposure fit, the shift-tolerant difference and the covered region."""

import cv2
import numpy as np

from hf_eff.video.alignment import valid_region
from hf_eff.video.masks import MaskSettings, difference_image, fit_exposure


def test_exposure_fit_recovers_gain_and_offset_despite_outliers():
    rng = np.random.default_rng(0)
    source = rng.uniform(0, 255, (3, 2000))
    target = (
        source * np.array([[1.2], [0.9], [1.0]]) + np.array([[-10.0], [5.0], [0.0]]) + rng.normal(0, 1, source.shape)
    )
    target[:, :300] = 255  # an object: 15% of the samples disagree
    gain, offset = fit_exposure(source, target)
    np.testing.assert_allclose(gain, [1.2, 0.9, 1.0], atol=0.02)
    np.testing.assert_allclose(offset, [-10, 5, 0], atol=2.0)


def test_difference_tolerates_a_one_pixel_shift_but_not_an_object():
    rng = np.random.default_rng(1)
    image = cv2.GaussianBlur(rng.integers(0, 256, (60, 80, 3), dtype=np.uint8), (0, 0), 3.0)
    image = cv2.normalize(image, None, 0, 255, cv2.NORM_MINMAX)  # smooth texture with full contrast
    shifted = np.roll(image, 1, axis=1)
    shifted[20:35, 30:50] = (200, 90, 200)  # an object the background does not have
    valid = np.ones((60, 80), bool)
    valid[:, :2] = False
    difference = difference_image(shifted, image, valid, MaskSettings(shift_tolerance=1))
    assert np.median(difference[5:15, 5:75]) == 0  # the shift is absorbed
    assert difference[22:33, 32:48].min() > 20  # the object is not
    assert (difference[:, :2] == 0).all()  # nothing outside the covered region
    strict = difference_image(shifted, image, valid, MaskSettings(shift_tolerance=0))
    assert np.median(strict[5:15, 5:75]) > 0


def test_valid_region_is_the_warped_frame():
    h = np.array([[1.0, 0.05, 10.0], [-0.03, 1.0, -5.0], [0.0, 0.0, 1.0]])
    polygon = valid_region(h, (80, 60), border=0)
    warped = cv2.warpPerspective(np.ones((60, 80), np.uint8), h, (80, 60), flags=cv2.INTER_NEAREST) > 0
    assert (polygon != warped).mean() < 0.03  # the same region up to the boundary pixels
    eroded = valid_region(h, (80, 60), border=3)
    assert eroded.sum() < polygon.sum() and not (eroded & ~polygon).any()
