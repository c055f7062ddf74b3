"""TrainConfig: recipe defaults and the checks in validate()."""

import argparse

import pytest

from koroberta.errors import ConfigError
from koroberta.train.config import RECIPES, TrainConfig


def test_defaults_are_the_roberta_base_recipe():
    c = TrainConfig()
    assert (c.arch, c.tokens_per_sample, c.max_positions) == ("roberta_base", 512, 512)
    assert c.adam_betas == [0.9, 0.98] and c.adam_eps == 1e-6 and c.weight_decay == 0.01
    assert (c.dropout, c.attention_dropout, c.sample_break_mode) == (0.1, 0.1, "complete")
    assert c.batch_size * c.update_freq * 8 == RECIPES["base"]  # 16 x 16 x 8 GPUs


@pytest.mark.parametrize("kw, msg", [
    ({"tokens_per_sample": 1024}, "max_positions"),
    ({"lr": 0.0}, "lr"),
    ({"warmup_updates": 100, "max_update": 100}, "warmup_updates"),
    ({"nnodes": 2}, "launcher: slurm"),
    ({"precision": "fp16", "device": "cpu"}, "needs CUDA"),
    ({"extra_args": ["--bf16"]}, "--tpu"),
    ({"extra_args": ["--lr=1"]}, "train.lr"),
    ({"encoder_embed_dim": 100, "encoder_attention_heads": 3}, "divisible"),
    ({"adam_betas": [0.9]}, "adam_betas"),
    ({"keep_interval_updates": 0}, "keep_interval_updates"),
    ({"sample_break_mode": "eos"}, "not one of"),
    ({"precision": "bf16"}, "not one of"),
])
def test_invalid_configs_name_the_key(kw, msg):
    with pytest.raises(ConfigError, match=msg):
        TrainConfig(**kw)


def test_yaml_section_and_cli_override():
    p = argparse.ArgumentParser()
    TrainConfig.add_arguments(p)
    args = p.parse_args(["--max-update", "300", "--no-tensorboard", "--adam-betas", "0.9", "0.99"])
    c = TrainConfig.from_args(args, base={"max_update": 100, "warmup_updates": 10, "encoder_layers": 2})
    assert (c.max_update, c.warmup_updates, c.encoder_layers, c.tensorboard) == (300, 10, 2, False)
    assert c.adam_betas == [0.9, 0.99]
    with pytest.raises(ConfigError, match="unknown key"):
        TrainConfig.from_dict({"max_updates": 3})
