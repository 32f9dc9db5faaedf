"""Synthetic two-pass handheld video pairs with ground truth, built on real images shipped with scikit-image.

A handheld camera sweeps twice over one scene: the *background* pass films the empty scene, the *foreground* pass
films it again with a near-field object in it, at a different, time-warped speed and with its own shake and exposure.
Everything is rendered from known camera poses, so the generator also returns what a method should recover: the
object mask of every foreground frame, the background frame with the same viewpoint (``true_matches``), and the
canvas-to-frame homography of every frame (so an estimated alignment can be scored).

The scene has three depths, so that a single homography cannot explain a whole frame (as in real footage):

- a far, planar **canvas** (a collage of scikit-image photographs over multi-scale coloured noise, plus small shapes
  that give corners for feature matching): it moves with the camera exactly, and homographies align it;
- a **mid-ground** layer of photo patches that moves ``midground_parallax`` times faster than the canvas: background
  in both passes, it only aligns when the matched background frame was taken from nearly the same viewpoint;
- optionally (``near_plane_parallax > 0``, the *parallax mode*) a textured **near plane**, like a table top in front
  of a wall, covering the lower part of the view and moving ``1 + near_plane_parallax`` times as fast as the
  canvas: two planes at different depths, so no single homography aligns a frame;
- the **object** (a bottle-shaped cut-out of a real photo) present only in the foreground pass; it moves by
  ``object_parallax`` of the canvas motion, like an object the operator keeps in view while walking past it.

Each clip combines a camera path, shake, a time warp, parallax and photometric nuisances. The images
(astronaut, coffee, chelsea, rocket, brick, grass, gravel, camera) are in the scikit-image wheel; nothing is
downloaded.
"""

from dataclasses import dataclass

import numpy as np

from hf_eff.video._opencv import require_cv2


# rendering happens at this size, then frames are resized to the requested one (keeps the scene scale fixed)
_BASE_WIDTH, _BASE_HEIGHT = 320, 240
_CANVAS_WIDTH, _CANVAS_HEIGHT = 1000, 800
_PAN = 200.0  # half the horizontal camera travel, canvas pixels
_PATH_RANGE_FOREGROUND = (0.04, 0.96)
_OFFSET_DIRECTION = np.array([0.6, 0.8])  # of the foreground pass's path relative to the background pass's
_NEAR_PLANE_TOP = 0.1  # the near plane's edge, in frame heights below the frame centre when the camera is centred  # the object pass starts a bit later and stops a bit earlier


@dataclass
class HandheldPair:
    """A synthetic foreground/background video pair and its ground truth (all arrays are numpy).

    Attributes:
        foreground: ``(n, H, W, 3)`` uint8, the pass with the object.
        background: ``(m, H, W, 3)`` uint8, the empty pass.
        masks: ``(n, H, W)`` bool, the object's pixels in each foreground frame.
        true_matches: ``(n,)`` int, the background frame closest in camera-path position to each foreground frame.
        foreground_path, background_path: camera-path position ``s`` in ``[0, 1]`` of every frame.
        foreground_homographies, background_homographies: ``(T, 3, 3)`` canvas-to-frame homographies of the far plane.
    """

    foreground: np.ndarray
    background: np.ndarray
    masks: np.ndarray
    true_matches: np.ndarray
    foreground_path: np.ndarray
    background_path: np.ndarray
    foreground_homographies: np.ndarray
    background_homographies: np.ndarray

    def true_alignment(self, foreground_index: int, background_index: int) -> np.ndarray:
        """The homography mapping background frame ``background_index`` onto foreground frame ``foreground_index``
        on the far plane (pixel coordinates of the returned frames)."""
        return self.foreground_homographies[foreground_index] @ np.linalg.inv(
            self.background_homographies[background_index]
        )


def _skimage_images() -> dict[str, np.ndarray]:
    from skimage import data

    names = ("astronaut", "coffee", "chelsea", "rocket", "brick", "grass", "gravel", "camera")
    images = {}
    for name in names:
        image = getattr(data, name)()
        if image.ndim == 2:
            image = np.repeat(image[..., None], 3, axis=2)
        images[name] = np.ascontiguousarray(image[..., :3])
    return images


def _multiscale_noise(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    cv2 = require_cv2()
    canvas = np.full((height, width, 3), 120.0, np.float32)
    for cell, amplitude in ((32, 60.0), (10, 40.0), (3, 25.0)):
        coarse = rng.standard_normal((height // cell + 2, width // cell + 2, 3)).astype(np.float32)
        canvas += amplitude * cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)
    return canvas


def _paste(canvas: np.ndarray, patch: np.ndarray, top: int, left: int, alpha: np.ndarray | None = None) -> None:
    h, w = patch.shape[:2]
    region = canvas[top : top + h, left : left + w]
    patch = patch[: region.shape[0], : region.shape[1]].astype(np.float32)
    if alpha is None:
        region[...] = patch
    else:
        a = alpha[: region.shape[0], : region.shape[1], None].astype(np.float32)
        region[...] = a * patch + (1 - a) * region


def _resized(image: np.ndarray, height: int) -> np.ndarray:
    cv2 = require_cv2()
    width = max(1, round(image.shape[1] * height / image.shape[0]))
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)


def _build_canvas(rng: np.random.Generator, images: dict[str, np.ndarray]) -> np.ndarray:
    """The far plane: photographs over coloured noise, with small shapes for corners."""
    cv2 = require_cv2()
    canvas = _multiscale_noise(rng, _CANVAS_HEIGHT, _CANVAS_WIDTH)
    tint = {"brick": (1.1, 0.8, 0.7), "grass": (0.7, 1.1, 0.7), "gravel": (0.9, 0.9, 1.1), "camera": (1.0, 1.0, 1.0)}
    names = ["astronaut", "rocket", "brick", "grass", "gravel", "camera", "coffee", "astronaut", "rocket", "gravel"]
    for name in names:
        patch = _resized(images[name], int(rng.integers(170, 300))).astype(np.float32)
        patch *= np.asarray(tint.get(name, (1.0, 1.0, 1.0)), np.float32)
        top = int(rng.integers(0, _CANVAS_HEIGHT - 150))
        left = int(rng.integers(0, _CANVAS_WIDTH - 150))
        _paste(canvas, patch, top, left)
    for _ in range(80):
        colour = tuple(float(c) for c in rng.uniform(0, 255, 3))
        x, y = int(rng.integers(0, _CANVAS_WIDTH)), int(rng.integers(0, _CANVAS_HEIGHT))
        size = int(rng.integers(6, 26))
        if rng.random() < 0.5:
            cv2.rectangle(canvas, (x, y), (x + size, y + int(rng.integers(6, 26))), colour, -1)
        else:
            cv2.circle(canvas, (x, y), size // 2, colour, -1)
    return np.clip(canvas, 0, 255)


def _build_midground(rng: np.random.Generator, images: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Elliptical photo patches on a transparent layer (RGB, alpha)."""
    cv2 = require_cv2()
    rgb = np.zeros((_CANVAS_HEIGHT, _CANVAS_WIDTH, 3), np.float32)
    alpha = np.zeros((_CANVAS_HEIGHT, _CANVAS_WIDTH), np.float32)
    for k, name in enumerate(("coffee", "gravel", "rocket", "brick", "astronaut", "coffee", "grass")):
        patch = _resized(images[name], int(rng.integers(50, 90))).astype(np.float32)
        h, w = patch.shape[:2]
        w = min(w, 110)
        patch = patch[:, :w]
        ellipse = np.zeros((h, w), np.float32)
        cv2.ellipse(ellipse, (w // 2, h // 2), (w // 2 - 1, h // 2 - 1), 0, 0, 360, 1.0, -1)
        left = int(100 + k * 120 + rng.integers(-20, 20))
        top = int(rng.integers(300, 560))
        _paste(rgb, patch, top, left, ellipse)
        region = alpha[top : top + h, left : left + w]
        region[...] = np.maximum(region, ellipse[: region.shape[0], : region.shape[1]])
    return rgb, alpha


def _build_near_plane(rng: np.random.Generator, images: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """A second textured plane (its own collage) whose upper edge is a horizontal line in its own coordinates."""
    rgb = _build_canvas(rng, images) * np.asarray((0.9, 0.85, 0.8), np.float32)  # a warmer tint than the wall
    alpha = np.zeros((_CANVAS_HEIGHT, _CANVAS_WIDTH), np.float32)
    alpha[_CANVAS_HEIGHT // 2 + int(_NEAR_PLANE_TOP * _BASE_HEIGHT) :] = 1.0
    return rgb, alpha


def _build_object(images: dict[str, np.ndarray], height: int) -> tuple[np.ndarray, np.ndarray]:
    """A bottle-shaped cut-out (ellipse body plus rectangular neck) of a real photo that the scene does not use
    elsewhere (the cat of ``chelsea``): (RGB, alpha)."""
    cv2 = require_cv2()
    width = max(8, int(0.55 * height))
    texture = _resized(images["chelsea"], height)
    left = max(0, (texture.shape[1] - width) // 2)
    rgb = texture[:, left : left + width].astype(np.float32) * np.asarray((1.15, 0.85, 0.75), np.float32)
    alpha = np.zeros((height, width), np.float32)
    body_top = int(0.3 * height)
    cv2.ellipse(
        alpha, (width // 2, (body_top + height) // 2), (width // 2 - 1, (height - body_top) // 2 - 1), 0, 0, 360, 1, -1
    )
    neck = max(2, width // 5)
    cv2.rectangle(alpha, (width // 2 - neck, 0), (width // 2 + neck, body_top + 4), 1, -1)
    return np.clip(rgb, 0, 255), alpha


def _camera_poses(s: np.ndarray, phase: np.ndarray) -> dict[str, np.ndarray]:
    """Smooth pose of the camera at path positions ``s`` (both passes share the path, i.e. the 4 ``phase`` values)."""
    cx = _CANVAS_WIDTH / 2 + _PAN * (2 * s - 1) + 25 * np.sin(2 * np.pi * 1.3 * s + phase[0])
    cy = _CANVAS_HEIGHT / 2 + 60 * np.sin(2 * np.pi * 0.8 * s + phase[1])
    roll = np.deg2rad(4.0) * np.sin(2 * np.pi * 0.5 * s + phase[2])
    zoom = 1.0 + 0.08 * np.sin(2 * np.pi * 0.7 * s + phase[3])
    keystone = 1e-4 * np.stack([np.sin(2 * np.pi * s + phase[0]), np.cos(2 * np.pi * s + phase[1])], axis=-1)
    return {"cx": cx, "cy": cy, "roll": roll, "zoom": zoom, "keystone": keystone}


def _homography(cx: float, cy: float, roll: float, zoom: float, keystone: np.ndarray) -> np.ndarray:
    """Layer coordinates -> base frame pixels: T(frame centre) . P(keystone) . S(zoom) . R(roll) . T(-camera)."""
    cos, sin = np.cos(roll), np.sin(roll)
    to_camera = np.array([[1, 0, -cx], [0, 1, -cy], [0, 0, 1]])
    rotate_scale = np.array([[zoom * cos, -zoom * sin, 0], [zoom * sin, zoom * cos, 0], [0, 0, 1]])
    perspective = np.array([[1, 0, 0], [0, 1, 0], [keystone[0], keystone[1], 1]])
    to_frame = np.array([[1, 0, _BASE_WIDTH / 2], [0, 1, _BASE_HEIGHT / 2], [0, 0, 1]])
    return to_frame @ perspective @ rotate_scale @ to_camera


def _time_warped_path(rng: np.random.Generator, n: int, time_warp: float, pauses: int) -> np.ndarray:
    """Monotone, time-warped path positions of the foreground pass (``pauses`` holds of 3 frames each)."""
    steps = np.ones(n)
    steps[0] = 0
    if pauses:
        if 3 * pauses > n - 2:
            raise ValueError(f"pauses={pauses} does not fit into {n} foreground frames (3 frames per pause)")
        starts = rng.choice(np.arange(1, n - 2, 3), size=pauses, replace=False)
        for start in starts:
            steps[start : start + 2] = 0
    u = np.cumsum(steps) / steps.sum()
    amplitude = rng.uniform(-time_warp, time_warp)
    warped = np.maximum.accumulate(np.clip(u + amplitude * 0.6 * np.sin(np.pi * u), 0, 1))
    lo, hi = _PATH_RANGE_FOREGROUND
    return lo + (hi - lo) * warped


def make_handheld_pair(
    num_foreground_frames: int = 60,
    num_background_frames: int = 72,
    *,
    height: int = 240,
    width: int = 320,
    shake: float = 2.0,
    time_warp: float = 0.25,
    pauses: int = 0,
    object_size: float = 0.45,
    object_parallax: float = 0.35,
    midground_parallax: float = 0.3,
    near_plane_parallax: float = 0.0,
    pass_offset: float = 0.0,
    exposure: float = 0.1,
    exposure_drift: float = 0.15,
    noise: float = 3.0,
    seed: int = 0,
) -> HandheldPair:
    """Render a synthetic handheld foreground/background video pair with ground truth.

    Args:
        num_foreground_frames, num_background_frames: lengths of the two passes (they need not be equal).
        height, width: frame size of the returned videos (the scene is rendered at 320x240 and resized).
        shake: std of the per-frame hand jitter of the camera position, in pixels at 320x240 (roll jitter is
            ``0.15 * shake`` degrees).
        time_warp: amplitude of the monotone time warp of the foreground pass (0 = same speed as the background).
        pauses: number of 3-frame holds in the foreground pass (stress for monotone matching).
        object_size: object height as a fraction of the frame height.
        object_parallax: object motion as a fraction of the far plane's motion (1 = glued to the background).
        midground_parallax: extra motion of the mid-ground layer relative to the far plane (0 = no depth).
        near_plane_parallax: extra motion of a near plane covering the lower part of the view (0 = no near plane;
            the parallax mode uses e.g. 0.5: two planes at different depths).
        pass_offset: the foreground pass is filmed from a path displaced by this many pixels (at 320x240, on the
            far plane; diagonally) from the background pass, as a second handheld pass never retraces the first:
            no background frame then shares a foreground frame's viewpoint, and depth differences show as parallax.
        exposure: amplitude of the per-frame random gain (``1 +- exposure``); bias is uniform in +-8 levels.
        exposure_drift: amplitude of a slow auto-exposure drift of the foreground pass.
        noise: std of additive Gaussian sensor noise, in 0-255 levels.
        seed: everything is deterministic given the seed.
    """
    for name, value in (
        ("num_foreground_frames", num_foreground_frames),
        ("num_background_frames", num_background_frames),
    ):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}")
    if height < 16 or width < 16:
        raise ValueError(f"height and width must be at least 16 pixels, got {height}x{width}")
    for name, value in (
        ("shake", shake),
        ("time_warp", time_warp),
        ("exposure", exposure),
        ("exposure_drift", exposure_drift),
        ("noise", noise),
        ("near_plane_parallax", near_plane_parallax),
        ("pass_offset", pass_offset),
    ):
        if value < 0:
            raise ValueError(f"{name} must be >= 0, got {value}")
    if not 0 < object_size <= 0.9:
        raise ValueError(f"object_size must be in (0, 0.9], got {object_size}")
    cv2 = require_cv2()
    rng = np.random.default_rng(seed)
    scene_rng, path_rng, fg_rng, bg_rng = (np.random.default_rng(s) for s in rng.integers(0, 2**32, 4))

    images = _skimage_images()
    canvas = _build_canvas(scene_rng, images)
    mid_rgb, mid_alpha = _build_midground(scene_rng, images)
    near = _build_near_plane(np.random.default_rng(rng.integers(0, 2**32)), images) if near_plane_parallax else None
    obj_rgb, obj_alpha = _build_object(images, max(8, int(object_size * _BASE_HEIGHT)))
    # the object sits at the middle of its own layer; at mid-path it appears slightly below the frame centre
    obj_layer_rgb = np.zeros((_BASE_HEIGHT * 3, _BASE_WIDTH * 3, 3), np.float32)
    obj_layer_alpha = np.zeros(obj_layer_rgb.shape[:2], np.float32)
    oy, ox = (
        obj_layer_alpha.shape[0] // 2 - obj_alpha.shape[0] // 2,
        obj_layer_alpha.shape[1] // 2 - obj_alpha.shape[1] // 2,
    )
    _paste(obj_layer_rgb, obj_rgb, oy, ox)
    obj_layer_alpha[oy : oy + obj_alpha.shape[0], ox : ox + obj_alpha.shape[1]] = obj_alpha
    obj_anchor = np.array([obj_layer_alpha.shape[1] / 2, obj_layer_alpha.shape[0] / 2 - 0.08 * _BASE_HEIGHT])

    background_path = np.linspace(0.0, 1.0, num_background_frames)
    foreground_path = _time_warped_path(fg_rng, num_foreground_frames, time_warp, pauses)
    true_matches = np.abs(background_path[None, :] - foreground_path[:, None]).argmin(axis=1)
    path_phase = path_rng.uniform(0, 2 * np.pi, 4)
    centre = np.array([_CANVAS_WIDTH / 2, _CANVAS_HEIGHT / 2])
    output_scale = np.diag([width / _BASE_WIDTH, height / _BASE_HEIGHT, 1.0])

    def render(path: np.ndarray, rng: np.random.Generator, with_object: bool, drift: float, offset: float):
        poses = _camera_poses(path, path_phase)
        frames = np.empty((len(path), height, width, 3), np.uint8)
        masks = np.zeros((len(path), height, width), bool)
        homographies = np.empty((len(path), 3, 3))
        drift_phase = rng.uniform(0, 2 * np.pi)
        for t in range(len(path)):
            camera = np.array([poses["cx"][t], poses["cy"][t]]) + rng.normal(0, shake, 2) + offset * _OFFSET_DIRECTION
            roll = poses["roll"][t] + np.deg2rad(0.15 * shake) * rng.standard_normal()
            args = (roll, poses["zoom"][t], poses["keystone"][t])
            size = (_BASE_WIDTH, _BASE_HEIGHT)
            h_far = _homography(*camera, *args)
            frame = cv2.warpPerspective(canvas, h_far, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
            mid_camera = centre + (1 + midground_parallax) * (camera - centre)
            h_mid = _homography(*mid_camera, *args)
            a = cv2.warpPerspective(mid_alpha, h_mid, size, flags=cv2.INTER_LINEAR)[..., None]
            frame = a * cv2.warpPerspective(mid_rgb, h_mid, size, flags=cv2.INTER_LINEAR) + (1 - a) * frame
            if near is not None:
                h_near = _homography(*(centre + (1 + near_plane_parallax) * (camera - centre)), *args)
                a = cv2.warpPerspective(near[1], h_near, size, flags=cv2.INTER_LINEAR)[..., None]
                frame = a * cv2.warpPerspective(near[0], h_near, size, flags=cv2.INTER_LINEAR) + (1 - a) * frame
            if with_object:
                h_obj = _homography(*(obj_anchor + object_parallax * (camera - centre)), *args)
                a = cv2.warpPerspective(obj_layer_alpha, h_obj, size, flags=cv2.INTER_LINEAR)
                rgb = cv2.warpPerspective(obj_layer_rgb, h_obj, size, flags=cv2.INTER_LINEAR)
                frame = a[..., None] * rgb + (1 - a[..., None]) * frame
                if (height, width) != (_BASE_HEIGHT, _BASE_WIDTH):
                    a = cv2.resize(a, (width, height), interpolation=cv2.INTER_AREA)
                masks[t] = a > 0.5
            gain = (1 + exposure * rng.uniform(-1, 1)) * (1 + drift * np.sin(2 * np.pi * 0.7 * path[t] + drift_phase))
            frame = gain * frame + rng.uniform(-8, 8)
            if (height, width) != (_BASE_HEIGHT, _BASE_WIDTH):
                frame = cv2.resize(frame, (width, height), interpolation=cv2.INTER_AREA)
            frame = frame + rng.normal(0, noise, frame.shape)
            frames[t] = np.clip(np.rint(frame), 0, 255).astype(np.uint8)
            homographies[t] = output_scale @ h_far
        return frames, masks, homographies

    foreground, masks, foreground_h = render(foreground_path, fg_rng, True, exposure_drift, pass_offset)
    background, _, background_h = render(background_path, bg_rng, False, 0.0, 0.0)
    return HandheldPair(
        foreground=foreground,
        background=background,
        masks=masks,
        true_matches=true_matches,
        foreground_path=foreground_path,
        background_path=background_path,
        foreground_homographies=foreground_h,
        background_homographies=background_h,
    )
