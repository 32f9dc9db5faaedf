"""The ``hf-eff`` command: ``tour``, ``bench``, and one subcommand per method that wants one.

Subcommands live in ``hf_eff/commands/<name>.py`` and are discovered here; their errors are defined there, once
(:class:`hf_eff.commands.UsageError`). Bad arguments give one line on stderr and exit code 2; an error while
running (bad data, a missing file, a failed run) gives one line and exit code 1. Pass ``--traceback`` for the
full Python traceback.
"""

import argparse
import importlib
import pkgutil
import sys

import hf_eff.commands as commands
from hf_eff.commands import UsageError


class _OneLineErrorParser(argparse.ArgumentParser):
    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def build_parser() -> argparse.ArgumentParser:
    from hf_eff import __version__

    parser = _OneLineErrorParser(
        prog="hf-eff",
        description="Efficiency methods from research papers as native Hugging Face pieces.",
    )
    parser.add_argument("--version", action="version", version=f"hf-eff {__version__}")
    parser.add_argument("--traceback", action="store_true", help="show the full traceback on errors")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_OneLineErrorParser)
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda info: info.name):
        if not info.name.startswith("_"):
            importlib.import_module(f"{commands.__name__}.{info.name}").add_parser(subparsers)
    return parser


def _one_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("hf-eff: interrupted", file=sys.stderr)
        return 130
    except UsageError as error:
        if args.traceback:
            raise
        print(f"hf-eff {args.command}: error: {_one_line(error)} (see --help)", file=sys.stderr)
        return 2
    except (ValueError, TypeError, OSError, ImportError, RuntimeError) as error:
        if args.traceback:
            raise
        print(f"hf-eff {args.command}: error: {_one_line(error)}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
