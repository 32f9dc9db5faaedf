"""The ``hf-eff`` command: ``tour``, ``bench``, and one subcommand per method that wants one.

Method subcommands live in ``hf_eff/commands/<name>.py``; each module defines
``add_parser(subparsers) -> None`` that adds its parser and sets ``func=<callable(args) -> int>``.
Bad arguments give one line on stderr and exit code 2; an error while running (bad data, bad config) gives one
line and exit code 1. Pass ``--traceback`` for the full Python traceback.
"""

import argparse
import importlib
import pkgutil
import sys
from pathlib import Path


class _OneLineErrorParser(argparse.ArgumentParser):
    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


class UsageError(ValueError):
    """Raised by a command for an argument value argparse could not check; exits with code 2."""


def add_common_arguments(parser: argparse.ArgumentParser, default_output_dir: str) -> None:
    """``--seed`` and ``--output_dir``, which every command takes."""
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    parser.add_argument(
        "--output_dir",
        type=Path,
        default=Path(default_output_dir),
        help=f"where to write results (default: {default_output_dir})",
    )


def _run_tour(args: argparse.Namespace) -> int:
    from hf_eff.bench.runner import run_tour

    run_tour(seed=args.seed, output_dir=args.output_dir, only=args.only)
    return 0


def _run_bench(args: argparse.Namespace) -> int:
    from hf_eff.bench.registry import available_benchmarks
    from hf_eff.bench.runner import run_benchmarks, select_benchmarks

    if args.method == "list":
        for name, bench in available_benchmarks().items():
            print(f"{name:12s} {bench.summary}")
        return 0
    try:
        select_benchmarks(args.method)
    except ValueError as error:
        raise UsageError(str(error)) from error
    run_benchmarks(args.method, quick=args.quick, seed=args.seed, output_dir=args.output_dir)
    return 0


def build_parser() -> argparse.ArgumentParser:
    from hf_eff import __version__

    parser = _OneLineErrorParser(
        prog="hf-eff",
        description="Efficiency methods from research papers as native Hugging Face pieces.",
    )
    parser.add_argument("--version", action="version", version=f"hf-eff {__version__}")
    parser.add_argument("--traceback", action="store_true", help="show the full traceback on errors")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_OneLineErrorParser)

    tour = subparsers.add_parser(
        "tour", help="run every method on its offline default data and print one table of measured effects"
    )
    add_common_arguments(tour, "hf_eff_tour")
    tour.add_argument("--only", nargs="+", metavar="METHOD", help="run only these methods")
    tour.set_defaults(func=_run_tour)

    bench = subparsers.add_parser("bench", help="benchmark one method (or 'all') against its baseline")
    bench.add_argument("method", help="a method name, 'all', or 'list' to see the available ones")
    bench.add_argument("--quick", action="store_true", help="small settings (what CI and the tour run)")
    add_common_arguments(bench, "hf_eff_bench")
    bench.set_defaults(func=_run_bench)

    import hf_eff.commands as commands

    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda i: i.name):
        importlib.import_module(f"hf_eff.commands.{info.name}").add_parser(subparsers)
    return parser


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
        print(f"hf-eff {args.command}: error: {error}", file=sys.stderr)
        return 2
    except (ValueError, TypeError, FileNotFoundError, ImportError, RuntimeError) as error:
        if args.traceback:
            raise
        message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        print(f"hf-eff {args.command}: error: {message}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
