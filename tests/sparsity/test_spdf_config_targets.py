import math

import pytest
import torch
from transformers import (
    BertConfig,
    BertModel,
    GPT2Config,
    GPT2LMHeadModel,
    GPTJConfig,
    GPTJForCausalLM,
    GPTNeoXConfig,
    GPTNeoXForCausalLM,
    LlamaConfig,
    LlamaForCausalLM,
    OPTConfig,
    OPTForCausalLM,
    T5Config,
    T5ForConditionalGeneration,
)

from hf_eff.sparsity import SparsityConfig, StaticMaskManager
from hf_eff.sparsity.targets import select_targets


@pytest.mark.parametrize("bad", [-0.1, 1.0, 1.5, float("nan")])
def test_invalid_sparsity_values_raise(bad):
    with pytest.raises(ValueError, match="sparsity"):
        SparsityConfig(sparsity=bad)


@pytest.mark.parametrize("bad", ["0.5", True, None])
def test_sparsity_of_wrong_type_raises(bad):
    with pytest.raises(TypeError, match="sparsity"):
        SparsityConfig(sparsity=bad)


def test_other_config_errors():
    with pytest.raises(ValueError, match="distribution"):
        SparsityConfig(distribution="magnitude")
    with pytest.raises(ValueError, match="targets"):
        SparsityConfig(targets=[])
    with pytest.raises(TypeError, match="seed"):
        SparsityConfig(seed=1.5)


def test_config_round_trips_through_dict():
    config = SparsityConfig(0.5, distribution="erk", targets=["*.c_fc"], exclude=["*.h.0.*"], seed=3)
    assert SparsityConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ValueError, match="unknown"):
        SparsityConfig.from_dict({**config.to_dict(), "typo": 1})


def _tiny(family):
    common = {"vocab_size": 40, "hidden_size": 16, "num_hidden_layers": 2, "num_attention_heads": 2}
    if family == "gpt2":
        return GPT2LMHeadModel(GPT2Config(n_layer=2, n_embd=16, n_head=2, vocab_size=40, n_positions=16)), 4
    if family == "gpt_neox":
        return GPTNeoXForCausalLM(GPTNeoXConfig(**common, intermediate_size=32)), 4
    if family == "gptj":
        return GPTJForCausalLM(
            GPTJConfig(n_layer=2, n_embd=16, n_head=2, vocab_size=40, rotary_dim=4, n_positions=16)
        ), 6
    if family == "opt":
        return OPTForCausalLM(OPTConfig(**common, ffn_dim=32, word_embed_proj_dim=16, max_position_embeddings=16)), 6
    return LlamaForCausalLM(LlamaConfig(**common, intermediate_size=32, num_key_value_heads=1)), 7


@pytest.mark.parametrize("family", ["gpt2", "gpt_neox", "gptj", "opt", "llama"])
def test_default_targets_are_the_block_matrices_only(family):
    model, per_layer = _tiny(family)
    selected = select_targets(model, None)
    assert len(selected) == 2 * per_layer
    dense = {id(model.get_input_embeddings().weight), id(model.get_output_embeddings().weight)}
    assert all(p.dim() == 2 and id(p) not in dense for p in selected.values())
    assert not any(k in name for name in selected for k in ("ln", "norm", "bias", "embed", "wte", "wpe", "lm_head"))


def test_gpt2_targets_cover_fused_transposed_conv1d():
    model, _ = _tiny("gpt2")
    names = set(select_targets(model, None))
    assert "transformer.h.0.attn.c_attn.weight" in names  # fused QKV, stored [in, 3*out]
    assert "transformer.h.1.mlp.c_proj.weight" in names


def test_module_patterns_exclude_and_errors():
    model, _ = _tiny("gpt2")
    selected = select_targets(model, ["*.mlp.c_fc"], exclude=["transformer.h.0.*"])
    assert list(selected) == ["transformer.h.1.mlp.c_fc.weight"]
    with pytest.raises(ValueError, match="matches no parameter"):
        select_targets(model, ["*.q_proj"])
    with pytest.raises(ValueError, match="norms and biases"):
        select_targets(model, ["*.ln_1.weight"])
    with pytest.raises(ValueError, match="embedding"):
        select_targets(model, ["transformer.wte"])
    with pytest.raises(ValueError, match="nothing is left"):
        select_targets(model, ["*.c_fc"], exclude=["*"])


def test_unknown_architecture_without_patterns_raises():
    model, _ = _tiny("gpt2")
    model.config.model_type = "my_gpt"
    with pytest.raises(ValueError, match="no default SPDF targets"):
        select_targets(model, None)


@pytest.mark.parametrize(
    "model",
    [
        lambda: BertModel(
            BertConfig(vocab_size=40, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32)
        ),
        lambda: T5ForConditionalGeneration(
            T5Config(vocab_size=40, d_model=16, d_ff=32, num_layers=1, num_heads=2, d_kv=8)
        ),
    ],
    ids=["bert-encoder", "t5-encoder-decoder"],
)
def test_non_decoder_models_are_rejected(model):
    with pytest.raises(ValueError, match="decoder-only"):
        select_targets(model(), ["*"])


def test_non_model_is_rejected():
    with pytest.raises(TypeError, match="PreTrainedModel"):
        StaticMaskManager.from_model(torch.nn.Linear(4, 4), SparsityConfig())


@pytest.mark.parametrize("family", ["gpt2", "llama"])
@pytest.mark.parametrize("sparsity", [0.5, 0.75, 0.3])
def test_manager_holds_exact_count_per_tensor(family, sparsity):
    model, _ = _tiny(family)
    manager = StaticMaskManager.from_model(model, SparsityConfig(sparsity))
    for name, param in manager.params.items():
        expected_kept = math.ceil(round((1 - sparsity) * param.numel(), 6))
        assert int(manager.masks[name].sum()) == expected_kept
        assert int(torch.count_nonzero(param)) == expected_kept  # normal init has no exact zeros
