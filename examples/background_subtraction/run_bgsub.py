"""Extract the foreground object from handheld videos with ``pipeline("video-background-subtraction")``.

Give it your own pair (a video with the object, a video of the same scene without it), a folder of pairs, or let it
render synthetic handheld pairs with ground truth (offline, from scikit-image photographs; ``--scene parallax`` for
two planes at different depths) and report mask F1 / IoU (the ``evaluate`` metric
``hf_eff.metrics.load("mask_f1")``) and match accuracy per pair:

    python examples/background_subtraction/run_bgsub.py                                   # 2 synthetic pairs
    python examples/background_subtraction/run_bgsub.py --scene parallax --matching online
    python examples/background_subtraction/run_bgsub.py --foreground with.mp4 --background empty.mp4
    python examples/background_subtraction/run_bgsub.py --pairs_folder my_pairs/ --num_workers 2
    accelerate launch --multi_gpu --num_processes 2 --mixed_precision no --dynamo_backend no \\
        examples/background_subtraction/run_bgsub.py --num_pairs 4
    # 2 CPU processes: the synthetic pairs are split between them (each process runs the pipeline on its share)

Writes, per pair, the object-only video (background black), a mask video and a JSON summary to --output_dir.
A folder holds pairs NAME.mp4 + NAME_background.mp4; they are processed by --num_workers processes.
"""

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class BgsubArguments:
    """What to process and how (``--help`` lists every flag)."""

    foreground: str | None = field(default=None, metadata={"help": "video with the object(s); omit for synthetic"})
    background: str | None = field(default=None, metadata={"help": "video of the same scene without the object(s)"})
    pairs_folder: str | None = field(default=None, metadata={"help": "a folder of NAME + NAME_background videos"})
    num_workers: int = field(default=2, metadata={"help": "processes for --pairs_folder (0 = this process)"})
    num_pairs: int = field(default=2, metadata={"help": "synthetic pairs to render"})
    frames: int = field(default=40, metadata={"help": "frames of each synthetic object video"})
    shake: float = field(default=2.0, metadata={"help": "hand shake of the synthetic camera, px"})
    scene: str = field(default="standard", metadata={"help": "synthetic scene: 'standard' or 'parallax'"})
    matching: str = field(default="windowed", metadata={"help": "'windowed', 'online' (streaming) or 'brute-force'"})
    refinement: str = field(default="flow", metadata={"help": "'flow' (parallax) or 'none'"})
    verify_window: int = field(default=2, metadata={"help": "frames verified on each side of a match"})
    output_dir: str = field(default="hf_eff_bgsub_example", metadata={"help": "where results are written"})
    seed: int = field(default=0, metadata={"help": "seed of the synthetic pairs and of RANSAC"})

    def __post_init__(self):
        if (self.foreground is None) != (self.background is None):
            raise ValueError("give both --foreground and --background, or neither")
        if self.pairs_folder is not None and self.foreground is not None:
            raise ValueError("give either --pairs_folder or --foreground/--background, not both")
        if self.num_pairs < 1 or self.frames < 1:
            raise ValueError(f"--num_pairs and --frames must be positive, got {self.num_pairs} and {self.frames}")
        if self.scene not in ("standard", "parallax"):
            raise ValueError(f"--scene must be 'standard' or 'parallax', got {self.scene!r}")


_SCENES = {"standard": {}, "parallax": {"near_plane_parallax": 0.5, "pass_offset": 10.0}}


def main(argv: list[str] | None = None) -> None:
    from transformers import HfArgumentParser

    parser = HfArgumentParser(BgsubArguments)
    try:
        (args,) = parser.parse_args_into_dataclasses(args=list(sys.argv[1:] if argv is None else argv))
    except ValueError as error:  # __post_init__'s checks, as a usage error
        parser.error(str(error))
    import cv2
    from accelerate import PartialState
    from transformers import pipeline

    import hf_eff
    import hf_eff.metrics
    from hf_eff.video import make_handheld_pair, match_accuracy

    state = PartialState(cpu=True)  # the method runs on the CPU; processes share the list of pairs
    cv2.setRNGSeed(args.seed + state.process_index)
    config = hf_eff.VideoBackgroundSubtractionConfig(
        matching=args.matching, refinement=args.refinement, verify_window=args.verify_window
    )
    pipe = pipeline("video-background-subtraction", model=hf_eff.VideoBackgroundSubtractionModel(config), device="cpu")
    output_dir = Path(args.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)

    if args.pairs_folder is not None:  # many pairs: worker processes, each streaming its videos from disk
        if state.is_main_process:
            summaries = pipe(args.pairs_folder, output_dir=output_dir, num_workers=args.num_workers)
            (output_dir / "pairs.json").write_text(json.dumps(summaries, indent=2) + "\n")
            print(f"{len(summaries)} pairs -> {output_dir}")
        state.wait_for_everyone()
        return

    jobs = [("user", None)] if args.foreground is not None else [(f"pair{k}", k) for k in range(args.num_pairs)]
    with state.split_between_processes(jobs) as my_jobs:
        for name, index in my_jobs:
            if index is None:
                video, background, truth = args.foreground, args.background, None
            else:
                truth = make_handheld_pair(
                    args.frames,
                    round(1.2 * args.frames),
                    shake=args.shake,
                    seed=args.seed + index,
                    **_SCENES[args.scene],
                )
                video, background = truth.foreground, truth.background
            out = pipe(
                video,
                background_video=background,
                output_video=output_dir / f"{name}_foreground.mp4",
                mask_video=output_dir / f"{name}_masks.mp4",
                output_format="numpy",
                return_foreground=False,
                progress=state.is_main_process,
            )
            summary = {
                "pair": name,
                "matches": out["matches"],
                "alignment_methods": sorted(set(out["alignment"])),
                "alignments_computed": out["stats"]["verifications"],
                "seconds": out["stats"]["seconds"],
            }
            if truth is not None:
                # in memory: processes running side by side share no metric cache files
                metric = hf_eff.metrics.load("mask_f1", keep_in_memory=True)
                summary.update(metric.compute(predictions=list(out["masks"]), references=list(truth.masks)))
                summary["match_within_1_frame"] = match_accuracy(out["matches"], truth.true_matches)
            (output_dir / f"{name}.json").write_text(json.dumps(summary, indent=2) + "\n")
            scores = f", F1 {summary['f1']:.3f}, IoU {summary['iou']:.3f}" if truth is not None else ""
            print(f"[process {state.process_index}] {name}: {len(out['matches'])} frames{scores} -> {output_dir}")
    state.wait_for_everyone()


if __name__ == "__main__":
    main()
