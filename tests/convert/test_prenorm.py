"""Pre-LayerNorm export: a real fairseq roberta_prenorm checkpoint -> HF RobertaPreLayerNormForMaskedLM, parity-checked,
and the mapping is shown to matter (a wrong placement of any LayerNorm breaks parity); pre-LN without an embedding
LayerNorm is refused with the fix."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from koroberta.convert.config import ConvertConfig
from koroberta.convert.export import convert
from koroberta.errors import InputError
from koroberta.hfcompat import import_transformers

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from conftest import TINY_ARCH, fairseq_bin  # noqa: E402

CFG = ConvertConfig(parity_lines=50, parity_sentences=8)
SENTENCES = ["대한민국의 수도는 서울이다.", "그는 2003년 서울에서 박사 학위를 받았다.", "강은 산맥을 따라 남쪽으로 흐른다."]
PRENORM_ARCH = [("roberta_prenorm" if a == "roberta_base" else a) for a in TINY_ARCH]


def _train_cmd(databin: Path, save: Path, updates: int, *extra: str) -> list[str]:
    # tests/conftest.py::tiny_checkpoint's command with the pre-LN arch; lr 3e-3 so that the LayerNorm weights move
    # well away from their (1, 0) init in a few updates and a misplaced norm shows in the logits
    return [fairseq_bin("fairseq-train"), str(databin), "--task", "masked_lm", "--criterion", "masked_lm",
            *PRENORM_ARCH, *extra, "--tokens-per-sample", "64", "--sample-break-mode", "complete", "--batch-size", "8",
            "--optimizer", "adam", "--adam-betas", "(0.9,0.98)", "--adam-eps", "1e-6", "--lr", "3e-3",
            "--lr-scheduler", "polynomial_decay", "--warmup-updates", "2", "--total-num-update", str(updates),
            "--max-update", str(updates), "--save-dir", str(save), "--cpu", "--num-workers", "0", "--seed", "1",
            "--log-format", "simple", "--no-epoch-checkpoints", "--skip-invalid-size-inputs-valid-test",
            "--disable-validation"]


@pytest.fixture(scope="module")
def prenorm_checkpoints(tmp_path_factory, tiny_databin) -> tuple[Path, Path]:
    """(with --layernorm-embedding after 10 updates, without it after 2): trained side by side."""
    root = tmp_path_factory.mktemp("prenorm")
    runs = [subprocess.Popen(_train_cmd(tiny_databin, root / "ln", 10, "--layernorm-embedding"),
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True),
            subprocess.Popen(_train_cmd(tiny_databin, root / "noln", 2), stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True)]
    for p in runs:
        out, _ = p.communicate()
        if p.returncode != 0:
            raise RuntimeError(f"fairseq-train failed:\n{out[-3000:]}")
    return root / "ln" / "checkpoint_last.pt", root / "noln" / "checkpoint_last.pt"


@pytest.fixture(scope="module")
def export(tmp_path_factory, prenorm_checkpoints, tiny_vocab) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("conv_prenorm") / "hf"
    return out, convert(CFG, prenorm_checkpoints[0], tiny_vocab, out)


def test_export_is_prelayernorm_with_parity(export):
    out, m = export
    c = json.loads((out / "config.json").read_text())
    assert c["model_type"] == "roberta-prelayernorm" and c["architectures"] == ["RobertaPreLayerNormForMaskedLM"]
    par = m["stats"]["parity"]
    assert par["logits_checked"] and par["logit_sentences"] == 8 and par["max_abs_logit_diff"] <= 1e-5
    assert m["stats"]["hf_class"] == "RobertaPreLayerNormForMaskedLM" and m["stats"]["prenorm"] is True
    card = (out / "README.md").read_text()
    assert "`RobertaPreLayerNormForMaskedLM` (pre-LayerNorm" in card and "| LayerNorm placement | pre-LN |" in card


def test_automodel_logits_equal_fairseq(export, prenorm_checkpoints, tiny_vocab):
    from koroberta.convert import parity
    from koroberta.convert.checkpoint import load_checkpoint
    from koroberta.convert.vocab import resolve_vocab

    out, _ = export
    tf = import_transformers()
    model = tf.AutoModelForMaskedLM.from_pretrained(str(out)).eval()
    assert type(model).__name__ == "RobertaPreLayerNormForMaskedLM"
    tok = tf.AutoTokenizer.from_pretrained(str(out))
    ck = load_checkpoint(prenorm_checkpoints[0])
    ev = resolve_vocab(tiny_vocab, ck.vocab_rows)
    fs = parity.build_fairseq_model(ck, ev)
    # the layout here is XLM-R's (HF id = fairseq id), so the logits compare column for column
    with torch.inference_mode():
        for s in SENTENCES:
            ids = torch.tensor([tok(s)["input_ids"]])
            hf, ref = model(input_ids=ids).logits[0], fs(ids)[0][0]
            assert hf.shape == ref.shape and float((hf - ref).abs().max()) <= 1e-5, s


def _variants(sd: dict, n_layers: int) -> dict[str, dict]:
    """Wrong mappings a pre-LN export could plausibly make, each as a full state dict."""
    pre = "roberta_prelayernorm."
    ln = pre + "encoder.layer.{}.{}.LayerNorm.{}"
    swapped = dict(sd)
    for i in range(n_layers):
        for p in ("weight", "bias"):
            swapped[ln.format(i, "attention", p)] = sd[ln.format(i, "intermediate", p)]
            swapped[ln.format(i, "intermediate", p)] = sd[ln.format(i, "attention", p)]
    no_final = dict(sd, **{pre + "LayerNorm.weight": torch.ones_like(sd[pre + "LayerNorm.weight"]),
                           pre + "LayerNorm.bias": torch.zeros_like(sd[pre + "LayerNorm.bias"])})
    no_emb = dict(sd, **{pre + "embeddings.LayerNorm.weight": torch.ones_like(sd[pre + "LayerNorm.weight"]),
                         pre + "embeddings.LayerNorm.bias": torch.zeros_like(sd[pre + "LayerNorm.bias"])})
    return {"per-layer norms swapped": swapped, "final norm dropped": no_final, "embedding norm dropped": no_emb}


def test_a_wrong_layer_norm_mapping_breaks_parity(export, prenorm_checkpoints, tiny_vocab):
    """The same parity measure that passes the export fails each wrong mapping: the check can catch them."""
    from koroberta.convert import parity
    from koroberta.convert.checkpoint import load_checkpoint
    from koroberta.convert.vocab import resolve_vocab
    from koroberta.convert.weights import hf_config_kwargs, hf_state_dict

    out, _ = export
    tf = import_transformers()
    tok = tf.AutoTokenizer.from_pretrained(str(out))
    ck = load_checkpoint(prenorm_checkpoints[0])
    assert ck.prenorm
    ev = resolve_vocab(tiny_vocab, ck.vocab_rows)
    fs = parity.build_fairseq_model(ck, ev)
    sd = hf_state_dict(ck, ev)
    cfg = tf.RobertaPreLayerNormConfig(**hf_config_kwargs(ck, ev))

    def diff(state: dict) -> float:
        model = tf.RobertaPreLayerNormForMaskedLM(cfg).eval()
        missing, unexpected = model.load_state_dict(state, strict=False)
        assert not unexpected and set(missing) <= {"lm_head.decoder.bias"}
        return parity.max_logit_diff(fs, model, tok, ev, SENTENCES, ck.max_positions)[0]

    assert diff(sd) <= CFG.atol
    for name, bad in _variants(sd, ck.n_layers).items():
        # measured 1.7e-3 (swapped) to 1.5e-2 after 10 updates: far beyond atol, so convert would refuse each
        assert diff(bad) > 10 * CFG.atol, name


def test_prenorm_without_embedding_layer_norm_is_refused(prenorm_checkpoints, tiny_vocab, tmp_path):
    with pytest.raises(InputError) as e:
        convert(CFG, prenorm_checkpoints[1], tiny_vocab, tmp_path / "o")
    msg = str(e.value)
    assert "pre-LayerNorm without an embedding LayerNorm" in msg and "train.layernorm_embedding: true" in msg
    assert str(prenorm_checkpoints[1]) in msg and "\n" not in msg
    assert not (tmp_path / "o").exists()


def test_args_and_tensors_that_disagree_are_refused(prenorm_checkpoints, tmp_path):
    """A checkpoint whose args say post-LN while it holds the pre-LN final norm is neither layout."""
    from koroberta.convert.checkpoint import load_checkpoint

    obj = torch.load(prenorm_checkpoints[0], map_location="cpu", weights_only=False)
    obj["cfg"]["model"].encoder_normalize_before = False
    torch.save(obj, tmp_path / "edited.pt")
    with pytest.raises(InputError, match="encoder_normalize_before=False but it has the encoder's final"):
        load_checkpoint(tmp_path / "edited.pt")


def test_train_config_passes_layernorm_embedding(tmp_path):
    from koroberta.errors import ConfigError
    from koroberta.train.command import fairseq_args, hf_export_problem
    from koroberta.train.config import TrainConfig

    on = TrainConfig(arch="roberta_prenorm", layernorm_embedding=True)
    assert "--layernorm-embedding" in fairseq_args(on, tmp_path, tmp_path, cuda=False)
    assert hf_export_problem(on) is None
    for off in (TrainConfig(arch="roberta_prenorm"), TrainConfig(arch="roberta_prenorm", layernorm_embedding=False),
                TrainConfig(extra_args=["--encoder-normalize-before"], layernorm_embedding=None)):
        assert "--layernorm-embedding" not in fairseq_args(off, tmp_path, tmp_path, cuda=False)
    assert "train.layernorm_embedding: true" in hf_export_problem(TrainConfig(arch="roberta_prenorm"))
    # roberta_base has the embedding norm by default: pre-LN via extra_args is exportable as it is
    assert hf_export_problem(TrainConfig(extra_args=["--encoder-normalize-before"])) is None
    assert hf_export_problem(TrainConfig()) is None
    with pytest.raises(ConfigError, match="cannot turn the embedding LayerNorm off"):
        TrainConfig(layernorm_embedding=False)
    with pytest.raises(ConfigError, match="drop one of them"):
        TrainConfig(arch="roberta_prenorm", layernorm_embedding=False, extra_args=["--layernorm-embedding"])
    # identity: null leaves it out (runs from before the field stay complete); true is another run
    assert "layernorm_embedding" not in TrainConfig().identity()
    assert on.identity()["layernorm_embedding"] is True
