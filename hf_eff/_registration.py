"""Register hf_eff models and pipelines with transformers without paying for the import of transformers.

Importing transformers' model machinery costs seconds, far more than ``import hf_eff`` may take. Registration
therefore runs at the first moment it can matter:

- at ``import hf_eff``, if transformers' Auto classes are already imported;
- otherwise as soon as user code has imported ``transformers.models.auto.configuration_auto`` (which every Auto
  class, ``pipeline()`` and ``Trainer`` import) *and* transformers has finished whatever import was in progress.
  A ``sys.meta_path`` finder wraps the loaders of ``transformers`` and ``hf_eff`` modules and counts the imports in
  flight; when the count drops to zero, the registration modules are imported and the finder removes itself.
  Counting our own modules too means registration never starts inside a half-imported hf_eff module (say
  ``from hf_eff import RevBiFPNModel`` as the first thing that pulls in transformers).

Either way, after ``import hf_eff`` the Auto classes and ``pipeline()`` know every hf_eff model and task before
user code can reach them.
"""

import importlib
import importlib.abc
import sys
import threading


# modules whose import registers something (Auto classes, pipelines); a method adds its module when it lands
REGISTRATION_MODULES: list[str] = [
    # models first (Auto classes), then the pipelines that load them
    "hf_eff.models.revbifpn",
    "hf_eff.models.craftmaps",
    "hf_eff.models.video_bgsub",
    "hf_eff.pipelines.craftmaps_classification",
    "hf_eff.pipelines.video_background_subtraction",
]

_AUTO_CONFIG_MODULE = "transformers.models.auto.configuration_auto"
_lock = threading.RLock()
_done = False
_imports_in_flight = 0


def register_all() -> None:
    """Import every registration module once. Safe to call many times."""
    global _done
    with _lock:
        if _done:
            return
        _done = True
        sys.meta_path[:] = [finder for finder in sys.meta_path if not isinstance(finder, _RegisterAfterImport)]
        for module in REGISTRATION_MODULES:
            importlib.import_module(module)


class _RegisterAfterImport(importlib.abc.MetaPathFinder):
    """Hands out wrapped loaders for ``transformers`` and ``hf_eff`` modules (see the module docstring)."""

    def find_spec(self, fullname, path=None, target=None):
        if _done or not (fullname == "transformers" or fullname.startswith(("transformers.", "hf_eff."))):
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                if spec.loader is not None and hasattr(spec.loader, "exec_module"):
                    spec.loader = _CountingLoader(spec.loader)
                return spec
        return None


class _CountingLoader(importlib.abc.Loader):
    def __init__(self, loader: importlib.abc.Loader):
        self._loader = loader

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        global _imports_in_flight
        _imports_in_flight += 1
        try:
            self._loader.exec_module(module)
        finally:
            _imports_in_flight -= 1
        if _imports_in_flight == 0 and _AUTO_CONFIG_MODULE in sys.modules:
            register_all()

    def __getattr__(self, name):  # get_code, get_source, is_package, ... for tools that ask
        return getattr(self._loader, name)


def install_registration_hook() -> None:
    if _AUTO_CONFIG_MODULE in sys.modules:
        register_all()
    elif not any(isinstance(f, _RegisterAfterImport) for f in sys.meta_path):
        sys.meta_path.insert(0, _RegisterAfterImport())
