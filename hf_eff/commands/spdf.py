"""``hf-eff spdf``: sparse pre-train a GPT, dense fine-tune it on another dataset, evaluate both."""

import argparse

from hf_eff.commands import UsageError, add_common_arguments, arguments_checked


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "spdf",
        help="SPDF: sparse pre-training then dense fine-tuning of a GPT model",
        description="Sparse pre-train a GPT from a config on one dataset (static random masks), dense fine-tune "
        "it on a downstream dataset, and report eval loss / perplexity of both phases and the theoretical "
        "pre-training FLOPs saved. Datasets: hf_eff.data corpus/task names, a local path or a HF dataset id.",
    )
    parser.add_argument(
        "--model_config",
        default="gpt2-mini",
        help="gpt2-tiny | gpt2-mini | gpt2-small (byte-level vocab) or a config.json path/folder",
    )
    parser.add_argument("--pretrain_dataset", default="python-stdlib-docs")
    parser.add_argument("--finetune_dataset", default="python-scientific-docs")
    parser.add_argument("--sparsity", type=float, default=0.75, help="fraction of block weights masked, in [0, 1)")
    parser.add_argument("--distribution", choices=["uniform", "erk"], default="uniform")
    parser.add_argument("--seq_len", type=int, default=128)
    parser.add_argument("--batch_size", type=int, default=16)
    parser.add_argument("--pretrain_steps", type=int, default=1000)
    parser.add_argument("--pretrain_lr", type=float, default=2e-3)
    parser.add_argument("--finetune_steps", type=int, default=300)
    parser.add_argument("--finetune_lr", type=float, default=5e-4)
    parser.add_argument("--finetune_warmup", type=float, default=0.1, help="warm-up fraction of fine-tuning")
    parser.add_argument("--lora", action="store_true", help="fine-tune LoRA adapters on the frozen sparse model")
    parser.add_argument("--max_chars", type=int, default=None, help="cut each training corpus to this many chars")
    parser.add_argument("--cpu", action="store_true", help="train on CPU even if a GPU is present")
    add_common_arguments(parser, "spdf_output")
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    import json

    arguments = _recipe_arguments(args)  # checked before the heavy imports: a typo fails fast
    from hf_eff.sparsity.recipe import run_spdf

    result = run_spdf(**arguments)
    args.output_dir.mkdir(parents=True, exist_ok=True)
    (args.output_dir / "results.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0


def _recipe_arguments(args: argparse.Namespace) -> dict:
    """``run_spdf``'s keyword arguments from the command line; a value the library refuses is a bad argument."""
    if args.seq_len < 2:
        raise UsageError(f"--seq_len must be >= 2, got {args.seq_len}")
    from hf_eff.sparsity.config import SparsityConfig
    from hf_eff.sparsity.recipe import TrainSchedule, default_lora_config, model_config_from

    with arguments_checked():
        return {
            "model_config": model_config_from(args.model_config, args.seq_len),
            "pretrain_dataset": args.pretrain_dataset,
            "finetune_dataset": args.finetune_dataset,
            "sparsity_config": SparsityConfig(sparsity=args.sparsity, distribution=args.distribution, seed=args.seed),
            "pretrain": TrainSchedule(args.pretrain_steps, args.pretrain_lr, args.batch_size),
            "finetune": TrainSchedule(
                args.finetune_steps,
                args.finetune_lr,
                args.batch_size,
                args.finetune_warmup,
                weight_decay=0.01,
                adam_beta2=0.999,
            ),
            "seq_len": args.seq_len,
            "output_dir": str(args.output_dir),
            "seed": args.seed,
            "peft_config": default_lora_config() if args.lora else None,
            "max_chars": args.max_chars,
            "use_cpu": args.cpu,
        }
