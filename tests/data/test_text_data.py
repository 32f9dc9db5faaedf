import pytest

from hf_eff.data import load_text_corpus, load_text_task
from hf_eff.data.docstrings import docstrings_in_file, first_sentence


def test_stdlib_corpus_has_real_english_and_disjoint_module_splits():
    data = load_text_corpus("python-stdlib-docs")
    assert set(data) == {"train", "validation"}
    train, validation = data["train"], data["validation"]
    assert len(train) > 2000 and len(validation) > 50
    assert sum(len(t) for t in train["text"]) > 500_000
    assert not set(train["module"]) & set(validation["module"])
    assert any(" the " in t for t in validation["text"][:50])


def test_corpus_split_is_deterministic_under_a_seed_and_changes_with_it():
    a = load_text_corpus(seed=1)["validation"]["module"]
    b = load_text_corpus(seed=1)["validation"]["module"]
    c = load_text_corpus(seed=2)["validation"]["module"]
    assert a == b
    assert set(a) != set(c)


def test_max_chars_cuts_train_only():
    data = load_text_corpus(max_chars=10_000)
    total = sum(len(t) for t in data["train"]["text"])
    assert 10_000 <= total < 10_000 + max(len(t) for t in data["train"]["text"])
    assert len(data["validation"]) == len(load_text_corpus()["validation"])


def test_docstring_summary_task_has_prompts_completions_and_three_splits():
    data = load_text_task("docstring-summaries")
    assert set(data) == {"train", "validation", "test"}
    row = data["train"][0]
    assert row["prompt"].endswith(")") and "(" in row["prompt"]
    assert row["text"] == f"{row['prompt']}\n{row['completion']}"
    assert not set(data["train"]["module"]) & set(data["test"]["module"])


def test_scientific_corpus_is_a_different_domain():
    stdlib = set(load_text_corpus("python-stdlib-docs")["train"]["module"])
    scientific = load_text_corpus("python-scientific-docs")["train"]["module"]
    assert {m.split(".")[0] for m in scientific} <= {"numpy", "scipy", "sklearn"}
    assert not stdlib & set(scientific)


def test_docstrings_are_parsed_without_importing(tmp_path):
    source = tmp_path / "mod.py"
    source.write_text(
        '"""Module doc."""\nraise SystemExit("importing this would exit")\n'
        "class Thing:\n    '''A thing.'''\n    def size(self, x: int, *, y=2):\n        '''Size of x. More.'''\n"
        "def _hidden():\n    '''private'''\n"
    )
    found = list(docstrings_in_file("mod", source))
    assert [(d.name, d.signature) for d in found] == [("", ""), ("Thing", ""), ("Thing.size", "Thing.size(x, *, y=2)")]
    assert first_sentence(found[2].text) == "Size of x."


def test_local_text_files_are_accepted(tmp_path):
    (tmp_path / "a.txt").write_text("\n".join(f"line number {i}" for i in range(100)))
    data = load_text_corpus(str(tmp_path), validation_fraction=0.1)
    assert len(data["train"]) == 90 and len(data["validation"]) == 10


def test_unknown_name_and_bad_arguments_give_clear_errors():
    with pytest.raises(ValueError, match="no-such-corpus"):
        load_text_corpus("no-such-corpus")
    with pytest.raises(ValueError, match="validation_fraction"):
        load_text_corpus(validation_fraction=1.5)
    with pytest.raises(ValueError, match="max_chars"):
        load_text_corpus(max_chars=0)
    with pytest.raises(ValueError, match="test_fraction"):
        load_text_task(test_fraction=0.0)
