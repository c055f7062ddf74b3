"""The shipped presets load, validate, and say what their comments claim."""

from __future__ import annotations

from pathlib import Path

import pytest

from koroberta.pipeline import PipelineConfig
from koroberta.train.command import effective_batch, fairseq_args
from koroberta.train.config import RECIPES

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def test_every_config_is_a_tested_preset():
    assert sorted(p.stem for p in CONFIGS.glob("*.yaml")) == ["base", "continue", "demo", "koroberta-8k", "owndata",
                                                              "quality", "small"]


@pytest.mark.parametrize("name", ["demo", "small", "base", "koroberta-8k", "owndata", "continue", "quality"])
def test_preset_loads(name):
    cfg = PipelineConfig.load(CONFIGS / f"{name}.yaml")
    assert cfg.train.tokens_per_sample <= cfg.train.max_positions


@pytest.mark.parametrize("name,sequences,lr,warmup,updates", [
    ("base", 2048, 5e-4, 10000, 125000),
    ("koroberta-8k", 8192, 7e-4, 6000, 100000),
])
def test_recipe_presets_match_the_papers(name, sequences, lr, warmup, updates):
    t = PipelineConfig.load(CONFIGS / f"{name}.yaml").train
    b = effective_batch(t)
    assert b.sequences == sequences == RECIPES[t.recipe]
    assert b.tokens == sequences * 512
    assert (t.lr, t.warmup_updates, t.max_update, t.tokens_per_sample) == (lr, warmup, updates, 512)
    args = fairseq_args(t, "DATA", "SAVE", cuda=True)
    assert "--fp16" in args and "--bf16" not in args
    assert args[args.index("--arch") + 1] == "roberta_base"


def test_owndata_preset_lists_its_sources_in_priority_order():
    cfg = PipelineConfig.load(CONFIGS / "owndata.yaml")
    assert [s["name"] for s in cfg.corpus.sources] == ["kowiki", "reviews"]
    assert [s["weight"] for s in cfg.corpus.sources] == [1.0, 2.0] and cfg.decontaminate


def test_continue_preset_imports_and_takes_the_models_sizes(tmp_path):
    """configs/continue.yaml: the importhf stage replaces spm, train starts from its checkpoint; the sizes come from
    the model's config.json (here a RoBERTa-large-shaped one), and a size the YAML sets otherwise is refused."""
    import json

    from koroberta.errors import ConfigError
    from koroberta.pipeline import STEPS

    cfg = PipelineConfig.load(CONFIGS / "continue.yaml")
    assert cfg.init_from_hf == "models/klue-roberta-base" and cfg.train.max_update == 12500
    assert cfg.train.init_from == "runs/continue/import-hf/checkpoint.pt"
    assert [s.stage for s in STEPS if s.enabled(cfg)][:3] == ["corpus", "importhf", "preprocess"]
    hf = tmp_path / "m"
    hf.mkdir()
    (hf / "config.json").write_text(json.dumps({"model_type": "roberta", "num_hidden_layers": 24, "hidden_size": 1024,
                                                "intermediate_size": 4096, "num_attention_heads": 16,
                                                "max_position_embeddings": 514}))
    t = PipelineConfig.load(CONFIGS / "continue.yaml", [f"init_from_hf={hf}"]).train
    assert (t.arch, t.encoder_layers, t.encoder_embed_dim, t.encoder_ffn_embed_dim, t.encoder_attention_heads,
            t.max_positions) == ("roberta_base", 24, 1024, 4096, 16, 512)
    with pytest.raises(ConfigError, match="train.encoder_layers=12 but the model"):
        PipelineConfig.load(CONFIGS / "continue.yaml", [f"init_from_hf={hf}", "train.encoder_layers=12"])


def test_demo_is_cpu_sized():
    cfg = PipelineConfig.load(CONFIGS / "demo.yaml")
    assert Path(cfg.source).parts[:2] == ("data", "demo")  # the embedded sample, never ../shared
    assert cfg.train.device == "cpu" and cfg.train.max_update <= 2000
    assert cfg.spm.threads == 1  # spm output depends on the thread count: pinned for reproducibility


def test_small_is_the_quality_benchmarks_cpu_preset():
    cfg = PipelineConfig.load(CONFIGS / "small.yaml")
    assert cfg.train.device == "cpu" and cfg.train.precision != "fp16"
    assert cfg.spm.threads == 1
    # bench/quality.py writes the text subset this path names (`--chars` 20M under `--out bench/out/quality`)
    assert cfg.source == "bench/out/quality/kowiki-20M.txt"


def test_quality_is_smalls_model_pre_ln_with_a_decay_to_zero():
    """configs/quality.yaml (bench/quality.py's pretraining): small's model, pre-LN with the embedding LayerNorm the
    HF pre-LN export needs, no dropout, the lr linear to 0 at max_update (fairseq's polynomial_decay, power 1)."""
    q, s = (PipelineConfig.load(CONFIGS / f"{n}.yaml") for n in ("quality", "small"))
    shape = ("encoder_layers", "encoder_embed_dim", "encoder_ffn_embed_dim", "encoder_attention_heads", "max_positions")
    assert [getattr(q.train, k) for k in shape] == [getattr(s.train, k) for k in shape] and q.spm == s.spm
    assert (q.train.arch, q.train.layernorm_embedding, q.train.dropout, q.train.attention_dropout) == \
        ("roberta_prenorm", True, 0.0, 0.0)
    args = fairseq_args(q.train, "DATA", "SAVE", cuda=False)
    assert args[args.index("--end-learning-rate") + 1] == "0.0"
    assert args[args.index("--total-num-update") + 1] == str(q.train.max_update)
