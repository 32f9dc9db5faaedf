"""The subcommands of ``hf-eff``, one module each, and the one place their errors are defined.

Each public module here defines ``add_parser(subparsers) -> None``, which adds its parser and sets
``func=<callable(args) -> int>``; :mod:`hf_eff.cli` discovers the modules. Exit codes: a bad argument is a
:class:`UsageError` (or an argparse error) and exits with 2; anything that goes wrong while the command runs (bad
data, a missing file, a failed training run) exits with 1. Both print one line.

This package never imports :mod:`hf_eff.cli`: under ``python -m hf_eff.cli`` that module is ``__main__``, and a
second import of it would create a second, different ``UsageError``.
"""

import argparse
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


class UsageError(ValueError):
    """A bad argument value that argparse could not check; ``hf-eff`` exits with code 2."""


@contextmanager
def arguments_checked() -> Iterator[None]:
    """Turn a ``ValueError``/``TypeError`` raised inside (building a config from the arguments) into a
    :class:`UsageError`: the library's own validation is what checks these arguments, so its message is the
    one-line error."""
    try:
        yield
    except UsageError:
        raise
    except (ValueError, TypeError) as error:
        raise UsageError(str(error)) from error


def _nearest_existing(path: Path) -> Path:
    path = path.absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _why_not_writable(folder: Path) -> str | None:
    existing = _nearest_existing(folder)
    if not existing.is_dir():
        return f"{existing} is not a folder"
    if not os.access(existing, os.W_OK | os.X_OK):
        return f"{existing} is not writable"
    return None


def writable_dir(value: str) -> Path:
    """An argparse ``type`` for a folder the command will write to: it exists as a writable folder, or can be
    created. Checked when the arguments are parsed, so a typo fails before the work, not after it. Creates
    nothing: ``--help`` and a failing argument leave the disk as it was."""
    path = Path(value)
    if reason := _why_not_writable(path):
        raise argparse.ArgumentTypeError(f"cannot write to folder {value!r}: {reason}")
    return path


def writable_file(value: str) -> Path:
    """An argparse ``type`` for a file the command will write: not a folder, and its folder can be written."""
    path = Path(value)
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{value!r} is a folder, expected a file path")
    if reason := _why_not_writable(path.parent):
        raise argparse.ArgumentTypeError(f"cannot write {value!r}: {reason}")
    return path


def existing_file(value: str) -> Path:
    """An argparse ``type`` for an input file: it must exist (a missing input is a bad argument)."""
    path = Path(value)
    if not path.is_file():
        raise argparse.ArgumentTypeError(f"no such file: {value!r}" if not path.exists() else f"not a file: {value!r}")
    return path


def add_common_arguments(parser: argparse.ArgumentParser, default_output_dir: str) -> None:
    """``--seed`` and ``--output_dir``, which every command takes."""
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    parser.add_argument(
        "--output_dir",
        type=writable_dir,
        default=default_output_dir,  # a string, so argparse checks the default too
        help=f"where to write results (default: {default_output_dir})",
    )
