"""Train a reversible RevBiFPN image classifier with the Hugging Face Trainer.

Runs offline on the default data (scikit-learn's 8x8 digits, upsampled), on CPU or GPU, single process or
distributed. Every ``TrainingArguments`` flag works (``--report_to``, ``--logging_steps``, ``--push_to_hub``, ...):

    python examples/revbifpn/train_classification.py --variant s0 --resolution 32 --num_train_epochs 1
    torchrun --nproc_per_node 2 examples/revbifpn/train_classification.py --expected_world_size 2   # 2 CPU processes
    accelerate launch --multi_gpu --num_processes 2 --num_machines 1 --mixed_precision no --dynamo_backend no \\
        examples/revbifpn/train_classification.py --expected_world_size 2                     # the same via accelerate

On a CPU-only machine the script sets ``--use_cpu`` (which joins the launched processes into one gloo DDP group) and
stops at start-up unless the world size is the launcher's (and ``--expected_world_size``'s):
``accelerate launch --cpu --num_processes 2`` starts ONE process. Every parameter gets a gradient, so
``--ddp_find_unused_parameters`` defaults to false (no DDP warning, no extra graph walk).

Reversibility needs nothing from the training loop: parameter gradients are returned from the reversible
autograd Function, so DDP, gradient accumulation and ``--resume_from_checkpoint`` behave as for any model.
``--storing`` trains the same network storing activations (the baseline); the script prints the bytes saved
for backward of one batch in both modes.
"""

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from transformers import HfArgumentParser, Trainer, TrainingArguments

from hf_eff import RevBiFPNConfig, RevBiFPNForImageClassification, load_image_dataset
from hf_eff.bench import SavedTensorsMeter
from hf_eff.distributed import world_size_problem
from hf_eff.modelcard import accuracy_card_metadata


@dataclass
class RevBiFPNScriptArguments:
    """Data and model; training is configured with TrainingArguments flags."""

    dataset: str = field(default="digits", metadata={"help": "'digits', 'fashion-mnist', a local path or a HF id"})
    variant: str = field(default="s0", metadata={"help": "RevBiFPN preset s0 ... s6"})
    resolution: int = field(default=32, metadata={"help": "input size (multiple of 32)"})
    storing: bool = field(default=False, metadata={"help": "store activations instead (the baseline)"})
    max_train_samples: int | None = field(default=None, metadata={"help": "subsample the training split"})
    expected_world_size: int | None = field(default=None, metadata={"help": "fail unless this many processes run"})


def parse_args(argv: list[str] | None = None) -> tuple[RevBiFPNScriptArguments, TrainingArguments]:
    parser = HfArgumentParser((RevBiFPNScriptArguments, TrainingArguments), description=__doc__.split("\n\n")[0])
    parser.set_defaults(  # this script's TrainingArguments defaults; any flag on the command line overrides them
        output_dir="revbifpn_digits",
        num_train_epochs=2,
        per_device_train_batch_size=32,
        per_device_eval_batch_size=64,
        learning_rate=2e-3,
        weight_decay=0.05,
        warmup_steps=0.05,
        lr_scheduler_type="cosine",
        eval_strategy="epoch",
        save_strategy="epoch",
        save_total_limit=2,
        logging_steps=10,
        remove_unused_columns=False,
        report_to="none",
        ddp_find_unused_parameters=False,  # every parameter gets a gradient
        use_cpu=not torch.cuda.is_available(),  # otherwise launched CPU processes do not form one DDP group
    )
    args, training_args = parser.parse_args_into_dataclasses(args=argv)
    if args.resolution % 32:
        parser.error(f"--resolution must be a multiple of 32 (the network's total stride), got {args.resolution}")
    if problem := world_size_problem(training_args.world_size, args.expected_world_size):
        parser.error(problem)
    return args, training_args


class Collator:
    """Stack images, resize them to ``resolution`` and centre them around 0 (the data is in [0, 1])."""

    def __init__(self, resolution: int):
        self.resolution = resolution

    def __call__(self, examples):
        pixels = torch.stack([torch.as_tensor(np.asarray(e["pixel_values"], dtype=np.float32)) for e in examples])
        pixels = torch.nn.functional.interpolate(pixels, size=self.resolution, mode="bilinear", align_corners=False)
        labels = torch.tensor([int(e["label"]) for e in examples])
        return {"pixel_values": (pixels - 0.5) / 0.5, "labels": labels}


def accuracy(eval_pred) -> dict[str, float]:
    logits, labels = eval_pred
    return {"accuracy": float((np.argmax(logits, axis=-1) == labels).mean())}


def saved_bytes_per_mode(model, batch) -> dict[str, int]:
    """Bytes autograd saves for backward on one batch, reversible vs storing (parameters excluded)."""
    result = {}
    for mode in ("reversible", "storing"):
        model.set_reversible(mode == "reversible")
        with SavedTensorsMeter(exclude=list(model.parameters())) as meter:
            loss = model(**batch).loss
        del loss
        result[mode] = meter.bytes
    return result


def main(argv: list[str] | None = None) -> None:
    args, training_args = parse_args(argv)
    data = load_image_dataset(args.dataset, seed=training_args.seed, max_train_samples=args.max_train_samples)
    label_names = data["train"].features["label"].names
    channels = int(np.asarray(data["train"][0]["pixel_values"]).shape[0])
    config = RevBiFPNConfig.from_variant(
        args.variant,
        num_channels=channels,
        image_size=args.resolution,
        id2label=dict(enumerate(label_names)),
        label2id={name: i for i, name in enumerate(label_names)},
        reversible=not args.storing,
    )
    torch.manual_seed(training_args.seed)
    model = RevBiFPNForImageClassification(config)
    collator = Collator(args.resolution)
    trainer = Trainer(
        model=model,
        args=training_args,
        data_collator=collator,
        train_dataset=data["train"],
        eval_dataset=data["test"],
        compute_metrics=accuracy,
    )
    trainer.train(resume_from_checkpoint=training_args.resume_from_checkpoint)
    metrics = trainer.evaluate()
    model.card_metadata = accuracy_card_metadata(args.dataset, metrics["eval_accuracy"])  # for the saved card
    trainer.save_model(training_args.output_dir)
    if training_args.push_to_hub and trainer.is_world_process_zero():
        # the model's own push keeps hf_eff's card (Trainer.push_to_hub would write transformers' generic one)
        model.push_to_hub(training_args.hub_model_id or Path(training_args.output_dir).name)

    if trainer.is_world_process_zero():
        unwrapped = trainer.model.train()
        batch = collator([data["train"][i] for i in range(min(8, len(data["train"])))])
        saved = saved_bytes_per_mode(unwrapped, {k: v.to(unwrapped.device) for k, v in batch.items()})
        unwrapped.set_reversible(not args.storing)
        print(f"eval accuracy: {metrics['eval_accuracy']:.4f}")
        print(
            f"bytes saved for backward (batch 8): reversible {saved['reversible']:,}, storing {saved['storing']:,} "
            f"({saved['storing'] / saved['reversible']:.1f}x less when reversible); world size {training_args.world_size}"
        )
    trainer.end()  # then leave without the gloo teardown abort seen with torch 2.13 on CPU (HF_CONVENTIONS §0.7)
    sys.stdout.flush()
    if training_args.world_size > 1:
        os._exit(0)


if __name__ == "__main__":
    main()
