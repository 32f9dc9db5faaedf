import pytest
from transformers import GPT2Config, LlamaConfig

from hf_eff import training_flops


GPT3_XL = GPT2Config(n_embd=2048, n_layer=24, n_head=16, vocab_size=50257, n_positions=2048)
GPT2_SMALL = GPT2Config(n_embd=768, n_layer=12, n_head=12, vocab_size=50257, n_positions=2048)


@pytest.mark.parametrize(
    "config,tokens,share,r50,r75,dense,sparse75",
    [
        (GPT3_XL, 26_000_000_000, 0.799, 1.67, 2.49, 2.36e20, 9.46e19),
        (GPT2_SMALL, 2_500_000_000, 0.527, 1.36, 1.65, 2.42e18, 1.46e18),
    ],
    ids=["gpt3-xl", "gpt2-small"],
)
def test_reproduces_the_spec_reference_table(config, tokens, share, r50, r75, dense, sparse75):
    half = training_flops(config, 0.5, tokens, seq_len=2048)
    three_quarters = training_flops(config, 0.75, tokens, seq_len=2048)
    assert half.sparsifiable_fraction == pytest.approx(share, abs=5e-4)
    assert half.reduction == pytest.approx(r50, abs=5e-3)
    assert three_quarters.reduction == pytest.approx(r75, abs=5e-3)
    assert three_quarters.dense == pytest.approx(dense, rel=5e-3)
    assert three_quarters.sparse == pytest.approx(sparse75, rel=5e-3)
    assert three_quarters.saved == pytest.approx(three_quarters.dense - three_quarters.sparse)


def test_paper_headline_needs_the_2048_context():
    assert training_flops(GPT3_XL, 0.75, 1, seq_len=1024).reduction == pytest.approx(2.79, abs=5e-3)


def test_terms_scale_as_documented():
    d, layers, vocab, n_ctx = 768, 12, 50257, 2048
    f = training_flops(GPT2_SMALL, 0.0, tokens=10, seq_len=n_ctx)
    assert f.sparsifiable_forward_per_token == 24 * d * d * layers
    assert f.attention_forward_per_token == 4 * n_ctx * d * layers
    assert f.lm_head_forward_per_token == 2 * d * vocab
    assert f.dense == f.sparse == 3 * f.dense_forward_per_token * 10
    assert f.reduction == 1.0


def test_gated_mlp_and_grouped_query_attention_are_counted():
    config = LlamaConfig(
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=1,
        vocab_size=100,
    )
    f = training_flops(config, 0.0, tokens=1, seq_len=16)
    per_layer = 2 * 64 * 64 + 2 * 64 * 16 + 3 * 64 * 128
    assert f.sparsifiable_forward_per_token == 2 * 2 * per_layer


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"sparsity": 1.0}, "sparsity"),
        ({"sparsity": -0.5}, "sparsity"),
        ({"sparsity": float("nan")}, "sparsity"),
        ({"tokens": -1}, "tokens"),
        ({"seq_len": 0}, "seq_len"),
        ({"tokens": 2.5}, "tokens must be a non-negative whole number"),
        ({"tokens": float("inf")}, "tokens"),
        ({"seq_len": 16.5}, "seq_len must be a positive whole number"),
        ({"tokens": True}, "tokens"),
    ],
)
def test_bad_arguments_raise(kwargs, match):
    values = {"sparsity": 0.5, "tokens": 100, "seq_len": 16, **kwargs}
    with pytest.raises(ValueError, match=match):
        training_flops(GPT2_SMALL, **values)


def test_token_budgets_written_as_integral_floats_are_accepted():
    from_float = training_flops(GPT2_SMALL, 0.75, tokens=26e9, seq_len=2048.0)
    from_int = training_flops(GPT2_SMALL, 0.75, tokens=26_000_000_000, seq_len=2048)
    assert from_float == from_int
    assert isinstance(from_float.tokens, int) and isinstance(from_float.seq_len, int)


def test_config_without_sizes_raises():
    with pytest.raises(ValueError, match="hidden size"):
        training_flops(object(), 0.5, 1, 1)
