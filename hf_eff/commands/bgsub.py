"""``hf-eff bgsub FOREGROUND_VIDEO BACKGROUND_VIDEO`` (one pair) or ``hf-eff bgsub FOLDER`` (every pair in it, in
parallel processes): the object-only video from two handheld videos of one scene."""

import argparse
from pathlib import Path

from hf_eff.commands import UsageError, add_common_arguments, arguments_checked, existing_file, writable_file


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "bgsub",
        help="extract the foreground object(s) of a video, given a second video of the same scene without them",
        description=(
            "Background subtraction from two handheld videos (Hamid et al., arXiv 1404.5351): match each frame of "
            "FOREGROUND_VIDEO to the background frame filmed from the same viewpoint, align and difference them. "
            "Writes the object-only video (background black), optionally a mask video, and a JSON summary. "
            "Given a FOLDER instead, processes every pair NAME.EXT + NAME_background.EXT in it with --num_workers "
            "processes and writes NAME_foreground.mp4, NAME_masks.mp4 and bgsub.json to --output_dir."
        ),
    )
    parser.add_argument(
        "foreground_video", type=_file_or_folder, help="video with the object(s), or a folder of video pairs"
    )
    parser.add_argument(
        "background_video",
        type=existing_file,
        nargs="?",
        help="video of the same scene without the object(s) (omitted with a folder)",
    )
    parser.add_argument(
        "--output",
        type=writable_file,
        default=None,
        help="object-only video (.mp4/.mkv/.avi; default OUTPUT_DIR/foreground.mp4)",
    )
    parser.add_argument(
        "--masks", type=writable_file, default=None, help="also write the masks as a video (.mp4/.mkv/.avi)"
    )
    parser.add_argument(
        "--matching",
        choices=("windowed", "online", "brute-force"),
        default="windowed",
        help="frame matching: windowed (temporal smoothness over the whole video, two passes; default), online "
        "(each frame as it arrives, one pass, constant memory) or brute-force (all pairs)",
    )
    parser.add_argument(
        "--verify_window", type=int, default=2, help="background frames verified on each side (default 2)"
    )
    parser.add_argument("--working_size", type=int, default=256, help="longer side used for processing (default 256)")
    parser.add_argument(
        "--threshold",
        type=_threshold,
        default="auto",
        help="difference threshold in 0-255 Lab units, or 'auto' (default)",
    )
    parser.add_argument(
        "--refinement",
        choices=("flow", "none"),
        default="flow",
        help="local alignment after the homography: dense optical flow for parallax (default) or none",
    )
    parser.add_argument(
        "--num_workers", type=int, default=2, help="processes for a folder of pairs (default 2; 0 = this process)"
    )
    parser.add_argument("--no_progress", action="store_true", help="do not show progress bars")
    add_common_arguments(parser, "hf_eff_bgsub")
    parser.set_defaults(func=run)


def _file_or_folder(value: str) -> Path:
    path = Path(value)
    return path if path.is_dir() else existing_file(value)


def _threshold(value: str) -> float | str:
    if value == "auto":
        return value
    try:
        return float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number or 'auto', got {value!r}") from None


def run(args: argparse.Namespace) -> int:
    from hf_eff.video import BackgroundSubtractor
    from hf_eff.video._opencv import require_cv2

    folder = args.foreground_video.is_dir()
    with arguments_checked():
        if folder and args.background_video is not None:
            raise UsageError("give either a folder of video pairs, or a foreground and a background video")
        if not folder and args.background_video is None:
            raise UsageError("the following arguments are required: background_video")
        if folder and (args.output is not None or args.masks is not None):
            raise UsageError("--output and --masks name one pair's files; a folder's outputs go to --output_dir")
        if args.num_workers < 0:
            raise UsageError(f"--num_workers must be >= 0, got {args.num_workers}")
        subtractor = BackgroundSubtractor(
            matching=args.matching,
            verify_window=args.verify_window,
            working_size=args.working_size,
            threshold=args.threshold,
            refinement=args.refinement,
        )
    require_cv2().setRNGSeed(args.seed)  # RANSAC draws from OpenCV's global generator
    args.output_dir.mkdir(parents=True, exist_ok=True)
    if folder:
        return _run_folder(args, subtractor)
    return _run_pair(args, subtractor)


def _run_pair(args: argparse.Namespace, subtractor) -> int:
    import json

    from hf_eff.video import VideoReader

    # opened here, named after the arguments: a file that is not a video fails now, in one line that names it
    foreground = VideoReader(args.foreground_video, "foreground_video")
    background = VideoReader(args.background_video, "background_video")
    output = args.output or args.output_dir / "foreground.mp4"
    result = subtractor(
        foreground,
        background,
        output_video=output,
        mask_video=args.masks,
        return_frames=False,
        progress=not args.no_progress,
    )
    summary = {
        "foreground_video": str(args.foreground_video),
        "background_video": str(args.background_video),
        "output": str(output),
        "masks": None if args.masks is None else str(args.masks),
        "matches": result.matches.tolist(),
        "alignment": result.alignment,
        "inliers": result.inliers.tolist(),
        "foreground_fraction": result.masks.mean(axis=(1, 2)).round(4).tolist(),
        "stats": result.stats,
    }
    summary_path = args.output_dir / "bgsub.json"
    summary_path.write_text(json.dumps(summary, indent=2) + "\n")
    stats = result.stats
    print(
        f"{stats['frames']} frames matched against {stats['background_frames']} background frames with "
        f"{stats['verifications']} alignments ({stats['strategy']}); wrote {output} and {summary_path}"
    )
    return 0


def _run_folder(args: argparse.Namespace, subtractor) -> int:
    import json
    from dataclasses import asdict

    from hf_eff.video.batch import find_pairs, process_pairs

    pairs = find_pairs(args.foreground_video)
    summaries = process_pairs(
        pairs,
        args.output_dir,
        asdict(subtractor.settings),
        num_workers=args.num_workers,
        progress=not args.no_progress,
    )
    summary_path = args.output_dir / "bgsub.json"
    summary_path.write_text(json.dumps({"pairs": summaries}, indent=2) + "\n")
    frames = sum(s["frames"] for s in summaries)
    print(f"{len(summaries)} pairs ({frames} frames) processed; wrote {args.output_dir} and {summary_path}")
    return 0
