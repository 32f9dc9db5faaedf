"""Video input and output: one streaming reader for files, arrays and frame lists, and a writer.

Frames are always handed out one at a time as RGB ``uint8`` arrays of shape ``(H, W, 3)``, so a long video is never
held in memory at full resolution. Files are decoded with PyAV (FFmpeg; what transformers' video pipeline uses) or,
if PyAV is missing or ``backend="opencv"``, with OpenCV. Every reader can be iterated several times (files are
decoded again), which is what the two-pass subtractor does.

Accepted inputs and how they are normalised:

- a path (``str`` / ``os.PathLike``) to any video FFmpeg can decode (a file FFmpeg only reads as text is refused);
- an array ``(T, H, W, C)`` with ``C`` in {1, 3, 4} or a grayscale array ``(T, H, W)`` (a torch tensor on the CPU
  works too) of dtype ``uint8`` (0-255) or floating point with every value in ``[0, 1]`` (scaled by 255 and
  rounded); any other dtype raises :class:`TypeError`, and a float value outside ``[0, 1]`` or not finite raises
  :class:`ValueError` (nothing is clipped). A single image must be given as ``image[None]``: an
  ``(H, W, 3)`` array is rejected because it could also be a 3-frame grayscale video;
- a list or tuple of frames, each ``(H, W)``, ``(H, W, C)`` or a PIL image, all of one size.

Grayscale frames are expanded to three equal channels and an alpha channel is dropped.
"""

import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hf_eff.video._opencv import av_available, require_av, require_cv2


# FFmpeg demuxers that accept files which are not videos (text is rendered as ANSI art)
_NOT_VIDEO_FORMATS = frozenset({"tty"})
_NOT_VIDEO_CODECS = frozenset({b"ansi"})  # the same, as OpenCV's FFmpeg backend reports it (FourCC)

VideoInput = Any  # str | os.PathLike | np.ndarray | torch.Tensor | Sequence[np.ndarray | PIL.Image.Image]


def to_rgb_uint8(frame: Any, name: str = "frame") -> np.ndarray:
    """One frame as an RGB ``uint8`` array ``(H, W, 3)``; see the module docstring for what is accepted."""
    if hasattr(frame, "mode") and hasattr(frame, "convert"):  # PIL image
        frame = np.asarray(frame.convert("RGB"))
    array = _as_numpy(frame, name)
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim == 2:
        array = np.repeat(array[..., None], 3, axis=2)
    if array.ndim != 3 or array.shape[-1] not in (3, 4):
        raise ValueError(
            f"{name}: expected a frame of shape (H, W), (H, W, 1), (H, W, 3) or (H, W, 4), got {array.shape}"
        )
    if array.shape[0] < 1 or array.shape[1] < 1:
        raise ValueError(f"{name}: frame has an empty dimension, shape {array.shape}")
    return np.ascontiguousarray(_to_uint8(array[..., :3], name))


def _as_numpy(value: Any, name: str) -> np.ndarray:
    if hasattr(value, "detach") and hasattr(value, "cpu"):  # torch tensor
        value = value.detach().cpu().numpy()
    if not isinstance(value, np.ndarray):
        raise TypeError(f"{name}: expected a numpy array, torch tensor or PIL image, got {type(value).__name__}")
    return value


def _to_uint8(array: np.ndarray, name: str) -> np.ndarray:
    if array.dtype == np.uint8:
        return array
    if np.issubdtype(array.dtype, np.floating):
        if array.size and (not np.isfinite(array).all() or array.min() < 0 or array.max() > 1):
            raise ValueError(
                f"{name}: float frames must hold values in [0, 1], got range [{array.min()}, {array.max()}]"
            )
        return np.rint(array * 255).astype(np.uint8)
    raise TypeError(f"{name}: expected uint8 or float frames in [0, 1], got dtype {array.dtype}")


@dataclass(frozen=True)
class VideoInfo:
    """What is known about a video before decoding it all (``num_frames`` may be an estimate for files)."""

    width: int
    height: int
    num_frames: int | None
    fps: float | None
    is_grayscale: bool


class VideoReader:
    """A re-iterable stream of RGB ``uint8`` frames from a file, an array or a list of frames.

    ``name`` is used in error messages (e.g. ``"background_video"``). Opening checks that the source exists, is
    decodable and has at least one frame, and reads the first frame to learn the size, so bad input fails here with
    a one-line :class:`ValueError` / :class:`FileNotFoundError` instead of half-way through a run.
    """

    def __init__(self, source: VideoInput, name: str = "video", backend: str = "auto"):
        if backend not in ("auto", "pyav", "opencv"):
            raise ValueError(f"backend must be 'auto', 'pyav' or 'opencv', got {backend!r}")
        self.name = name
        self.source = source
        self.path: Path | None = None
        self._frames: Sequence[Any] | np.ndarray | None = None
        if isinstance(source, (str, os.PathLike)):
            self.path = Path(source)
            if not self.path.is_file():
                raise FileNotFoundError(f"{name}: no such video file: {self.path}")
            self.backend = ("pyav" if av_available() else "opencv") if backend == "auto" else backend
        else:
            self._frames = self._validate_in_memory(source)
            self.backend = "memory"
        first = next(iter(self), None)
        if first is None:
            raise ValueError(f"{name}: the video has no frames")
        self.info = VideoInfo(
            width=first.shape[1],
            height=first.shape[0],
            num_frames=len(self._frames) if self._frames is not None else self._probe_num_frames(),
            fps=self._probe_fps() if self.path is not None else None,
            is_grayscale=bool((first[..., 0] == first[..., 1]).all() and (first[..., 1] == first[..., 2]).all()),
        )

    def _validate_in_memory(self, source: Any) -> Sequence[Any] | np.ndarray:
        if isinstance(source, (list, tuple)):
            if len(source) == 0:
                raise ValueError(f"{self.name}: the video has no frames (empty list)")
            return source
        if hasattr(source, "mode") and hasattr(source, "convert"):  # one PIL image = a one-frame video
            return [source]
        array = _as_numpy(source, self.name)
        if array.ndim == 3 and array.shape[-1] in (3, 4):
            raise ValueError(
                f"{self.name}: an array of shape {array.shape} is ambiguous; pass a single image as image[None] "
                "(T, H, W, C) or a grayscale video as (T, H, W, 1)"
            )
        if array.ndim not in (3, 4) or (array.ndim == 4 and array.shape[-1] not in (1, 3, 4)):
            raise ValueError(
                f"{self.name}: expected frames of shape (T, H, W, C) with C in 1, 3, 4, or (T, H, W); got {array.shape}"
            )
        if array.shape[0] == 0:
            raise ValueError(f"{self.name}: the video has no frames (shape {array.shape})")
        return array

    def __len__(self) -> int:
        if self.info.num_frames is None:
            raise TypeError(f"{self.name}: the number of frames of {self.path} is unknown until it is decoded")
        return self.info.num_frames

    def __iter__(self) -> Iterator[np.ndarray]:
        if self._frames is not None:
            size = None
            for index, frame in enumerate(self._frames):
                rgb = to_rgb_uint8(frame, f"{self.name} frame {index}")
                if size is None:
                    size = rgb.shape
                elif rgb.shape != size:
                    raise ValueError(f"{self.name}: frame {index} has shape {rgb.shape}, frame 0 has {size}")
                yield rgb
        elif self.backend == "pyav":
            yield from self._iter_pyav()
        else:
            yield from self._iter_opencv()

    def _iter_pyav(self) -> Iterator[np.ndarray]:
        av = require_av()
        try:
            container = av.open(str(self.path))
        except (av.error.FFmpegError, OSError) as error:
            raise ValueError(f"{self.name}: cannot read {self.path} as a video ({error})") from error
        with container:
            if not container.streams.video:
                raise ValueError(f"{self.name}: {self.path} has no video stream")
            stream = container.streams.video[0]
            if container.format.name in _NOT_VIDEO_FORMATS:
                # FFmpeg renders any text file as a video of ANSI characters: a typo'd path must not yield masks
                raise ValueError(
                    f"{self.name}: {self.path} is not a video (FFmpeg reads it as {container.format.long_name!r})"
                )
            stream.thread_type = "AUTO"
            try:
                for frame in container.decode(stream):
                    yield frame.to_ndarray(format="rgb24")
            except av.error.FFmpegError as error:
                raise ValueError(f"{self.name}: error while decoding {self.path} ({error})") from error

    def _iter_opencv(self) -> Iterator[np.ndarray]:
        cv2 = require_cv2()
        capture = cv2.VideoCapture(str(self.path))
        if not capture.isOpened():
            raise ValueError(f"{self.name}: cannot read {self.path} as a video")
        codec = int(capture.get(cv2.CAP_PROP_FOURCC)).to_bytes(4, "little")
        if codec in _NOT_VIDEO_CODECS:
            capture.release()
            raise ValueError(f"{self.name}: {self.path} is not a video (FFmpeg reads it as text)")
        try:
            while True:
                ok, frame = capture.read()
                if not ok:
                    break
                yield cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
        finally:
            capture.release()

    def _probe_num_frames(self) -> int | None:
        if self.backend == "pyav":
            av = require_av()
            with av.open(str(self.path)) as container:
                frames = container.streams.video[0].frames
            return int(frames) or None
        cv2 = require_cv2()
        capture = cv2.VideoCapture(str(self.path))
        frames = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
        capture.release()
        return frames if frames > 0 else None

    def _probe_fps(self) -> float | None:
        if self.backend == "pyav":
            av = require_av()
            with av.open(str(self.path)) as container:
                rate = container.streams.video[0].average_rate
            return float(rate) if rate else None
        cv2 = require_cv2()
        capture = cv2.VideoCapture(str(self.path))
        fps = capture.get(cv2.CAP_PROP_FPS)
        capture.release()
        return float(fps) if fps and fps > 0 else None


def read_video(source: VideoInput, name: str = "video", backend: str = "auto") -> np.ndarray:
    """Decode a whole video into one ``(T, H, W, 3)`` uint8 array (for small videos; use :class:`VideoReader` to
    stream long ones)."""
    return np.stack(list(VideoReader(source, name=name, backend=backend)))


_CODECS = {".mp4": ("libx264", "yuv420p"), ".mkv": ("ffv1", "bgr0"), ".avi": ("mjpeg", "yuvj420p")}


class VideoWriter:
    """Streaming video writer (PyAV): ``with VideoWriter(path, fps) as w: w.write(frame)``.

    The container follows the extension: ``.mp4`` (H.264), ``.mkv`` (lossless FFV1) or ``.avi`` (MJPEG). Frames are
    RGB uint8 ``(H, W, 3)`` (an alpha channel is dropped). H.264 needs even sizes, so odd sizes are padded with one
    black row / column.
    """

    def __init__(self, path: str | os.PathLike, fps: float = 30.0):
        self.path = Path(path)
        if self.path.suffix.lower() not in _CODECS:
            raise ValueError(f"output video must end with one of {sorted(_CODECS)}, got {self.path.name!r}")
        if not fps > 0:
            raise ValueError(f"fps must be positive, got {fps}")
        self.fps = fps
        self.count = 0
        self._container = None
        self._stream = None

    def __enter__(self) -> "VideoWriter":
        av = require_av()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._container = av.open(str(self.path), mode="w")
        return self

    def write(self, frame: np.ndarray) -> None:
        av = require_av()
        if self._container is None:
            raise RuntimeError("VideoWriter.write called outside its 'with' block")
        rgb = to_rgb_uint8(frame, f"output frame {self.count}")
        if self._stream is None:
            from fractions import Fraction

            codec, pixel_format = _CODECS[self.path.suffix.lower()]
            self._stream = self._container.add_stream(codec, rate=Fraction(self.fps).limit_denominator(1001))
            self._stream.pix_fmt = pixel_format
            even = 2 if codec == "libx264" else 1
            self._stream.height = -(-rgb.shape[0] // even) * even
            self._stream.width = -(-rgb.shape[1] // even) * even
        height, width = self._stream.height, self._stream.width
        if rgb.shape[0] > height or rgb.shape[1] > width:
            raise ValueError(
                f"output frame {self.count} is {rgb.shape[1]}x{rgb.shape[0]}, the video is {width}x{height}"
            )
        if rgb.shape[:2] != (height, width):
            rgb = np.pad(rgb, ((0, height - rgb.shape[0]), (0, width - rgb.shape[1]), (0, 0)))
        for packet in self._stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")):
            self._container.mux(packet)
        self.count += 1

    def __exit__(self, *exc) -> None:
        try:
            if self._stream is not None:
                for packet in self._stream.encode():
                    self._container.mux(packet)
        finally:
            self._container.close()
            self._container = None
        if exc[0] is None and self.count == 0:
            self.path.unlink(missing_ok=True)
            raise ValueError(f"cannot write {self.path}: no frames were given")


def write_video(path: str | os.PathLike, frames: Iterable[np.ndarray], fps: float = 30.0) -> Path:
    """Write RGB uint8 frames to ``path`` (see :class:`VideoWriter` for containers and codecs)."""
    with VideoWriter(path, fps) as writer:
        for frame in frames:
            writer.write(frame)
    return Path(path)
