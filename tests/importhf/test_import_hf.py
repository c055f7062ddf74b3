"""import-hf: HF model (three tokenizer layouts, post- and pre-LN) -> fairseq -> convert -> HF, logits and ids equal.

Every model is built here with every parameter drawn from N(0, 0.02) (tests/hf_models.py): nothing is downloaded.
"""

from __future__ import annotations

import json
import math
import shutil
import sys
from pathlib import Path

import pytest
import torch

from koroberta.convert.config import ConvertConfig
from koroberta.convert.export import convert
from koroberta.errors import InputError, KorobertaError, ParityError
from koroberta.convert.parity import fairseq_model as build_fairseq_model
from koroberta.importhf.build import import_hf
from koroberta.importhf.config import ImportHFConfig

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import hf_models as H  # noqa: E402

CFG = ImportHFConfig(parity_sentences=8)
CONVERT = ConvertConfig(parity_lines=200, parity_sentences=8)


@pytest.fixture(scope="module")
def lines(kowiki_line_list) -> list[str]:
    return kowiki_line_list


@pytest.fixture(scope="module")
def parity_text(tmp_path_factory, lines) -> Path:
    p = tmp_path_factory.mktemp("ptext") / "valid.txt"
    p.write_text("\n".join(l for l in lines[2500:2800] if l.strip()) + "\n", encoding="utf-8")
    return p


@pytest.fixture(scope="module")
def own_tokenizer(tmp_path_factory, tiny_checkpoint, tiny_vocab) -> Path:
    """Our own export's tokenizer files (koroberta convert of the tiny fairseq checkpoint)."""
    out = tmp_path_factory.mktemp("own") / "hf"
    convert(ConvertConfig(parity_lines=20, parity_sentences=2), tiny_checkpoint, tiny_vocab, out)
    return out


def _tokenizer_dir(kind: str, root: Path, lines: list[str], own: Path | None) -> Path:
    if kind == "wordpiece":
        return H.wordpiece_tokenizer(lines[:1200], root / "tok")
    if kind == "xlmr":
        return H.xlmr_tokenizer(lines[:1200], root / "tok")
    tok = root / "tok"
    tok.mkdir()
    for f in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copyfile(own / f, tok / f)
    return tok


def _hf_model_dir(kind: str, root: Path, lines, own=None, prenorm: bool = False, seed: int = 0,
                  std: float = 0.02) -> Path:
    from tokenizers import Tokenizer

    tok = _tokenizer_dir(kind, root, lines, own)
    n = Tokenizer.from_file(str(tok / "tokenizer.json")).get_vocab_size()
    model = H.random_model("xlm-roberta" if kind == "xlmr" else "roberta", n, prenorm=prenorm, seed=seed, std=std,
                           pad_to=8 if kind == "wordpiece" else 0)  # wordpiece: rows beyond the tokenizer
    return H.save_model(model, tok, root / "hf")


def _hf_logits(model_dir: Path, sentences: list[str]) -> tuple[list[list[int]], list[torch.Tensor]]:
    import transformers as tf

    tok = tf.AutoTokenizer.from_pretrained(str(model_dir))
    model = tf.AutoModelForMaskedLM.from_pretrained(str(model_dir), dtype=torch.float32).eval()
    ids = [tok(s)["input_ids"][:64] for s in sentences]
    with torch.inference_mode():
        return ids, [model(input_ids=torch.tensor([i])).logits[0] for i in ids]


@pytest.mark.parametrize("kind,prenorm", [("wordpiece", False), ("xlmr", False), ("own", False),
                                          ("wordpiece", True)])
def test_round_trip(kind, prenorm, tmp_path, lines, parity_text, request):
    """HF -> import-hf: fairseq logits == HF logits (computed here, independently of the import's own check) ->
    convert: the export's logits and ids == the original's."""
    own = request.getfixturevalue("own_tokenizer") if kind == "own" else None
    src = _hf_model_dir(kind, tmp_path, lines, own, prenorm=prenorm)
    out = import_hf(CFG, src, tmp_path / "imp", parity_text=parity_text)
    m = json.loads((out / "manifest.json").read_text())["stats"]
    assert m["parity"]["max_abs_logit_diff"] <= 1e-5 and m["parity"]["logit_sentences"] == 8
    assert m["arch"] == ("roberta_prenorm" if prenorm else "roberta_base")
    sentences = parity_text.read_text(encoding="utf-8").splitlines()[:10]
    ids, ref = _hf_logits(src, sentences)

    from koroberta.convert.checkpoint import load_checkpoint

    ck = load_checkpoint(out / "checkpoint.pt")  # our reader (weights_only): fairseq's own format
    fs = build_fairseq_model(ck.model_args, out / "dict.txt", ck.state)
    with torch.inference_mode():
        for i, r in zip(ids, ref):
            assert (fs(torch.tensor([i]))[0][0] - r).abs().max() <= 1e-5
    # the scale of what is compared: a mapping error moves logits by far more than atol
    assert max(float(r.abs().max()) for r in ref) > 1e-3

    hf = tmp_path / "export"
    cm = convert(CONVERT, out / "checkpoint.pt", out, hf, parity_text=parity_text)["stats"]
    assert cm["parity"]["token_id_mismatches"] == 0 and cm["parity"]["max_abs_logit_diff"] <= 1e-5
    assert cm["parity"]["token_ids_against"] == "preprocess encoder"  # no data-bin behind this checkpoint
    assert cm["hf_class"] == ("RobertaPreLayerNormForMaskedLM" if prenorm else "RobertaForMaskedLM")
    for f in (src / "tokenizer.json", src / "tokenizer_config.json"):
        assert (hf / f.name).read_bytes() == f.read_bytes()  # the original tokenizer files, byte for byte
    ids2, back = _hf_logits(hf, sentences)
    assert ids2 == ids
    for a, b in zip(back, ref):
        assert (a - b).abs().max() <= 1e-5


def test_a_wrong_mapping_cannot_pass(tmp_path, lines, parity_text, monkeypatch):
    """q and k swapped in one table entry, or the token-type row not folded: the logits check catches both. The
    model's weights are N(0, 0.3): at 0.02 attention is uniform and a q/k swap is invisible (tests/hf_models.py)."""
    import koroberta.importhf.weights as W

    src = _hf_model_dir("wordpiece", tmp_path, lines, std=0.3)
    real = W.layer_map
    monkeypatch.setattr(W, "layer_map", lambda pre: {**real(pre), "self_attn.q_proj": "attention.self.key",
                                                     "self_attn.k_proj": "attention.self.query"})
    with pytest.raises(ParityError, match="logit difference"):
        import_hf(CFG, src, tmp_path / "a", parity_text=parity_text)
    monkeypatch.setattr(W, "layer_map", real)
    out = import_hf(CFG, src, tmp_path / "b", parity_text=parity_text)
    from koroberta.convert.checkpoint import load_checkpoint

    ck = load_checkpoint(out / "checkpoint.pt")
    from safetensors.torch import load_file

    tt = load_file(str(src / "model.safetensors"))["roberta.embeddings.token_type_embeddings.weight"][0]
    state = dict(ck.state)
    state["encoder.sentence_encoder.embed_positions.weight"] = state["encoder.sentence_encoder.embed_positions."
                                                                     "weight"] - tt
    sentences = parity_text.read_text(encoding="utf-8").splitlines()[:4]
    ids, ref = _hf_logits(src, sentences)
    fs = build_fairseq_model(ck.model_args, out / "dict.txt", state)
    with torch.inference_mode():
        assert max(float((fs(torch.tensor([i]))[0][0] - r).abs().max()) for i, r in zip(ids, ref)) > 1e-4


def test_dict_keeps_hf_ids_and_mask(tmp_path, lines):
    from koroberta.hfvocab import load_hf_vocab
    from fairseq.data import Dictionary
    from tokenizers import Tokenizer

    src = _hf_model_dir("wordpiece", tmp_path, lines)
    out = import_hf(ImportHFConfig(parity=False), src, tmp_path / "imp")
    hv = load_hf_vocab(out)
    tok = Tokenizer.from_file(str(src / "tokenizer.json"))
    d = Dictionary.load(str(out / "dict.txt"))
    assert d.add_symbol("<mask>") == hv.mask_id == tok.token_to_id("[MASK]") == 4  # reused, not appended
    assert len(d) == hv.rows and hv.rows % 8 == 0 and hv.rows > tok.get_vocab_size()
    for i in range(5, tok.get_vocab_size()):
        assert d[i] == tok.id_to_token(i)
    assert set(hv.literals) == {"[CLS]", "[PAD]", "[SEP]", "[UNK]", "[MASK]"}


def test_fairseq_mlm_loss_equals_hf_at_update_0(tmp_path, lines, parity_text):
    """fairseq's masked_lm criterion on the imported model == HF's MLM loss on the same masked batch, in fairseq's
    unit (bits per masked token): proof that every weight arrived."""
    import transformers as tf
    from fairseq.criterions.masked_lm import MaskedLmLoss
    from types import SimpleNamespace

    from koroberta.convert.checkpoint import load_checkpoint

    src = _hf_model_dir("xlmr", tmp_path, lines, seed=3, std=0.3)  # attention matters at 0.3 (tests/hf_models.py)
    out = import_hf(CFG, src, tmp_path / "imp", parity_text=parity_text)
    ck = load_checkpoint(out / "checkpoint.pt")
    fs = build_fairseq_model(ck.model_args, out / "dict.txt", ck.state)
    tok = tf.AutoTokenizer.from_pretrained(str(src))
    hf = tf.AutoModelForMaskedLM.from_pretrained(str(src), dtype=torch.float32).eval()
    batch = tok(parity_text.read_text(encoding="utf-8").splitlines()[:6], padding=True, truncation=True,
                max_length=64, return_tensors="pt")["input_ids"]
    g = torch.Generator().manual_seed(0)
    real = (batch != tok.pad_token_id) & (batch != tok.cls_token_id) & (batch != tok.sep_token_id)
    masked = real & (torch.rand(batch.shape, generator=g) < 0.15)
    assert masked.sum() > 10
    inp = batch.masked_fill(masked, tok.mask_token_id)
    with torch.inference_mode():
        labels = batch.masked_fill(~masked, -100)
        hf_loss = float(hf(input_ids=inp, attention_mask=(batch != tok.pad_token_id).long(), labels=labels).loss)
        d = SimpleNamespace(pad=lambda: 1)  # fairseq's padding index: the criterion ignores targets equal to it
        crit = MaskedLmLoss(SimpleNamespace(tpu=False), SimpleNamespace(source_dictionary=d, target_dictionary=d))
        sample = {"net_input": {"src_tokens": inp}, "target": batch.masked_fill(~masked, 1), "ntokens": 0,
                  "nsentences": len(batch)}
        loss, size, _ = crit(fs, sample)
    fs_bits = float(loss) / size / math.log(2)  # what fairseq logs
    assert abs(fs_bits - hf_loss / math.log(2)) < 1e-4
    # the same batch on the model with one layer's FFN input projection not imported (left as fairseq's own init):
    # the losses must then differ by far more than the tolerance
    state = dict(ck.state)
    state["encoder.sentence_encoder.layers.1.fc1.weight"] = torch.zeros_like(state["encoder.sentence_encoder."
                                                                                   "layers.1.fc1.weight"])
    with torch.inference_mode():
        broken, size2, _ = crit(build_fairseq_model(ck.model_args, out / "dict.txt", state), sample)
    assert abs(float(broken) / size2 / math.log(2) - fs_bits) > 1e-2


@pytest.mark.parametrize("case,match", [
    ("no_weights", "no model.safetensors"),
    ("pickle_only", "pytorch_model.bin"),
    ("bert", "model_type 'bert' is not a RoBERTa"),
    ("eps", "layer_norm_eps"),
    ("relative", "position_embedding_type"),
    ("special_ids", "has id"),
    ("no_fast", "cannot load its tokenizer"),
])
def test_refusals_are_one_line(case, match, tmp_path, lines):
    src = _hf_model_dir("wordpiece", tmp_path, lines)
    cfg_path = src / "config.json"
    c = json.loads(cfg_path.read_text())
    if case == "no_weights":
        (src / "model.safetensors").unlink()
    elif case == "pickle_only":
        (src / "model.safetensors").rename(src / "pytorch_model.bin")
    elif case == "bert":
        c["model_type"] = "bert"
    elif case == "eps":
        c["layer_norm_eps"] = 1e-12
    elif case == "relative":
        c["position_embedding_type"] = "relative_key"
    elif case == "special_ids":
        tc = json.loads((src / "tokenizer_config.json").read_text())
        tc["pad_token"] = "[MASK]"  # [MASK] is id 4: fairseq's pad is 1
        (src / "tokenizer_config.json").write_text(json.dumps(tc))
    elif case == "no_fast":
        (src / "tokenizer.json").unlink()
        tc = json.loads((src / "tokenizer_config.json").read_text())
        tc["tokenizer_class"] = "NoSuchTokenizer"
        (src / "tokenizer_config.json").write_text(json.dumps(tc))
    cfg_path.write_text(json.dumps(c))
    with pytest.raises(KorobertaError) as e:
        import_hf(ImportHFConfig(parity=False), src, tmp_path / "out")
    msg = str(e.value)
    assert isinstance(e.value, InputError) and "\n" not in msg and match in msg and "fix:" in msg
    assert not (tmp_path / "out").exists()  # nothing that looks complete


def test_cli_and_skip(tmp_path, lines):
    from koroberta.cli import main

    src = _hf_model_dir("wordpiece", tmp_path, lines)
    assert main(["import-hf", str(src), str(tmp_path / "o"), "--parity-sentences", "2"]) == 0
    before = (tmp_path / "o" / "checkpoint.pt").stat().st_mtime_ns
    assert main(["import-hf", str(src), str(tmp_path / "o"), "--parity-sentences", "2"]) == 0  # complete: skipped
    assert (tmp_path / "o" / "checkpoint.pt").stat().st_mtime_ns == before
