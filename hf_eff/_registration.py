"""Register hf_eff models and pipelines with transformers without paying for the import of transformers.

Importing ``transformers.modeling_utils`` costs seconds, far more than ``import hf_eff`` may take. Registration
therefore runs at the first moment it can matter: immediately if transformers' Auto classes are already imported,
otherwise right after ``transformers.models.auto.modeling_auto`` and ``transformers.modeling_utils`` have both
finished importing (a ``sys.meta_path`` post-import hook). Either way, after ``import hf_eff`` the Auto classes
and ``pipeline()`` know every hf_eff model and task by the time user code can reach them.
"""

import importlib
import importlib.abc
import importlib.util
import sys
import threading


# modules whose import registers something (Auto classes, pipelines); a method adds its module when it lands
REGISTRATION_MODULES: list[str] = []

_TRIGGERS = {
    "transformers.modeling_utils": "PreTrainedModel",
    "transformers.models.auto.modeling_auto": "AutoModel",
}
_lock = threading.RLock()
_done = False


def _transformers_ready() -> bool:
    return all(hasattr(sys.modules.get(name), attr) for name, attr in _TRIGGERS.items())


def register_all() -> None:
    """Import every registration module once. Safe to call many times."""
    global _done
    with _lock:
        if _done:
            return
        _done = True
        for module in REGISTRATION_MODULES:
            importlib.import_module(module)


class _RegisterAfterImport(importlib.abc.MetaPathFinder):
    """Wraps the loaders of the trigger modules so registration runs when both have been executed."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname not in _TRIGGERS or _done:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None and spec.loader is not None:
                spec.loader = _RegisteringLoader(spec.loader)
                return spec
        return None


class _RegisteringLoader(importlib.abc.Loader):
    def __init__(self, loader: importlib.abc.Loader):
        self._loader = loader

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        self._loader.exec_module(module)
        if _transformers_ready():
            register_all()

    def __getattr__(self, name):  # get_code, get_source, is_package, ... for tools that ask
        return getattr(self._loader, name)


def install_registration_hook() -> None:
    if _transformers_ready():
        register_all()
    elif not any(isinstance(f, _RegisterAfterImport) for f in sys.meta_path):
        sys.meta_path.insert(0, _RegisterAfterImport())
