"""Fit a CRAFTMaps polynomial-kernel classifier in one pass over an image dataset and save it, ready to push.

    python examples/craftmaps/train_craftmaps.py                        # sklearn digits, offline
    python examples/craftmaps/train_craftmaps.py --dataset fashion-mnist --n_components 2048
    torchrun --nproc_per_node 2 examples/craftmaps/train_craftmaps.py --expected_world_size 2      # 2 CPU processes
    accelerate launch --multi_gpu --num_processes 2 --num_machines 1 --mixed_precision no --dynamo_backend no \\
        examples/craftmaps/train_craftmaps.py --expected_world_size 2                          # the same via accelerate

Each process streams its own shard of the training set; the normal equations are summed across processes, so every
rank ends with the same model. The main process evaluates it, saves it (config, safetensors weights, a model card
with the measured accuracy) and optionally pushes it to the Hub. The script stops at start-up unless the world size
is the launcher's (and ``--expected_world_size``'s): ``accelerate launch --cpu --num_processes 2`` starts ONE
process. There is no Trainer (the fit is one closed-form pass), so the flags are this script's own.
"""

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class CraftMapsScriptArguments:
    dataset: str = field(default="digits", metadata={"help": "hf_eff.load_image_dataset name, local path or Hub id"})
    n_components: int = field(default=512, metadata={"help": "output dimension E of the random map"})
    n_components_up: int | None = field(default=None, metadata={"help": "up-projection dimension D (default 4E)"})
    degree: int = field(default=3, metadata={"help": "polynomial kernel degree"})
    gamma: float = field(default=1.0, metadata={"help": "kernel scale"})
    coef0: float = field(default=1.0, metadata={"help": "kernel constant"})
    up: str = field(default="auto", metadata={"help": "up-projection", "choices": ["auto", "ctr", "ts", "rm"]})
    down: str = field(
        default="auto", metadata={"help": "down-projection", "choices": ["auto", "countsketch", "srht", "gaussian"]}
    )
    code: str = field(
        default="random", metadata={"help": "output code of the ECOC head", "choices": ["ovr", "random"]}
    )
    alpha: float = field(default=1e-3, metadata={"help": "ridge penalty"})
    batch_size: int = field(default=512, metadata={"help": "rows per streamed batch"})
    max_train_samples: int | None = field(default=None, metadata={"help": "subsample the training split"})
    seed: int = field(default=0, metadata={"help": "seeds the random map, the codes and the subsampling"})
    output_dir: str = field(default="craftmaps-digits", metadata={"help": "where the model is saved"})
    push_to_hub: bool = field(default=False, metadata={"help": "upload the saved model (needs a token)"})
    hub_model_id: str | None = field(default=None, metadata={"help": "repository id for --push_to_hub"})
    expected_world_size: int | None = field(default=None, metadata={"help": "fail unless this many processes run"})


def parse_args(argv: list[str] | None = None):
    from transformers import HfArgumentParser

    parser = HfArgumentParser(CraftMapsScriptArguments, description=__doc__.splitlines()[0])
    (args,) = parser.parse_args_into_dataclasses(list(sys.argv[1:] if argv is None else argv))
    if args.push_to_hub and not args.hub_model_id:
        parser.error("--push_to_hub needs --hub_model_id")
    return parser, args


def main(argv: list[str] | None = None) -> int:
    parser, args = parse_args(argv)
    import torch
    from accelerate import Accelerator

    import hf_eff
    from hf_eff import CraftMapsConfig, CraftMapsForClassification
    from hf_eff.distributed import world_size_problem
    from hf_eff.modelcard import accuracy_card_metadata

    accelerator = Accelerator(cpu=not torch.cuda.is_available())
    if problem := world_size_problem(accelerator.num_processes, args.expected_world_size):
        parser.error(problem)
    data = hf_eff.load_image_dataset(args.dataset, seed=args.seed, max_train_samples=args.max_train_samples)
    channels, height, width = torch.tensor(data["train"][0]["pixel_values"]).shape
    config = CraftMapsConfig(
        num_features=channels * height * width,
        image_size=[height, width],
        num_channels=channels,
        degree=args.degree,
        gamma=args.gamma,
        coef0=args.coef0,
        n_components=args.n_components,
        n_components_up=args.n_components_up,
        up=args.up,
        down=args.down,
        code=args.code,
        alpha=args.alpha,
        seed=args.seed,
        num_labels=data["train"].features["label"].num_classes,
    )
    model = CraftMapsForClassification(config).to(accelerator.device)
    shard = data["train"].shard(accelerator.num_processes, accelerator.process_index, contiguous=True)
    # one pass; sums the normal equations over all processes; the ClassLabel names become config.id2label
    model.fit(shard, batch_size=args.batch_size)

    if accelerator.is_main_process:
        test = data["test"].with_format("torch")
        correct = 0
        for batch in test.iter(batch_size=args.batch_size):
            predicted = model.predict(batch["pixel_values"].to(accelerator.device)).cpu()
            correct += int((predicted == batch["label"]).sum())
        accuracy = correct / len(test)
        model.card_metadata = accuracy_card_metadata(args.dataset, accuracy)
        output_dir = Path(args.output_dir)
        model.save_pretrained(output_dir)
        metrics = {"test_accuracy": accuracy, "train_samples": model.num_fit_samples, "dataset": args.dataset}
        (output_dir / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
        print(
            f"test accuracy {accuracy:.4f} on {len(test)} {args.dataset} images "
            f"(E={args.n_components}, degree {args.degree}, {accelerator.num_processes} processes); "
            f"saved to {output_dir}"
        )
        if args.push_to_hub:
            model.push_to_hub(args.hub_model_id)
    accelerator.wait_for_everyone()
    accelerator.end_training()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
