"""Train an image classifier with SWAP (stochastic weight averaging in parallel) through the Hugging Face Trainer.

Phase 1 trains one model with the large batch of the TrainingArguments (data-parallel over all processes) until
the training accuracy reaches ``--stop_accuracy`` or the phase-1 budget (``--num_train_epochs`` / ``--max_steps``)
runs out; phase 2 lets every process refine its own copy with ``--phase2_batch_size`` for ``--phase2_epochs``;
phase 3 averages the copies, recomputes BatchNorm statistics, evaluates and saves ``<output_dir>/swap_averaged``
(loadable with ``AutoModelForImageClassification.from_pretrained``). The model is a small transformers ResNet
(with BatchNorm) on offline images: Fashion-MNIST when Debian's ``dataset-fashion-mnist`` is installed, else
scikit-learn's digits.

Two real CPU processes (one SWAP worker each; ``accelerate launch --cpu --num_processes 2`` would start ONE):

    torchrun --nproc_per_node 2 examples/swap/train_swap.py --output_dir swap_run --expected_world_size 2
    accelerate launch --multi_gpu --num_processes 2 --num_machines 1 --mixed_precision no --dynamo_backend no \\
        examples/swap/train_swap.py --output_dir swap_run --expected_world_size 2

One process, W workers one after another from the same phase-1 state (same averaged model, W times slower;
phase 1 then needs the whole large batch on one device):

    python examples/swap/train_swap.py --output_dir swap_run --num_workers 2 --per_device_train_batch_size 512

Add ``--save_strategy steps --save_steps 50`` to checkpoint, and ``--resume_from_checkpoint swap_run/checkpoint-N``
to continue (inside phase 2 too: every worker restores its own replica). On a CPU-only machine ``use_cpu`` is set
for you: without it torchrun's processes would not form one DDP group.
"""

import os
import sys
from dataclasses import dataclass, field

import numpy as np
import torch
from transformers import HfArgumentParser, ResNetConfig, ResNetForImageClassification, TrainingArguments

from hf_eff import SWAPCallback, SWAPConfig, SWAPTrainer, load_image_dataset


@dataclass
class SWAPScriptArguments:
    """Data and SWAP settings; everything else (phase 1 included) is a TrainingArguments flag."""

    dataset: str = field(default="auto", metadata={"help": "'fashion-mnist', 'digits', a path or a HF id; 'auto'"})
    max_train_samples: int | None = field(default=10000, metadata={"help": "subsample the training set"})
    max_eval_samples: int | None = field(default=2000, metadata={"help": "subsample the test set"})
    expected_world_size: int | None = field(default=None, metadata={"help": "fail unless this many processes run"})
    num_workers: int | None = field(default=None, metadata={"help": "W; None: one per process (>= 2 if alone)"})
    stop_accuracy: float | None = field(default=0.85, metadata={"help": "training accuracy ending phase 1"})
    phase2_learning_rate: float = field(default=0.05, metadata={"help": "peak LR of each phase-2 worker"})
    phase2_batch_size: int = field(default=32, metadata={"help": "per-worker batch of phase 2"})
    phase2_epochs: float = field(default=2.0, metadata={"help": "passes over the data of each worker in phase 2"})
    phase2_lr_scheduler_type: str = field(default="cosine", metadata={"help": "phase-2 schedule shape"})
    phase2_data_order: str = field(default="full", metadata={"help": "'full' or 'shard'"})
    phase2_optimizer_state: str = field(default="reset", metadata={"help": "'reset' or 'carry'"})


def main(argv: list[str] | None = None) -> None:
    parser = HfArgumentParser((SWAPScriptArguments, TrainingArguments))
    defaults = [
        "--per_device_train_batch_size", "256", "--learning_rate", "0.2", "--num_train_epochs", "4",
        "--optim", "sgd", "--optim_args", "momentum=0.9", "--lr_scheduler_type", "cosine",
        "--logging_steps", "20", "--report_to", "none", "--eval_strategy", "no",
        "--ddp_find_unused_parameters", "false",  # every ResNet parameter gets a gradient: no DDP warning
    ]  # fmt: skip
    if not torch.cuda.is_available():
        defaults += ["--use_cpu", "true"]  # joins torchrun / accelerate processes into one gloo group on CPU
    # the script's defaults first, so that any flag on the command line overrides them
    argv = list(sys.argv[1:] if argv is None else argv)
    script_args, training_args = parser.parse_args_into_dataclasses(defaults + argv)
    launched = int(os.environ.get("WORLD_SIZE", "1"))
    expected = script_args.expected_world_size or launched
    if training_args.world_size != expected or launched != expected:
        raise SystemExit(
            f"expected {expected} processes, the launcher started {launched} and the Trainer joined "
            f"{training_args.world_size}; use torchrun --nproc_per_node N (accelerate launch --cpu starts one)"
        )

    name = script_args.dataset
    if name == "auto":
        name = "fashion-mnist" if os.path.isdir("/usr/share/datasets/fashion-mnist") else "digits"
    data = load_image_dataset(
        name,
        seed=training_args.seed,
        max_train_samples=script_args.max_train_samples,
        max_eval_samples=script_args.max_eval_samples,
    ).with_format("torch")
    data = data.rename_column("label", "labels").select_columns(["pixel_values", "labels"])
    labels = data["train"].features["labels"].names
    channels = int(data["train"][0]["pixel_values"].shape[0])

    torch.manual_seed(training_args.seed)
    model = ResNetForImageClassification(
        ResNetConfig(
            num_channels=channels,
            embedding_size=16,
            hidden_sizes=[16, 32],
            depths=[1, 1],
            layer_type="basic",
            id2label=dict(enumerate(labels)),
            label2id={label: i for i, label in enumerate(labels)},
        )
    )
    swap = SWAPCallback(
        SWAPConfig(
            num_workers=script_args.num_workers,
            stop_accuracy=script_args.stop_accuracy,
            phase2_learning_rate=script_args.phase2_learning_rate,
            phase2_batch_size=script_args.phase2_batch_size,
            phase2_epochs=script_args.phase2_epochs,
            phase2_lr_scheduler_type=script_args.phase2_lr_scheduler_type,
            phase2_data_order=script_args.phase2_data_order,
            phase2_optimizer_state=script_args.phase2_optimizer_state,
        )
    )
    trainer = SWAPTrainer(
        model=model,
        args=training_args,
        train_dataset=data["train"],
        eval_dataset=data["test"],
        compute_metrics=_accuracy,
        callbacks=[swap],
    )
    output = trainer.train(resume_from_checkpoint=training_args.resume_from_checkpoint)
    if trainer.is_world_process_zero():
        for record in swap.history:
            print("swap:", record)
        print(f"averaged model: eval accuracy {output.metrics.get('eval_swap_accuracy', float('nan')):.4f}")
    trainer.end()  # then leave without the gloo teardown abort seen with torch 2.13 on CPU
    sys.stdout.flush()
    if training_args.world_size > 1:
        os._exit(0)


def _accuracy(eval_pred) -> dict[str, float]:
    logits, labels = eval_pred
    return {"accuracy": float((np.argmax(logits, axis=-1) == labels).mean())}


if __name__ == "__main__":
    main()
