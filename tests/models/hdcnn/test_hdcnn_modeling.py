"""HD-CNN model: probabilistic averaging, the flat special case, conditional execution, the loss, save/load."""

import pytest
import torch
from torch.nn import functional as F


def _config(**overrides):
    from hf_eff import HDCNNConfig

    fields = {
        "num_channels": 1,
        "num_labels": 5,
        "cnn_channels": [4, 8],
        "cnn_convs_per_stage": 1,
        "coarse_members": [[0, 1, 2], [2, 3], [3, 4, 0]],  # overlapping
    }
    return HDCNNConfig(**{**fields, **overrides})


def _model(**overrides):
    from hf_eff import HDCNNForImageClassification

    return HDCNNForImageClassification(_config(**overrides)).eval()


def _images(n=6, seed=0):
    return torch.randn(n, 1, 8, 8, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize(
    "aggregation, members", [("multi", [[0, 1, 2], [2, 3], [3, 4, 0]]), ("disjoint", [[0, 1], [2, 3, 4]])]
)
def test_averaged_fine_probabilities_form_a_distribution(aggregation, members):
    model = _model(aggregation=aggregation, coarse_members=members)
    out = model(_images())
    probs = out.logits.exp()
    assert torch.allclose(probs.sum(-1), torch.ones(6), atol=1e-5)
    assert torch.allclose(out.coarse_probs.sum(-1), torch.ones(6), atol=1e-5)
    # the average is exactly sum_k B_k p_k with p_k zero outside S_k
    hidden = model.shared(_images())
    expected = torch.zeros(6, 5)
    for k, (branch, group) in enumerate(zip(model.fine, model.config.coarse_members)):
        expected[:, group] += out.coarse_probs[:, k : k + 1] * branch(hidden).softmax(-1)
    assert torch.allclose(probs, expected, atol=1e-6)


def test_coarse_probabilities_aggregate_the_coarse_component():
    model = _model()
    hidden = model.shared(_images())
    fine = model.coarse(hidden).softmax(-1)
    summed = torch.stack([fine[:, g].sum(-1) for g in model.config.coarse_members], dim=1)
    assert torch.allclose(model(_images()).coarse_probs, summed / summed.sum(-1, keepdim=True), atol=1e-6)


def test_one_coarse_category_is_the_flat_classifier():
    model = _model(coarse_members=None)
    assert model.coarse is None and len(model.fine) == 1
    x = _images()
    flat_logits = model.fine[0](model.shared(x))  # the building block: shared layers -> rear layers -> classifier
    out = model(x, labels=torch.arange(6) % 5)
    assert torch.allclose(out.logits, F.log_softmax(flat_logits, -1), atol=1e-6)
    assert torch.allclose(out.loss, F.cross_entropy(flat_logits, torch.arange(6) % 5), atol=1e-6)


def test_loss_is_nll_plus_consistency_term():
    model = _model(consistency_lambda=3.0, coarse_targets=[0.5, 0.25, 0.25])
    x, y = _images(), torch.tensor([0, 1, 2, 3, 4, 0])
    out = model(x, labels=y)
    consistency = 1.5 * ((torch.tensor([0.5, 0.25, 0.25]) - out.coarse_probs.mean(0)) ** 2).sum()
    assert torch.allclose(out.loss, F.nll_loss(out.logits, y) + consistency, atol=1e-6)
    assert consistency > 0
    model.train()
    model(x, labels=y).loss.backward()
    assert model.coarse.classifier.weight.grad.abs().sum() > 0  # the coarse component learns through both terms


def test_default_targets_reproduce_the_official_cifar100_values():
    from hf_eff import HDCNNConfig

    sizes = [25, 51, 80, 80, 36, 25, 27, 27, 43]  # CIFAR-100's expanded coarse categories (official config)
    official = [0.063, 0.129, 0.203, 0.203, 0.091, 0.063, 0.069, 0.069, 0.109]  # its target_sparsity
    members = [[(11 * k + i) % 100 for i in range(size)] for k, size in enumerate(sizes)]  # overlapping windows
    config = HDCNNConfig(num_labels=100, coarse_members=members)
    assert [round(t, 3) for t in config.coarse_targets] == official


def test_conditional_execution_with_every_branch_equals_full_execution():
    model = _model()
    x = _images()
    full = model(x)
    assert full.executed_branches is None
    everything = model(x, conditional_threshold=0.0)
    assert everything.executed_branches.all()
    assert torch.allclose(everything.logits, full.logits, atol=1e-5)
    assert torch.allclose(model(x, conditional_top_k=3).logits, full.logits, atol=1e-5)


def _count_branch_samples(model, x, **kwargs):
    counts = [0] * len(model.fine)
    hooks = [
        branch.register_forward_hook(lambda m, inp, out, k=k: counts.__setitem__(k, counts[k] + inp[0].shape[0]))
        for k, branch in enumerate(model.fine)
    ]
    try:
        out = model(x, **kwargs)
    finally:
        for hook in hooks:
            hook.remove()
    return out, counts


def test_top1_runs_one_branch_per_sample_and_costs_less():
    from torch.utils.flop_counter import FlopCounterMode

    model = _model()
    x = _images(8)
    out, counts = _count_branch_samples(model, x, conditional_top_k=1)
    assert sum(counts) == 8  # one fine component per sample
    assert out.executed_branches.sum(1).tolist() == [1] * 8
    assert out.executed_branches.float().argmax(1).tolist() == out.coarse_probs.argmax(1).tolist()
    # the prediction is the most probable component's own prediction
    hidden = model.shared(x)
    for i, k in enumerate(out.coarse_probs.argmax(1).tolist()):
        expected = torch.full((5,), float("-inf"))
        expected[model.config.coarse_members[k]] = F.log_softmax(model.fine[k](hidden[i : i + 1]), -1)[0]
        assert torch.allclose(out.logits[i], expected, atol=1e-5)
    _, full_counts = _count_branch_samples(model, x)
    assert sum(full_counts) == 8 * 3
    flops = {}
    for name, kwargs in (("full", {}), ("top1", {"conditional_top_k": 1})):
        with FlopCounterMode(display=False) as counter:
            model(x, **kwargs)
        flops[name] = counter.get_total_flops()
    assert flops["top1"] < flops["full"]


def test_threshold_selects_confident_branches_and_always_the_best():
    model = _model()
    probs = torch.tensor([[0.7, 0.2, 0.1], [0.4, 0.35, 0.25], [0.05, 0.05, 0.9]])
    selected = model.select_branches(probs, threshold=0.3)
    assert selected.tolist() == [[True, False, False], [True, True, False], [False, False, True]]
    assert model.select_branches(probs, threshold=0.95).sum(1).tolist() == [1, 1, 1]
    assert model.select_branches(probs, top_k=2, threshold=0.3).tolist() == selected.tolist()
    tied = torch.tensor([[0.4, 0.4, 0.2], [1 / 3, 1 / 3, 1 / 3]])  # overlapping categories can tie exactly
    assert model.select_branches(tied, top_k=1).sum(1).tolist() == [1, 1]
    assert model.select_branches(tied, top_k=2, threshold=0.9).sum(1).tolist() == [1, 1]


def test_conditional_execution_is_off_in_training():
    model = _model(conditional_top_k=1).train()
    out, counts = _count_branch_samples(model, _images(4), labels=torch.tensor([0, 1, 2, 3]))
    assert out.executed_branches is None and sum(counts) == 4 * 3


def test_config_conditional_setting_applies_at_inference():
    model = _model(conditional_top_k=1)
    out, counts = _count_branch_samples(model, _images(4))
    assert sum(counts) == 4 and out.executed_branches is not None


def test_save_load_round_trip_through_auto_classes(tmp_path):
    from transformers import AutoConfig, AutoModelForImageClassification

    model = _model(coarse_names=["a", "b", "c"], conditional_threshold=0.2)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.01 * torch.randn_like(p))
    model.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").is_file() and (tmp_path / "README.md").is_file()
    assert "coarse categories" in (tmp_path / "README.md").read_text()
    config = AutoConfig.from_pretrained(tmp_path)
    assert config.coarse_members == [[0, 1, 2], [2, 3], [0, 3, 4]] and config.coarse_names == ["a", "b", "c"]
    loaded = AutoModelForImageClassification.from_pretrained(tmp_path).eval()
    assert type(loaded) is type(model)
    assert torch.equal(loaded.coarse_membership, model.coarse_membership)  # rebuilt, not saved
    x = _images()
    for kwargs in ({}, {"conditional_top_k": 1}):
        assert torch.allclose(loaded(x, **kwargs).logits, model(x, **kwargs).logits, atol=1e-6)


@pytest.mark.parametrize("kind", ["resnet", "convnext"])
def test_transformers_backbone_as_building_block(kind, tmp_path):
    from transformers import AutoModel, AutoModelForImageClassification, ConvNextConfig, ResNetConfig

    from hf_eff import HDCNNConfig, HDCNNForImageClassification
    from hf_eff.models.hdcnn.modeling_hdcnn import building_block_parts

    if kind == "resnet":
        backbone = ResNetConfig(num_channels=1, embedding_size=8, hidden_sizes=[8, 16, 16], depths=[1, 1, 1])
    else:
        backbone = ConvNextConfig(
            num_channels=1, num_stages=3, hidden_sizes=[8, 16, 16], depths=[1, 1, 1], patch_size=2
        )
    config = HDCNNConfig(backbone_config=backbone, num_labels=4, num_shared_stages=2, coarse_members=[[0, 1], [2, 3]])
    # the staged building block computes what the transformers model computes
    x = torch.randn(2, 1, 32, 32)
    torch.manual_seed(1)
    base = AutoModel.from_config(backbone).eval()
    torch.manual_seed(1)
    stem, stages, norm, _ = building_block_parts(config)
    hidden = stem.eval()(x)
    for stage in stages:
        hidden = stage.eval()(hidden)
    assert torch.allclose(norm(hidden.mean((-2, -1))), base(x).pooler_output.flatten(1), atol=1e-5)

    model = HDCNNForImageClassification(config).eval()
    assert torch.allclose(model(x).logits.exp().sum(-1), torch.ones(2), atol=1e-5)
    model.save_pretrained(tmp_path)
    loaded = AutoModelForImageClassification.from_pretrained(tmp_path).eval()
    assert type(loaded.config.backbone_config) is type(backbone)
    assert torch.allclose(loaded(x).logits, model(x).logits, atol=1e-6)


def test_unstaged_backbone_is_refused():
    from transformers import ViTConfig

    vit = ViTConfig(hidden_size=8, num_hidden_layers=1, num_attention_heads=2, intermediate_size=8)
    with pytest.raises(ValueError, match="'vit' is not a staged CNN"):
        _config(backbone_config=vit, num_shared_stages=0)


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"coarse_members": [[0, 1], [2, 3]]}, r"fine classes \[4\] are in no coarse category"),
        ({"coarse_members": [[0, 1, 2], [], [3, 4]]}, r"coarse_members\[1\] is empty"),
        ({"coarse_members": [[0, 1, 7], [2, 3, 4]]}, "outside the 5 classes"),
        ({"coarse_members": [[0, 1, 1], [2, 3, 4]]}, "lists a class twice"),
        ({"coarse_targets": [0.5, 0.5]}, "coarse_targets has 2 entries for 3 coarse categories"),
        ({"coarse_targets": [0.5, 0.5, 0.5]}, "sum to 1"),
        ({"coarse_names": ["a"]}, "coarse_names has 1 names for 3"),
        ({"aggregation": "disjoint"}, "partition"),
        ({"aggregation": "max"}, "aggregation must be one of"),
        ({"conditional_top_k": 4}, "conditional_top_k must be in"),
        ({"num_shared_stages": 2}, "num_shared_stages must be in"),
    ],
)
def test_invalid_hierarchies_and_settings_raise_clear_errors(overrides, message):
    with pytest.raises(ValueError, match=message):
        _config(**overrides)


def test_bad_input_shape_is_refused():
    with pytest.raises(ValueError, match="pixel_values must be"):
        _model()(torch.randn(8, 8))


def test_from_building_block_starts_as_the_block_for_a_disjoint_hierarchy():
    from hf_eff import HDCNNForImageClassification

    block = _model(coarse_members=None)
    with torch.no_grad():
        for p in block.parameters():
            p.add_(0.05 * torch.randn_like(p))
    model = HDCNNForImageClassification.from_building_block(block, coarse_members=[[0, 3], [1, 2, 4]]).eval()
    assert model.config.coarse_targets == [0.4, 0.6] and model.config.num_coarse == 2
    x = _images()
    assert torch.allclose(model(x).logits, block(x).logits, atol=1e-5)
