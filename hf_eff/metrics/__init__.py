"""The project's metrics as `evaluate` modules that load offline from the installed package.

``evaluate.load("accuracy")`` fetches its script from the Hub; ours ship inside hf_eff, one folder per metric
(``hf_eff/metrics/<name>/<name>.py``, the layout ``evaluate.load`` expects of a local path)::

    import hf_eff.metrics
    metric = hf_eff.metrics.load("mask_f1")          # == evaluate.load(hf_eff.metrics.path("mask_f1"))
    metric.compute(predictions=masks, references=truth)

The metric folders hold no ``__init__.py``: they are loaded by ``evaluate``, not imported as hf_eff modules.
A new metric is one such folder with an ``evaluate.Metric`` subclass that reuses the engine's scoring code (see
``mask_f1``, which wraps :mod:`hf_eff.video.metrics`); it ships in the wheel through ``package-data`` (``*/*.py``)
and ``tests/core/test_packaging.py`` checks that it does.
"""

from pathlib import Path
from typing import Any


_HERE = Path(__file__).resolve().parent


def available() -> list[str]:
    """Names of the metrics shipped with hf_eff."""
    return sorted(p.name for p in _HERE.iterdir() if p.is_dir() and (p / f"{p.name}.py").is_file())


def path(name: str) -> str:
    """The local folder of metric ``name``, for ``evaluate.load(path(name))``."""
    if not isinstance(name, str) or not (_HERE / name / f"{name}.py").is_file():
        raise ValueError(f"unknown hf_eff metric {name!r}; expected one of {available()}")
    return str(_HERE / name)


def load(name: str, **kwargs: Any):
    """``evaluate.load`` of hf_eff metric ``name`` (offline: nothing is fetched from a hub)."""
    import evaluate

    return evaluate.load(path(name), **kwargs)
