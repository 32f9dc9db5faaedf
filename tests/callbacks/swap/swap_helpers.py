"""A tiny classifier (optionally with BatchNorm) and data for the SWAP tests (uniquely named helper module)."""

import torch
from torch import nn
from transformers import PreTrainedConfig, PreTrainedModel, TrainingArguments
from transformers.modeling_outputs import SequenceClassifierOutput


class TinySWAPConfig(PreTrainedConfig):
    model_type = "hf_eff_test_tiny_swap"
    features: int = 8
    hidden: int = 16
    classes: int = 3
    batch_norm: bool = True


class TinySWAPClassifier(PreTrainedModel):
    config_class = TinySWAPConfig
    config: TinySWAPConfig
    main_input_name = "features"
    accepts_loss_kwargs = False

    def __init__(self, config: TinySWAPConfig):
        super().__init__(config)
        norm = nn.BatchNorm1d(config.hidden) if config.batch_norm else nn.Identity()
        self.body = nn.Sequential(nn.Linear(config.features, config.hidden), norm, nn.ReLU())
        self.head = nn.Linear(config.hidden, config.classes)
        self.post_init()

    def _init_weights(self, module):
        if isinstance(module, nn.Linear):
            module.reset_parameters()

    def forward(self, features, labels=None):
        logits = self.head(self.body(features))
        loss = None if labels is None else nn.functional.cross_entropy(logits, labels)
        return SequenceClassifierOutput(loss=loss, logits=logits)


class Examples(torch.utils.data.Dataset):
    def __init__(self, features: torch.Tensor, labels: torch.Tensor):
        self.features, self.labels = features, labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return {"features": self.features[index], "labels": self.labels[index]}


def make_data(n: int = 64, features: int = 8, classes: int = 3, seed: int = 0) -> Examples:
    """Gaussian blobs, one per class: learnable to high accuracy in a few steps."""
    generator = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % classes
    centres = torch.randn(classes, features, generator=generator) * 2.0
    x = centres[labels] + torch.randn(n, features, generator=generator)
    return Examples(x, labels)


def make_model(batch_norm: bool = True, seed: int = 0) -> TinySWAPClassifier:
    torch.manual_seed(seed)
    return TinySWAPClassifier(TinySWAPConfig(batch_norm=batch_norm))


def make_args(output_dir, **overrides) -> TrainingArguments:
    defaults = {
        "output_dir": str(output_dir),
        "per_device_train_batch_size": 64,
        "learning_rate": 0.1,
        "lr_scheduler_type": "constant",
        "optim": "sgd",
        "max_steps": 4,
        "logging_steps": 1,
        "save_strategy": "no",
        "report_to": "none",
        "disable_tqdm": True,
        "use_cpu": True,
        "seed": 0,
        "data_seed": 0,
        "dataloader_num_workers": 0,
    }
    defaults.update(overrides)
    return TrainingArguments(**defaults)
