import subprocess
import sys
import textwrap

import hf_eff
from hf_eff import _registration


def run_python(code: str, **env) -> str:
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=300,
        env={**__import__("os").environ, **env},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_import_is_cheap_and_lazy():
    out = run_python(
        """
        import sys, time
        start = time.perf_counter()
        import hf_eff
        elapsed = time.perf_counter() - start
        heavy = [m for m in ("transformers.modeling_utils", "cv2", "av", "sklearn") if m in sys.modules]
        print(heavy, elapsed < 2.0)
        """
    )
    assert out == "[] True"


def test_public_names_resolve():
    for name in hf_eff.__all__:
        assert getattr(hf_eff, name) is not None
    assert "load_image_dataset" in dir(hf_eff)


def test_unknown_attribute_raises_attribute_error():
    try:
        hf_eff.NoSuchThing  # noqa: B018
    except AttributeError as error:
        assert "NoSuchThing" in str(error)
    else:
        raise AssertionError("expected AttributeError")


FAKE_MODEL = """
import torch
from transformers import AutoConfig, AutoModel, PreTrainedConfig, PreTrainedModel

class FakeConfig(PreTrainedConfig):
    model_type = "hf_eff_test_fake"
    width: int = 3

class FakeModel(PreTrainedModel):
    config_class = FakeConfig
    def __init__(self, config):
        super().__init__(config)
        self.linear = torch.nn.Linear(config.width, 1)
        self.post_init()

AutoConfig.register("hf_eff_test_fake", FakeConfig)
AutoModel.register(FakeConfig, FakeModel)
"""


def _fake_registration_module(tmp_path) -> str:
    (tmp_path / "fake_registration.py").write_text(FAKE_MODEL)
    return str(tmp_path)


def test_registration_runs_when_transformers_auto_classes_are_first_used(tmp_path):
    path = _fake_registration_module(tmp_path)
    for user_code in (
        "from transformers import AutoConfig; print(type(AutoConfig.for_model('hf_eff_test_fake')).__name__)",
        "from transformers import AutoModel, AutoConfig\n"
        "print(type(AutoModel.from_config(AutoConfig.for_model('hf_eff_test_fake'))).__name__)",
        "from transformers import pipeline, AutoConfig; print(type(AutoConfig.for_model('hf_eff_test_fake')).__name__)",
    ):
        out = run_python(
            "import hf_eff, hf_eff._registration as r\n"
            "r.REGISTRATION_MODULES.append('fake_registration')\n" + user_code,
            PYTHONPATH=path,
        )
        assert out.splitlines()[-1] in {"FakeConfig", "FakeModel"}


def test_registration_is_immediate_when_transformers_is_already_loaded(tmp_path):
    path = _fake_registration_module(tmp_path)
    out = run_python(
        """
        from transformers import AutoConfig, AutoModel
        import hf_eff._registration as r
        print(r._done)
        r._done = False  # replay the import-time decision with the fake module listed
        r.REGISTRATION_MODULES.append('fake_registration')
        r.install_registration_hook()
        print(type(AutoConfig.for_model('hf_eff_test_fake')).__name__)
        """,
        PYTHONPATH=path,
    )
    assert out.splitlines() == ["True", "FakeConfig"]


def test_every_registration_module_registers_its_config_with_auto_config():
    import importlib

    from transformers import AutoConfig
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING

    for module in _registration.REGISTRATION_MODULES:
        importlib.import_module(module)
    ours = [key for key in CONFIG_MAPPING._extra_content if key.startswith("hf_eff_")]
    assert {"hf_eff_revbifpn", "hf_eff_craftmaps", "hf_eff_video_bgsub"} <= set(ours)
    for model_type in ours:
        assert AutoConfig.for_model(model_type).model_type == model_type


def test_importing_a_model_class_first_still_registers_everything():
    # the first transformers import happens inside a half-imported hf_eff module: registration must wait for it
    out = run_python(
        """
        import hf_eff
        from hf_eff import RevBiFPNModel
        from transformers import AutoConfig
        from transformers.pipelines import PIPELINE_REGISTRY
        print(AutoConfig.for_model("hf_eff_craftmaps").model_type, "craftmaps-classification" in PIPELINE_REGISTRY.get_supported_tasks())
        """
    )
    assert out.splitlines()[-1] == "hf_eff_craftmaps True"
