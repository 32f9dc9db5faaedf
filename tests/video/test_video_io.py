"""Video input normalisation, validation errors and the file round trip."""

import numpy as np
import pytest
from PIL import Image

from hf_eff.video import VideoReader, VideoWriter, read_video, write_video


def _frames(t=3, h=10, w=12, c=3, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (t, h, w, c), dtype=np.uint8)


def test_array_and_list_inputs_give_the_same_rgb_frames():
    video = _frames()
    from_array = read_video(video)
    from_list = read_video(list(video))
    from_pil = read_video([Image.fromarray(f) for f in video])
    assert from_array.dtype == np.uint8 and from_array.shape == (3, 10, 12, 3)
    np.testing.assert_array_equal(from_array, video)
    np.testing.assert_array_equal(from_list, video)
    np.testing.assert_array_equal(from_pil, video)


def test_grayscale_float_and_alpha_are_normalised():
    gray = _frames(c=1)[..., 0]
    rgb = read_video(gray)  # (T, H, W) grayscale
    assert rgb.shape == (3, 10, 12, 3)
    assert (rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 1] == gray).all()
    assert VideoReader(gray).info.is_grayscale and not VideoReader(_frames()).info.is_grayscale
    np.testing.assert_array_equal(read_video(_frames(c=1)), rgb)
    floats = _frames().astype(np.float32) / 255
    np.testing.assert_array_equal(read_video(floats), _frames())
    rgba = _frames(c=4)
    np.testing.assert_array_equal(read_video(rgba), rgba[..., :3])


@pytest.mark.parametrize(
    ("source", "error", "message"),
    [
        (np.zeros((0, 8, 8, 3), np.uint8), ValueError, "no frames"),
        ([], ValueError, "no frames"),
        (np.zeros((8, 8, 3), np.uint8), ValueError, "ambiguous"),
        (np.zeros((2, 8, 8, 5), np.uint8), ValueError, "expected frames of shape"),
        (np.full((2, 8, 8, 3), 1.5, np.float32), ValueError, r"\[0, 1\]"),
        (np.zeros((2, 8, 8, 3), np.int32), TypeError, "dtype"),
        ([np.zeros((8, 8, 3), np.uint8), np.zeros((9, 8, 3), np.uint8)], ValueError, "frame 1 has shape"),
        ("definitely/not/here.mp4", FileNotFoundError, "no such video file"),
        (3.0, TypeError, "expected a numpy array"),
    ],
)
def test_bad_inputs_raise_clear_errors(source, error, message):
    with pytest.raises(error, match=message):
        read_video(source, name="background_video")


def test_error_names_the_argument():
    with pytest.raises(ValueError, match="^background_video: "):
        VideoReader([], name="background_video")


def test_unreadable_file_raises_value_error(tmp_path):
    path = tmp_path / "broken.mp4"
    path.write_bytes(b"this is not a video" * 10)
    with pytest.raises(ValueError, match="cannot read"):
        VideoReader(path, name="video")


@pytest.mark.parametrize("suffix", [".mkv", ".mp4"])
def test_write_then_stream_back(tmp_path, suffix):
    video = np.repeat(np.linspace(0, 255, 33, dtype=np.uint8)[None, None, :, None], 24, axis=1)
    video = np.stack([np.roll(video[0], 3 * t, axis=1) for t in range(5)])  # 5 frames 24x33, odd width
    path = write_video(tmp_path / f"v{suffix}", video, fps=12)
    reader = VideoReader(path)
    assert reader.info.fps == pytest.approx(12)
    frames = list(reader)
    assert len(frames) == 5 and len(list(reader)) == 5  # re-iterable: a second pass decodes again
    h, w = frames[0].shape[:2]
    assert (h, w) == ((24, 33) if suffix == ".mkv" else (24, 34))  # H.264 pads to even sizes
    error = np.abs(np.stack(frames)[:, :, :33].astype(int) - video.astype(int)).mean()
    assert error < (1.0 if suffix == ".mkv" else 6.0)


def test_opencv_backend_reads_the_same_frames(tmp_path):
    video = _frames(t=4, h=16, w=16)
    path = write_video(tmp_path / "v.mkv", video)
    np.testing.assert_array_equal(read_video(path, backend="opencv"), read_video(path, backend="pyav"))


def test_writer_rejects_bad_paths_and_empty_videos(tmp_path):
    with pytest.raises(ValueError, match="must end with"):
        VideoWriter(tmp_path / "v.gif")
    with pytest.raises(ValueError, match="no frames"):
        write_video(tmp_path / "empty.mkv", [])
    assert not (tmp_path / "empty.mkv").exists()


def test_importing_the_engine_loads_neither_opencv_pyav_nor_transformers():
    import subprocess
    import sys

    code = (
        "import sys, hf_eff, hf_eff.video; print(sorted(m for m in ('cv2', 'av', 'transformers') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_a_text_file_is_not_a_video(tmp_path):
    # FFmpeg's "tty" demuxer renders text as ANSI art: without a check, a typo'd path would yield masks
    notes = tmp_path / "notes.txt"
    notes.write_text("\n".join(f"line {k}: some text that is not a video" for k in range(200)))
    for backend in ("pyav", "opencv"):
        with pytest.raises(ValueError, match=r"^background_video: .*notes.txt is not a video"):
            VideoReader(notes, name="background_video", backend=backend)


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_float_frames_in_unit_range_are_scaled_and_others_refused(dtype):
    frames = np.linspace(0, 1, 2 * 4 * 4 * 3).reshape(2, 4, 4, 3).astype(dtype)
    assert read_video(frames).dtype == np.uint8 and read_video(frames).max() == 255
    for bad, message in ((frames * 255, r"\[0, 1\]"), (frames - 0.5, r"\[0, 1\]"), (frames * np.nan, r"\[0, 1\]")):
        with pytest.raises(ValueError, match=message):
            read_video(bad, name="video")
    with pytest.raises(TypeError, match="uint8 or float"):
        read_video(frames.astype(bool), name="video")
