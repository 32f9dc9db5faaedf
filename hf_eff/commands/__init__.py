"""The subcommands of ``hf-eff``, one module each, and the one place their errors are defined.

Each public module here defines ``add_parser(subparsers) -> None``, which adds its parser and sets
``func=<callable(args) -> int>``; :mod:`hf_eff.cli` discovers the modules. Exit codes: a bad argument is a
:class:`UsageError` (or an argparse error) and exits with 2; anything that goes wrong while the command runs (bad
data, a missing file, a failed training run) exits with 1. Both print one line.

This package never imports :mod:`hf_eff.cli`: under ``python -m hf_eff.cli`` that module is ``__main__``, and a
second import of it would create a second, different ``UsageError``.
"""

import argparse
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


def add_common_arguments(parser: argparse.ArgumentParser, default_output_dir: str) -> None:
    """``--seed`` and ``--output_dir``, which every command takes."""
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    parser.add_argument(
        "--output_dir",
        type=Path,
        default=Path(default_output_dir),
        help=f"where to write results (default: {default_output_dir})",
    )
