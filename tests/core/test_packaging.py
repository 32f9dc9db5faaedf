"""The wheel ships every model card template (kept at the repository root in ``model_cards/``) and every metric
module, where the installed package looks for them."""

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import hf_eff.metrics
from hf_eff.modelcard import available_templates, templates_folder


ROOT = Path(__file__).resolve().parents[2]


def test_source_checkout_reads_the_templates_at_the_repository_root():
    if not (ROOT / "model_cards").is_dir():
        pytest.skip("running from an installed hf_eff, not a source checkout")
    assert templates_folder() == ROOT / "model_cards"
    assert set(available_templates()) == {p.stem for p in (ROOT / "model_cards").glob("*.md")}
    assert not (ROOT / "hf_eff" / "model_cards").exists()  # one source of the templates


def test_wheel_contains_every_template_and_metric(tmp_path):
    if not (ROOT / "pyproject.toml").is_file():
        pytest.skip("needs a source checkout")
    source = tmp_path / "src"  # build from a copy: the build writes build/ and *.egg-info next to the sources
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", "build")
    shutil.copytree(ROOT / "hf_eff", source / "hf_eff", ignore=ignore)
    shutil.copytree(ROOT / "model_cards", source / "model_cards", ignore=ignore)
    for name in ("pyproject.toml", "setup.py", "README.md"):
        shutil.copy(ROOT / name, source / name)
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path), "."],
        cwd=source,
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("hf_eff-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    templates = {p.stem for p in (ROOT / "model_cards").glob("*.md")}
    assert templates and {f"hf_eff/model_cards/{t}.md" for t in templates} <= names
    metrics = hf_eff.metrics.available()
    assert metrics and {f"hf_eff/metrics/{m}/{m}.py" for m in metrics} <= names
    assert not any(n.startswith("model_cards/") for n in names)  # nothing at the top level of site-packages

    # the unpacked wheel, alone on the path, finds its templates and metrics inside the package
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    probe = (
        "import hf_eff.metrics, hf_eff.modelcard as m; "
        "print(m.templates_folder()); print(*m.available_templates()); print(*hf_eff.metrics.available())"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=site,
        env={**os.environ, "PYTHONPATH": str(site)},
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr
    folder, found_templates, found_metrics = out.stdout.splitlines()
    assert Path(folder) == site / "hf_eff" / "model_cards"
    assert set(found_templates.split()) == templates and found_metrics.split() == metrics
