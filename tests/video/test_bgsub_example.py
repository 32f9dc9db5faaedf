"""The example script parses its flags with HfArgumentParser and refuses contradictory ones in one line."""

import importlib.util
from pathlib import Path

import pytest


def _example():
    path = Path(__file__).parents[2] / "examples" / "background_subtraction" / "run_bgsub.py"
    spec = importlib.util.spec_from_file_location("run_bgsub", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--foreground", "a.mp4"], "give both --foreground and --background"),
        (["--pairs_folder", "x", "--foreground", "a.mp4", "--background", "b.mp4"], "either --pairs_folder"),
        (["--scene", "moon"], "--scene must be"),
        (["--frames", "0"], "must be positive"),
    ],
)
def test_bad_flags_are_usage_errors(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        _example().main(argv)
    assert exit_info.value.code == 2 and message in capsys.readouterr().err


def test_flags_fill_the_dataclass():
    from transformers import HfArgumentParser

    module = _example()
    (args,) = HfArgumentParser(module.BgsubArguments).parse_args_into_dataclasses(
        args=["--scene", "parallax", "--matching", "online", "--num_pairs", "3"]
    )
    assert (args.scene, args.matching, args.num_pairs, args.refinement) == ("parallax", "online", 3, "flow")
