"""Shared synthetic video pairs for the video tests (small: 96x72 frames, processed at 160 px)."""

import pytest


@pytest.fixture(scope="session")
def small_pair():
    from hf_eff.video import make_handheld_pair

    return make_handheld_pair(24, 30, height=72, width=96, seed=0)


@pytest.fixture(autouse=True)
def _opencv_seed():
    """RANSAC draws from OpenCV's global generator: fix it so results do not depend on test order."""
    import cv2

    cv2.setRNGSeed(0)
    yield
