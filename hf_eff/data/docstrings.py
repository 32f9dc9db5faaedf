"""Real English text that every machine running hf_eff already has: the docstrings of installed Python code.

Docstrings are read from source files with :mod:`ast` (nothing is imported, so no import side effects), in sorted
file order, so a given set of installed package versions always yields the same corpus. Nothing is downloaded and
nothing is copied into this repository.
"""

import ast
import importlib.util
import inspect
import sysconfig
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path


# standard-library folders that are tests, demos or tooling rather than library documentation
_SKIPPED_PARTS = {
    "test",
    "tests",
    "idle_test",
    "idlelib",
    "turtledemo",
    "lib2to3",
    "ensurepip",
    "site-packages",
    "__pycache__",
}


@dataclass(frozen=True)
class Docstring:
    """One documented object: ``module`` (dotted), ``name`` (qualified within the module, '' for the module),
    ``signature`` (``name(args)`` for functions, else ''), ``text`` (cleaned docstring)."""

    module: str
    name: str
    signature: str
    text: str


def stdlib_root() -> Path:
    return Path(sysconfig.get_paths()["stdlib"])


def package_root(package: str) -> Path:
    """The source folder of an installed package; a clear error if it is not installed."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ValueError(f"package {package!r} is not installed, so its docstrings cannot be read")
    return Path(next(iter(spec.submodule_search_locations)))


def iter_source_files(root: Path, module_prefix: str = "") -> Iterator[tuple[str, Path]]:
    """``(dotted module name, path)`` for every ``.py`` file under ``root``, sorted, skipping tests and demos.

    Private files are kept: many libraries (scikit-learn among them) document their public classes in ``_*.py``."""
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root).with_suffix("").parts
        if any(p in _SKIPPED_PARTS or p.startswith("test") for p in parts):
            continue
        parts = parts[:-1] if parts[-1] == "__init__" else parts
        yield ".".join(filter(None, [module_prefix, *parts])), path


def _signature(node: ast.FunctionDef | ast.AsyncFunctionDef, qualname: str) -> str:
    args = node.args
    if args.args and args.args[0].arg in {"self", "cls"}:
        args = ast.arguments(
            posonlyargs=args.posonlyargs,
            args=args.args[1:],
            vararg=args.vararg,
            kwonlyargs=args.kwonlyargs,
            kw_defaults=args.kw_defaults,
            kwarg=args.kwarg,
            defaults=args.defaults[-len(args.args[1:]) :] if args.args[1:] else [],
        )
    for arg in [*args.posonlyargs, *args.args, *args.kwonlyargs]:
        arg.annotation = None  # annotations make signatures long and add little
    if args.vararg:
        args.vararg.annotation = None
    if args.kwarg:
        args.kwarg.annotation = None
    return f"{qualname}({ast.unparse(args)})"


def docstrings_in_file(module: str, path: Path) -> Iterator[Docstring]:
    """Module, class and function docstrings of one source file (public objects only)."""
    try:
        tree = ast.parse(path.read_bytes(), filename=str(path))
    except (SyntaxError, ValueError, UnicodeDecodeError):
        return
    text = ast.get_docstring(tree)
    if text:
        yield Docstring(module, "", "", inspect.cleandoc(text))

    def visit(body: list[ast.stmt], prefix: str) -> Iterator[Docstring]:
        for node in body:
            if not isinstance(node, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            if node.name.startswith("_") and node.name != "__init__":
                continue
            qualname = f"{prefix}{node.name}"
            doc = ast.get_docstring(node)
            if doc:
                is_function = not isinstance(node, ast.ClassDef)
                yield Docstring(
                    module, qualname, _signature(node, qualname) if is_function else "", inspect.cleandoc(doc)
                )
            if isinstance(node, ast.ClassDef):
                yield from visit(node.body, f"{qualname}.")

    yield from visit(tree.body, "")


def collect_docstrings(sources: list[str]) -> list[Docstring]:
    """Docstrings of ``sources``: ``"stdlib"`` or names of installed packages (e.g. ``"numpy"``)."""
    found: list[Docstring] = []
    for source in sources:
        if source == "stdlib":
            files = iter_source_files(stdlib_root())
        else:
            files = iter_source_files(package_root(source), module_prefix=source)
        for module, path in files:
            found.extend(docstrings_in_file(module, path))
    return found


def first_sentence(text: str) -> str:
    """The summary line of a docstring: its first paragraph, up to the first full stop."""
    paragraph = " ".join(text.strip().split("\n\n")[0].split())
    end = paragraph.find(". ")
    return paragraph if end < 0 else paragraph[: end + 1]
