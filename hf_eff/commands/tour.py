"""``hf-eff tour``: every method on its offline default data, quick settings, one table of measured effects."""

import argparse

from hf_eff.commands import add_common_arguments, arguments_checked


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "tour", help="run every method on its offline default data and print one table of measured effects"
    )
    add_common_arguments(parser, "hf_eff_tour")
    parser.add_argument("--only", nargs="+", metavar="METHOD", help="run only these methods")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from hf_eff.bench.registry import check_benchmark_names

    if args.only:
        with arguments_checked():
            check_benchmark_names(args.only)
    from hf_eff.bench.runner import run_tour

    run_tour(seed=args.seed, output_dir=args.output_dir, only=args.only)
    return 0
