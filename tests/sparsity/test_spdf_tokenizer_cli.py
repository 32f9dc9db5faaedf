import json

import pytest
from transformers import AutoTokenizer

from hf_eff.cli import main
from hf_eff.data.tokenization import END_OF_TEXT, byte_level_tokenizer


def test_byte_level_tokenizer_round_trips_any_text(tmp_path):
    tokenizer = byte_level_tokenizer()
    text = "def f(x):\n    return x  # héllo, 日本, emoji \U0001f600\t"
    ids = tokenizer(text)["input_ids"]
    assert ids == list(text.encode("utf-8"))  # one id per UTF-8 byte, in byte order
    assert tokenizer.decode(ids) == text
    assert len(tokenizer) == 257 and tokenizer.eos_token == tokenizer.pad_token == END_OF_TEXT
    assert tokenizer.eos_token_id == 256
    tokenizer.save_pretrained(tmp_path)
    reloaded = AutoTokenizer.from_pretrained(tmp_path)
    assert reloaded(text)["input_ids"] == ids and reloaded.decode(ids) == text


def test_pack_blocks_cuts_eos_joined_stream():
    from hf_eff.sparsity.recipe import pack_blocks

    tokenizer = byte_level_tokenizer()
    blocks = pack_blocks(["abcd", "efg", "h"], tokenizer, seq_len=3)  # 11 tokens: the last 2 are dropped
    assert list(blocks["input_ids"]) == [[97, 98, 99], [100, 256, 101], [102, 103, 256]]
    assert list(blocks["labels"]) == list(blocks["input_ids"])
    assert list(pack_blocks(["abcd", "efg"], tokenizer, seq_len=3, max_blocks=1)["input_ids"]) == [[97, 98, 99]]
    with pytest.raises(ValueError, match="seq_len"):
        pack_blocks(["ab"], tokenizer, seq_len=16)


@pytest.mark.parametrize(
    "argv,message",
    [
        (["--sparsity", "1.0"], "sparsity must be in [0, 1)"),
        (["--sparsity", "nan"], "sparsity must be in [0, 1)"),
        (["--model_config", "no-such-model"], "model_config must be one of"),
        (["--seq_len", "1"], "--seq_len must be >= 2"),
    ],
)
def test_cli_rejects_bad_arguments_in_one_line(argv, message, capsys, tmp_path):
    code = main(["spdf", *argv, "--output_dir", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1


@pytest.mark.slow
def test_cli_runs_end_to_end_on_offline_data(tmp_path):
    code = main(
        [
            "spdf",
            "--model_config",
            "gpt2-tiny",
            "--pretrain_steps",
            "4",
            "--finetune_steps",
            "2",
            "--seq_len",
            "32",
            "--batch_size",
            "4",
            "--max_chars",
            "20000",
            "--cpu",
            "--output_dir",
            str(tmp_path),
        ]
    )
    assert code == 0
    result = json.loads((tmp_path / "results.json").read_text())
    assert result["pretrain"]["sparsity_held"] == pytest.approx(0.75)
    assert result["finetune"]["revived_fraction"] > 0
    assert (tmp_path / "pretrained" / "sparsity_masks.safetensors").exists()
    assert not (tmp_path / "finetuned" / "sparsity_masks.safetensors").exists()
