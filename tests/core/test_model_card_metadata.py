"""Every model family's saved folder: card metadata the Hub understands (license, a Hub pipeline_tag or none, a
model-index named after the model, no placeholder links), ``auto_map`` in every config, and a
``trust_remote_code`` load that works where hf_eff is installed and fails with one line where it is not."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from huggingface_hub import EvalResult, ModelCard

from hf_eff.modelcard import templates_folder


def _tiny_models() -> dict:
    import hf_eff

    revbifpn = hf_eff.RevBiFPNConfig(
        stem_factor=2, channels=[12, 16, 24, 32], neck_channels=[12, 16, 24, 40], fc_features=48, num_labels=3
    )
    hdcnn = hf_eff.HDCNNConfig(
        num_channels=1, num_labels=5, cnn_channels=[4, 8], cnn_convs_per_stage=1, coarse_members=[[0, 1, 2], [3, 4]]
    )
    unet = hf_eff.RevUNet3DConfig(
        channels=(8, 16, 32), encoder_depths=(1, 1, 1), decoder_depths=(1, 1), norm_groups=2, crop_size=(16, 16, 16)
    )
    return {
        "revbifpn": hf_eff.RevBiFPNForImageClassification(revbifpn),
        "craftmaps": hf_eff.CraftMapsForClassification(hf_eff.CraftMapsConfig(num_features=8, n_components=16)),
        "hdcnn": hf_eff.HDCNNForImageClassification(hdcnn),
        "rev_unet3d": hf_eff.RevUNet3DForSemanticSegmentation(unet),
        "video_bgsub": hf_eff.VideoBackgroundSubtractionModel(hf_eff.VideoBackgroundSubtractionConfig()),
    }


@pytest.fixture(scope="module")
def folders(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("families")
    torch.manual_seed(0)
    saved = {}
    for family, model in _tiny_models().items():
        model.save_pretrained(root / family)
        saved[family] = root / family
    return saved


def _hub_tasks() -> set[str]:
    providers = pytest.importorskip("huggingface_hub.inference._providers")
    return {task for tasks in providers.PROVIDERS.values() for task in tasks} - {"conversational"}


def test_cards_carry_a_license_a_hub_task_or_none_and_no_placeholder_link(folders):
    hub_tasks = _hub_tasks()
    assert "image-classification" in hub_tasks and "craftmaps-classification" not in hub_tasks
    for family, folder in folders.items():
        card = ModelCard.load(folder / "README.md")
        assert card.data.license == "apache-2.0", family
        assert card.data.library_name == "hf_eff", family
        assert card.data.pipeline_tag is None or card.data.pipeline_tag in hub_tasks, (family, card.data.pipeline_tag)
    for template in templates_folder().glob("*.md"):
        assert "github.com/hf-eff" not in template.read_text(), template.name


def test_every_family_writes_auto_map_and_its_code(folders):
    for family, folder in folders.items():
        auto_map = json.loads((folder / "config.json").read_text()).get("auto_map")
        assert auto_map and "AutoConfig" in auto_map and len(auto_map) >= 2, (family, auto_map)
        for reference in auto_map.values():
            assert (folder / f"{reference.split('.')[0]}.py").is_file(), (family, reference)


def test_measured_results_become_a_model_index_named_after_the_folder(tmp_path):
    from hf_eff import CraftMapsConfig, CraftMapsForClassification

    model = CraftMapsForClassification(CraftMapsConfig(num_features=8, n_components=16))
    result = EvalResult(
        task_type="image-classification",
        dataset_type="digits",
        dataset_name="digits",
        metric_type="accuracy",
        metric_value=0.97,
    )
    model.card_metadata = {"datasets": ["digits"], "eval_results": [result]}
    model.save_pretrained(tmp_path / "craftmaps-digits")
    card = ModelCard.load(tmp_path / "craftmaps-digits" / "README.md")
    assert card.data.model_name == "craftmaps-digits" and card.data.datasets == ["digits"]
    assert card.data.eval_results[0].metric_value == pytest.approx(0.97)
    assert "model-index" in card.content


# in one fresh interpreter (it never imports hf_eff itself): every folder first with hf_eff made absent (its import
# fails as where the package is not installed), then with hf_eff installed but not imported
_LOAD_EVERY_FOLDER = """
import json, sys
import transformers

class Absent:
    def find_spec(self, name, path=None, target=None):
        if name == "hf_eff" or name.startswith("hf_eff."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)

def load(folder):
    auto_map = json.load(open(folder + "/config.json"))["auto_map"]
    auto_class = getattr(transformers, next(name for name in auto_map if name != "AutoConfig"))
    try:
        return {"loaded": type(auto_class.from_pretrained(folder, trust_remote_code=True)).__name__}
    except Exception as error:
        return {"error": type(error).__name__, "message": str(error)}

absent = Absent()
sys.meta_path.insert(0, absent)
without = [load(folder) for folder in sys.argv[1:]]
sys.meta_path.remove(absent)
print(json.dumps({"without": without, "with": [load(folder) for folder in sys.argv[1:]]}))
"""


def test_remote_code_loads_with_hf_eff_installed_and_fails_in_one_line_without_it(folders):
    result = subprocess.run(
        [sys.executable, "-c", _LOAD_EVERY_FOLDER, *map(str, folders.values())],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    outcomes = json.loads(result.stdout.splitlines()[-1])
    for outcome in outcomes["without"]:
        assert outcome.get("error") == "ImportError", outcome
        assert "\n" not in outcome["message"] and "pip install hf_eff" in outcome["message"], outcome
    loaded = [outcome.get("loaded") for outcome in outcomes["with"]]
    saved = [json.loads((folder / "config.json").read_text())["architectures"][0] for folder in folders.values()]
    assert loaded == saved, outcomes["with"]
