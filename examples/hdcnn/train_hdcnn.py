"""Train an HD-CNN with the Hugging Face Trainer: building block -> learned category hierarchy -> fine-branch
pre-training -> global fine-tuning (``hf_eff.models.hdcnn.train_hdcnn``), then evaluate with and without
conditional execution.

Runs offline on scikit-learn's digits (default) or Fashion-MNIST (``apt-get install dataset-fashion-mnist``), on CPU
or GPU, single process or distributed:

    python examples/hdcnn/train_hdcnn.py --output_dir hdcnn_digits
    python examples/hdcnn/train_hdcnn.py --dataset fashion-mnist --max_train_samples 6000 --output_dir hdcnn_fm
    python examples/hdcnn/train_hdcnn.py --backbone resnet --output_dir hdcnn_resnet   # a transformers ResNet
    torchrun --nproc_per_node 2 examples/hdcnn/train_hdcnn.py --output_dir hdcnn_ddp       # 2 CPU processes
    accelerate launch --multi_gpu --num_processes 2 --num_machines 1 --mixed_precision no --dynamo_backend no \\
        examples/hdcnn/train_hdcnn.py --output_dir hdcnn_ddp                                 # same, via accelerate

On a CPU-only machine the script sets ``use_cpu`` (that is what joins the launched processes into one gloo DDP
group) and stops at start-up if the world size is not what the launcher asked for. Do not use
``accelerate launch --cpu --num_processes 2``: it silently runs one process. ``--resume`` continues an interrupted
run: finished stages are loaded, an interrupted stage resumes from its last checkpoint.
"""

import dataclasses
import os
import sys
from dataclasses import dataclass, field

import numpy as np
import torch
from transformers import AutoConfig, HfArgumentParser, Trainer, TrainingArguments

import hf_eff.metrics
from hf_eff import HDCNNConfig, load_image_dataset
from hf_eff.models.hdcnn import train_hdcnn


@dataclass
class HDCNNArguments:
    dataset: str = field(default="digits", metadata={"help": "'digits', 'fashion-mnist', a local path or HF id"})
    max_train_samples: int | None = field(default=None, metadata={"help": "subsample the training split"})
    max_eval_samples: int | None = field(default=None, metadata={"help": "subsample the test split"})
    backbone: str | None = field(
        default=None, metadata={"help": "model_type of a staged transformers CNN (resnet, convnext, regnet) "
                                "built from its default config with small widths; default: the small CNN"}
    )  # fmt: skip
    cnn_channels: list[int] = field(default_factory=lambda: [32, 64, 128], metadata={"help": "small-CNN widths"})
    num_shared_stages: int = field(default=1, metadata={"help": "building-block stages shared by all components"})
    num_coarse: int | None = field(default=None, metadata={"help": "K (None: affinity propagation picks it)"})
    gamma: float | None = field(default=5.0, metadata={"help": "overlap threshold 1/(gamma K); None: disjoint"})
    consistency_lambda: float = field(default=5.0, metadata={"help": "weight of the consistency term"})
    heldout_fraction: float = field(default=0.2, metadata={"help": "share of train held out for the hierarchy"})
    block_epochs: float = field(default=5.0)
    branch_epochs: float = field(default=2.0)
    finetune_epochs: float = field(default=2.0)
    conditional_top_k: int = field(default=1, metadata={"help": "fine components run per image at the last eval"})
    resume: bool = field(default=False, metadata={"help": "load finished stages, resume an interrupted one"})


def parse(argv=None) -> tuple[HDCNNArguments, TrainingArguments]:
    parser = HfArgumentParser((HDCNNArguments, TrainingArguments))
    hdcnn_args, training_args = parser.parse_args_into_dataclasses(args=argv)
    if not torch.cuda.is_available() and not training_args.use_cpu:
        # without use_cpu, launched CPU processes do not form one DDP group (HF_CONVENTIONS §4)
        training_args = dataclasses.replace(training_args, use_cpu=True)
    expected = int(os.environ.get("WORLD_SIZE", "1"))
    if training_args.world_size != expected:
        raise SystemExit(
            f"the launcher started {expected} processes but Trainer sees a world size of {training_args.world_size}; "
            "on CPU launch with torchrun or `accelerate launch --multi_gpu --num_processes N`, not `--cpu`"
        )
    return hdcnn_args, training_args


def block_config(args: HDCNNArguments, channels: int, names: list[str]) -> HDCNNConfig:
    labels = {"id2label": dict(enumerate(names)), "label2id": {n: i for i, n in enumerate(names)}}
    common = {"num_shared_stages": args.num_shared_stages, "consistency_lambda": args.consistency_lambda, **labels}
    if args.backbone is None:
        return HDCNNConfig(num_channels=channels, cnn_channels=args.cnn_channels, **common)
    backbone = AutoConfig.for_model(args.backbone, num_channels=channels, hidden_sizes=args.cnn_channels,
                                    depths=[1] * len(args.cnn_channels), num_stages=len(args.cnn_channels))  # fmt: skip
    return HDCNNConfig(backbone_config=backbone, **common)


def make_compute_metrics(fine_to_coarse: list[int] | None):
    """Fine accuracy, and coarse accuracy over the dataset's known grouping when it has one."""
    metric = hf_eff.metrics.load("hierarchical_accuracy")

    def compute_metrics(eval_pred):
        log_probs = eval_pred.predictions[0] if isinstance(eval_pred.predictions, tuple) else eval_pred.predictions
        return metric.compute(
            predictions=log_probs.argmax(-1), references=eval_pred.label_ids, fine_to_coarse=fine_to_coarse
        )

    return compute_metrics


def known_grouping(dataset) -> list[int] | None:
    if "coarse_label" not in dataset.column_names:
        return None
    fine, coarse = np.asarray(dataset["label"]), np.asarray(dataset["coarse_label"])
    return [int(coarse[np.flatnonzero(fine == j)[0]]) for j in range(int(fine.max()) + 1)]


def main(argv=None) -> None:
    args, training_args = parse(argv)
    data = load_image_dataset(
        args.dataset,
        seed=training_args.seed,
        max_train_samples=args.max_train_samples,
        max_eval_samples=args.max_eval_samples,
    )
    names = data["train"].features["label"].names
    channels = int(np.asarray(data["train"][0]["pixel_values"]).shape[0])
    grouping = known_grouping(data["train"])
    data = data.with_format("torch")  # pixels in [0, 1]; the first BatchNorm takes care of centring
    result = train_hdcnn(
        block_config(args, channels, names),
        data["train"],
        training_args,
        eval_dataset=data["test"],
        heldout_fraction=args.heldout_fraction,
        block_epochs=args.block_epochs,
        branch_epochs=args.branch_epochs,
        finetune_epochs=args.finetune_epochs,
        hierarchy_kwargs={"num_coarse": args.num_coarse, "gamma": args.gamma},
        compute_metrics=make_compute_metrics(grouping),
        resume=args.resume,
    )
    model = result.model
    model.config.conditional_top_k = args.conditional_top_k
    evaluator = Trainer(model=model, args=training_args, compute_metrics=make_compute_metrics(grouping))
    conditional = evaluator.evaluate(data["test"], metric_key_prefix="conditional")
    model.config.conditional_top_k = None
    if evaluator.is_world_process_zero():
        model.save_pretrained(os.path.join(training_args.output_dir, "hdcnn"))
        print("learned coarse categories (disjoint core | expanded):")
        for core, group in zip(result.hierarchy.member_names(False), result.hierarchy.member_names()):
            print(f"  {', '.join(core)} | {', '.join(group)}")
        block, final = result.metrics.get("building_block", {}), result.metrics.get("global", {})
        if block and final:
            print(f"building block accuracy: {block['eval_accuracy']:.4f}")
            print(f"HD-CNN accuracy:         {final['eval_accuracy']:.4f}")
        print(f"HD-CNN, top-{args.conditional_top_k} conditional execution: {conditional['conditional_accuracy']:.4f}")
        print(f"world size: {training_args.world_size}")


if __name__ == "__main__":
    main()
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()  # then leave without interpreter teardown (gloo abort at exit)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
