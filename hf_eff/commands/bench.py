"""``hf-eff bench METHOD|all|list [--quick]``: one method's benchmark against its baseline in the same run."""

import argparse

from hf_eff.commands import add_common_arguments, arguments_checked


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("bench", help="benchmark one method (or 'all') against its baseline")
    parser.add_argument("method", help="a method name, 'all', or 'list' to see the available ones")
    parser.add_argument("--quick", action="store_true", help="small settings (what CI and the tour run)")
    add_common_arguments(parser, "hf_eff_bench")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from hf_eff.bench.registry import benchmark_summaries, check_benchmark_names

    if args.method == "list":  # from the sources: importing every method to print names took seconds
        for name, summary in benchmark_summaries().items():
            print(f"{name:12s} {summary}")
        return 0
    if args.method != "all":
        with arguments_checked():
            check_benchmark_names([args.method])
    from hf_eff.bench.runner import run_benchmarks

    run_benchmarks(args.method, quick=args.quick, seed=args.seed, output_dir=args.output_dir)
    return 0
