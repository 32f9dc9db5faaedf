"""A dataset name that is no built-in, no local path and no reachable Hub id is answered at once, not after the
Hub client's retries (about 25 s without a network)."""

import os
import subprocess
import sys
import time

import pytest

from hf_eff.data import load_image_dataset


@pytest.mark.parametrize(
    "name, reason",
    [
        ("./no/such/folder", "no such file or folder"),
        ("no-such-file.csv", "no such file or folder"),
        ("no/such/folder", "not a valid Hub id"),
        ("not a name", "not a valid Hub id"),
    ],
)
def test_a_missing_path_or_impossible_hub_id_is_named(name, reason):
    with pytest.raises(ValueError, match=f"name='{name}' is neither a built-in dataset nor an existing local path"):
        load_image_dataset(name)
    with pytest.raises(ValueError, match=reason):
        load_image_dataset(name)


def test_an_unreachable_hub_is_answered_at_once():
    """Online mode, but the Hub's host does not resolve (``.invalid`` never does): no retries."""
    env = {k: v for k, v in os.environ.items() if not k.endswith("_OFFLINE")}
    env["HF_ENDPOINT"] = "https://hub.invalid"
    code = "from hf_eff.data import load_image_dataset\ntry:\n    load_image_dataset('nosuch-dataset-xyz')\n"
    code += "except ValueError as error:\n    print(error)"
    start = time.perf_counter()
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    seconds = time.perf_counter() - start
    assert "the Hub (hub.invalid) cannot be reached" in result.stdout, result.stdout + result.stderr
    assert "HF_HUB_OFFLINE=1" in result.stdout
    assert seconds < 15, seconds  # the import takes a few seconds on a busy machine; the retries took 25+
