"""Package docstrings say only what ships: every class, function or module they name exists in the package."""

import ast
import importlib
import re
from pathlib import Path

import pytest

import hf_eff


PACKAGE_ROOT = Path(hf_eff.__file__).parent
PACKAGES = sorted(
    ".".join(("hf_eff", *init.parent.relative_to(PACKAGE_ROOT).parts)) for init in PACKAGE_ROOT.rglob("__init__.py")
)
ROLE = re.compile(r":(?:class|func|mod|meth|data):`~?([\w.]+)`")
FILE = re.compile(r"``(\w+)\.py``")


def _resolves(package, reference: str) -> bool:
    """``reference`` as Sphinx reads it inside ``package``: relative (``.x``), absolute (``hf_eff.x``), or a name."""
    if reference.startswith("."):
        reference = package.__name__ + reference
    elif not reference.startswith(("hf_eff", "transformers", "torch", "datasets", "evaluate")):
        reference = f"{package.__name__}.{reference}"
    parts = reference.split(".")
    for split in range(len(parts), 0, -1):  # the longest importable prefix, then attributes
        try:
            target = importlib.import_module(".".join(parts[:split]))
        except ImportError:
            continue
        try:
            for attribute in parts[split:]:
                target = getattr(target, attribute)
        except AttributeError:
            return False
        return True
    return False


@pytest.mark.parametrize("name", PACKAGES)
def test_package_docstring_names_only_what_ships(name):
    package = importlib.import_module(name)
    docstring = ast.get_docstring(ast.parse(Path(package.__file__).read_text())) or ""
    missing = [reference for reference in ROLE.findall(docstring) if not _resolves(package, reference)]
    folder = Path(package.__file__).parent
    missing += [f"{stem}.py" for stem in FILE.findall(docstring) if not (folder / f"{stem}.py").is_file()]
    assert not missing, f"{name}'s docstring names what it does not ship: {missing}"
