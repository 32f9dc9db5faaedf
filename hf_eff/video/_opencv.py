"""Lazy access to the optional video dependencies (the ``[video]`` extra).

``import hf_eff`` and ``import hf_eff.video`` must not import OpenCV or PyAV; every function that needs one calls
:func:`require_cv2` / :func:`require_av` at run time, which also turns a missing package into an actionable error.
"""

from types import ModuleType


_INSTALL_HINT = "install the video extra: pip install 'hf_eff[video]'"


def require_cv2() -> ModuleType:
    try:
        import cv2
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise ImportError(f"OpenCV is needed for video background subtraction; {_INSTALL_HINT}") from error
    return cv2


def require_av() -> ModuleType:
    try:
        import av
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise ImportError(f"PyAV is needed to read and write video files; {_INSTALL_HINT}") from error
    return av


def av_available() -> bool:
    try:
        require_av()
    except ImportError:  # pragma: no cover - depends on the environment
        return False
    return True
