"""Train a small classifier on the scikit-learn 8x8 digits while a bandit picks the learning rate (hot swapping).

Runs offline on CPU in seconds, and the same way under several processes:

    python examples/bandit_lr/train_bandit_lr.py
    python examples/bandit_lr/train_bandit_lr.py --mode multiplier --lr_scheduler_type linear --backtrack
    accelerate launch --multi_gpu --num_processes 2 --mixed_precision no --dynamo_backend no \\
        examples/bandit_lr/train_bandit_lr.py          # 2 CPU processes (gloo); every rank plays the same arms
    python examples/bandit_lr/train_bandit_lr.py --resume_from_checkpoint hf_eff_bandit_lr/checkpoint-200

Checkpoints keep the bandit (statistics, random generator, current arm): resuming continues the same arm
sequence, because the Trainer is built with ``restore_callback_states_from_checkpoint=True``.
"""

import argparse
import json

from hf_eff.bench.training import DigitsMLP, load_digits_splits, train_once
from hf_eff.callbacks.bandit_lr import BanditLRCallback, BanditLRTrainer


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--arms",
        type=float,
        nargs="+",
        default=[0.003, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0],
        help="learning rates (or multipliers with --mode multiplier) the bandit chooses from",
    )
    parser.add_argument("--episode_steps", type=int, default=10, help="optimizer steps per episode (one arm each)")
    parser.add_argument("--mode", choices=["absolute", "multiplier"], default="absolute")
    parser.add_argument("--bandit", default="ducb", help="ducb, swucb, ucb1, epsilon_greedy or thompson")
    parser.add_argument("--reward", choices=["probe_loss", "train_loss"], default="probe_loss")
    parser.add_argument("--backtrack", action="store_true", help="undo episodes that made the objective worse")
    parser.add_argument("--probe_size", type=int, default=256, help="held-out training examples used as probe set")
    parser.add_argument(
        "--learning_rate",
        type=float,
        default=1.0,
        help="the schedule's peak rate in multiplier mode (ignored in absolute mode)",
    )
    parser.add_argument("--lr_scheduler_type", default="constant")
    parser.add_argument("--max_steps", type=int, default=600)
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--save_steps", type=int, default=200, help="a multiple of --episode_steps is best")
    parser.add_argument("--output_dir", default="hf_eff_bandit_lr")
    parser.add_argument("--resume_from_checkpoint", default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--report_to", default="none", help="e.g. tensorboard or wandb: sees the bandit_lr/* metrics")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    splits = load_digits_splits(args.seed, probe_size=args.probe_size)  # the probe set is held out of training
    bandit = BanditLRCallback(
        args.arms,
        episode_steps=args.episode_steps,
        mode=args.mode,
        bandit=args.bandit,
        reward=args.reward,
        probe_dataset=splits["probe"] if args.reward == "probe_loss" else None,
        backtrack=args.backtrack,
        seed=args.seed,
    )
    # BanditLRTrainer = Trainer + the bandit's episode metrics in every report_to integration (plain Trainer works too)
    result = train_once(
        splits["train"],
        max_steps=args.max_steps,
        seed=args.seed,
        model_factory=DigitsMLP,
        eval_dataset=splits["test"],
        callbacks=[bandit],
        trainer_class=BanditLRTrainer,
        training_args={
            "per_device_train_batch_size": args.batch_size,
            "learning_rate": args.learning_rate,
            "lr_scheduler_type": args.lr_scheduler_type,
            "logging_steps": args.episode_steps,
            "save_strategy": "steps",
            "save_steps": args.save_steps,
            "restore_callback_states_from_checkpoint": True,  # resume with the saved bandit
            "report_to": args.report_to,
        },
        output_dir=args.output_dir,
        resume_from_checkpoint=args.resume_from_checkpoint,
        quiet=False,
    )

    # the callback instance may have been replaced when its state was restored from a checkpoint
    trainer = result.trainer
    bandit = next(cb for cb in trainer.callback_handler.callbacks if isinstance(cb, BanditLRCallback))
    if trainer.is_world_process_zero():
        trace = bandit.arm_trace
        metrics = {"eval_loss": result.metrics["loss"], "eval_accuracy": result.metrics["accuracy"]}
        print("final metrics:", json.dumps(metrics))
        print(f"arms played per episode: {trace}")
        print(f"episodes backtracked: {sum(record['backtracked'] for record in bandit.history)} of {len(trace)}")
        print("last 10 episodes, most played:", max(set(trace[-10:]), key=trace[-10:].count) if trace else None)


if __name__ == "__main__":
    main()
