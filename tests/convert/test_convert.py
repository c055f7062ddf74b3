"""convert stage: real tiny fairseq checkpoint -> HF export, parity, fairseq-free loading, bad input, legacy dicts."""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
import torch

from koroberta.artifacts import read_manifest
from koroberta.convert.config import ConvertConfig
from koroberta.convert.export import convert
from koroberta.hfcompat import import_transformers
from koroberta.errors import DependencyError, InputError, KorobertaError, OutputError, ParityError

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from conftest import TINY_ARCH, fairseq_bin  # noqa: E402

CFG = ConvertConfig(parity_lines=200, parity_sentences=8)


def run_cli(argv: list[str]) -> tuple[int, str]:
    """The convert subcommand as koroberta.cli.main runs it: (exit code, 'error: ...' line)."""
    from koroberta.convert.cli import register

    parser = argparse.ArgumentParser(prog="koroberta")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0), ""
    except KorobertaError as e:
        return e.exit_code, f"error: {e}"


@pytest.fixture(scope="module")
def export(tmp_path_factory, tiny_checkpoint, tiny_vocab, tiny_split) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("conv") / "hf"
    m = convert(CFG, tiny_checkpoint, tiny_vocab, out, parity_text=tiny_split / "valid.txt")
    return out, m


def test_export_files_config_and_parity(export, tiny_vocab):
    out, m = export
    for f in ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "spm.model", "README.md",
              "manifest.json", "_COMPLETE"):
        assert (out / f).is_file(), f
    c = json.loads((out / "config.json").read_text())
    assert (c["layer_norm_eps"], c["max_position_embeddings"], c["type_vocab_size"]) == (1e-5, 66, 1)
    assert (c["pad_token_id"], c["bos_token_id"], c["eos_token_id"], c["vocab_size"]) == (1, 0, 2, 2008)
    par = m["stats"]["parity"]
    assert par["token_id_mismatches"] == 0 and par["token_id_lines"] == 163  # every non-blank valid line
    assert par["logit_sentences"] == 8 and par["max_abs_logit_diff"] <= 1e-5
    assert (par["checked"], par["token_ids_checked"], par["logits_checked"]) == (True, True, True)
    assert par["text"] == "parity_text" and par["tokenizer_model"] == "unigram"
    card = (out / "README.md").read_text()
    assert "updates | 30" in card and "max |HF - fairseq| logit difference" in card
    assert "HF tokenizer ids equal fairseq ids on 163/163 lines" in card and "not checked" not in card
    assert "built-in" not in card and "fast Unigram tokenizer" in card
    assert read_manifest(out)["stage"] == "convert"


def test_hf_loaders_and_fill_mask(export, tiny_vocab):
    from koroberta.layout import load_vocab

    out, _ = export
    tf = import_transformers()
    tok = tf.AutoTokenizer.from_pretrained(str(out))
    assert tok.mask_token == "<mask>" and tok.mask_token_id == load_vocab(tiny_vocab / "spm.model").mask_id == 2007
    assert tok.convert_ids_to_tokens(list(range(8))) == load_vocab(tiny_vocab / "spm.model").fairseq_symbols()[:8]
    mlm = tf.AutoModelForMaskedLM.from_pretrained(str(out))
    assert torch.equal(mlm.lm_head.decoder.weight, mlm.roberta.embeddings.word_embeddings.weight)
    assert float(mlm.roberta.embeddings.token_type_embeddings.weight.detach().abs().sum()) == 0.0
    cls = tf.AutoModelForSequenceClassification.from_pretrained(str(out), num_labels=2)
    assert cls(**tok(["서울은 도시이다."], return_tensors="pt")).logits.shape == (1, 2)
    preds = tf.pipeline("fill-mask", model=str(out), tokenizer=str(out), device="cpu")("대한민국의 수도는 <mask>이다.", top_k=3)
    assert len(preds) == 3 and all(0.0 <= p["score"] <= 1.0 for p in preds)


def test_tokenizer_matches_spm_on_edge_cases(export, tiny_vocab):
    """Whitespace runs, leading/trailing spaces, NFKC-normalised and unknown characters: HF ids == spm ids + 1
    (spm's <unk> = 0 becomes fairseq's <unk> = 3, as Dictionary.encode_line does for an unknown piece)."""
    import sentencepiece as spm

    out, _ = export
    tok = import_transformers().AutoTokenizer.from_pretrained(str(out))
    sp = spm.SentencePieceProcessor(model_file=str(tiny_vocab / "spm.model"))
    for s in ["  두 칸   공백\t탭 ", "ＡＢＣ①ｶﾀｶﾅ", "龘龘 𠀀 unknown 글자", "", "a", "madeupword0000 없음"]:
        want = [0] + [3 if i == 0 else i + 1 for i in sp.encode(s)] + [2]
        assert tok(s)["input_ids"] == want, s


def test_same_inputs_byte_identical_and_skip(export, tiny_checkpoint, tiny_vocab, tiny_split, tmp_path):
    out, m = export
    m2 = convert(CFG, tiny_checkpoint, tiny_vocab, tmp_path / "again", parity_text=tiny_split / "valid.txt")
    assert m2["outputs"] == m["outputs"]
    before = (out / "_COMPLETE").stat().st_mtime_ns
    assert convert(CFG, tiny_checkpoint, tiny_vocab, out, parity_text=tiny_split / "valid.txt") == m
    assert (out / "_COMPLETE").stat().st_mtime_ns == before  # skipped, not redone


def test_reads_checkpoint_without_fairseq(monkeypatch, tiny_checkpoint, tiny_vocab, tmp_path):
    monkeypatch.setitem(sys.modules, "fairseq", None)  # `import fairseq` now raises ImportError
    with pytest.raises(ImportError):
        import fairseq  # noqa: F401
    with pytest.raises(DependencyError, match="--no-parity"):
        convert(CFG, tiny_checkpoint, tiny_vocab, tmp_path / "a")
    assert not (tmp_path / "a").exists()
    m = convert(CFG.replace(parity=False), tiny_checkpoint, tiny_vocab, tmp_path / "b")
    par = m["stats"]["parity"]
    assert par["checked"] is False and par["max_abs_logit_diff"] is None
    assert par["token_id_mismatches"] == 0 and par["token_id_lines"] > 0  # ids still checked without fairseq
    assert (par["token_ids_checked"], par["logits_checked"], par["text"]) == (True, False, "builtin_sentences")
    card = (tmp_path / "b" / "README.md").read_text()
    assert "logits **not checked** (exported with --no-parity)" in card
    assert "HF tokenizer ids equal fairseq ids on 8/8 lines" in card and "built-in sentences only" in card


def test_logit_sentences_are_not_capped_by_parity_lines(tiny_checkpoint, tiny_vocab, tiny_split, tmp_path):
    m = convert(CFG.replace(parity_lines=2, parity_sentences=5), tiny_checkpoint, tiny_vocab, tmp_path / "p",
                parity_text=tiny_split / "valid.txt")
    par = m["stats"]["parity"]
    assert par["token_id_lines"] == 2 and par["logit_sentences"] == 5


def test_fp16_export(tiny_checkpoint, tiny_vocab, tmp_path):
    from safetensors import safe_open

    m = convert(CFG.replace(dtype="fp16", parity_lines=20), tiny_checkpoint, tiny_vocab, tmp_path / "h")
    with safe_open(str(tmp_path / "h" / "model.safetensors"), "pt") as f:
        assert {f.get_tensor(k).dtype for k in f.keys()} == {torch.float16}
    assert m["stats"]["parity"]["max_abs_logit_diff"] <= 1e-5
    assert 0 < m["stats"]["parity"]["fp16_max_abs_logit_diff"] < 0.05
    # parity on, no --parity-text: checked on the built-in sentences, and the card says so
    assert m["stats"]["parity"]["checked"] is True and m["stats"]["parity"]["text"] == "builtin_sentences"
    assert "built-in sentences only (no --parity-text was given)" in (tmp_path / "h" / "README.md").read_text()


def test_broken_mapping_raises_parity_error(monkeypatch, tiny_checkpoint, tiny_vocab, tmp_path):
    import koroberta.convert.weights as w

    orig = w.hf_state_dict

    def off_by_a_little(ck, ev):
        sd = orig(ck, ev)
        k = "roberta.encoder.layer.1.output.dense.bias"
        sd[k] = sd[k].clone()
        sd[k][0] += 1e-2  # one element: a uniform shift would be removed by the following LayerNorm
        return sd

    monkeypatch.setattr(w, "hf_state_dict", off_by_a_little)
    with pytest.raises(ParityError, match="atol"):
        convert(CFG, tiny_checkpoint, tiny_vocab, tmp_path / "bad")
    assert not (tmp_path / "bad").exists() and not list(tmp_path.glob(".bad.tmp-*"))


def test_translation_checkpoint_is_refused(tmp_path, tiny_vocab):
    state = {"encoder.layers.0.fc1.weight": torch.zeros(4, 4), "encoder.embed_tokens.weight": torch.zeros(8, 4),
             "decoder.layers.0.fc1.weight": torch.zeros(4, 4), "decoder.embed_tokens.weight": torch.zeros(8, 4)}
    ck = tmp_path / "mt.pt"
    torch.save({"model": state, "cfg": {"model": argparse.Namespace(arch="transformer", _name="transformer")}}, ck)
    code, msg = run_cli([ "convert", str(ck), str(tmp_path / "o"), "--vocab-dir", str(tiny_vocab), "--no-parity"])
    assert code == 2 and "'transformer' model" in msg and str(ck) in msg and "\n" not in msg
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(InputError, match="not a fairseq checkpoint: not a PyTorch file"):
        convert(CFG, tmp_path / "junk.pt", tiny_vocab, tmp_path / "o")


def test_vocab_of_another_size_is_refused(tmp_path, tiny_checkpoint, tiny_split):
    import sentencepiece as spm

    from koroberta.layout import SPM_SPECIALS, load_vocab

    v = tmp_path / "v"
    v.mkdir()
    spm.SentencePieceTrainer.train(input=str(tiny_split / "train.txt"), model_prefix=str(v / "spm"), vocab_size=1500,
                                   model_type="unigram", character_coverage=0.995, num_threads=1, minloglevel=2, **SPM_SPECIALS)
    (v / "dict.txt").write_text(load_vocab(v / "spm.model").dict_text(), encoding="utf-8")
    code, msg = run_cli(["convert", str(tiny_checkpoint), str(tmp_path / "o"), "--vocab-dir", str(v)])
    assert code == 2 and "1504 fairseq symbols" in msg and "2008 rows" in msg
    assert not (tmp_path / "o").exists()


def test_nonempty_output_needs_overwrite(tmp_path, tiny_checkpoint, tiny_vocab):
    out = tmp_path / "o"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(OutputError, match="--overwrite"):
        convert(CFG.replace(parity_lines=10, parity_sentences=2), tiny_checkpoint, tiny_vocab, out)
    assert (out / "notes.txt").read_text() == "mine"
    convert(CFG.replace(parity_lines=10, parity_sentences=2), tiny_checkpoint, tiny_vocab, out, overwrite=True)
    assert (out / "_COMPLETE").is_file() and not (out / "notes.txt").exists()


def test_fairseq_hub_encode_has_no_unk(tiny_checkpoint, tiny_vocab):
    """The source stays usable from fairseq with the spm bpe (the old recipe's load gave all <unk>)."""
    from fairseq.models.roberta import RobertaModel

    r = RobertaModel.from_pretrained(str(tiny_checkpoint.parent), checkpoint_file=tiny_checkpoint.name,
                                     data_name_or_path=str(tiny_vocab), bpe="sentencepiece",
                                     sentencepiece_model=str(tiny_vocab / "spm.model"))
    ids = r.encode("대한민국의 수도는 서울이며, 한강이 도시를 가로지른다.").tolist()
    assert ids[0] == 0 and ids[-1] == 2 and 3 not in ids and len(ids) > 5


# -- legacy KoRoBERTa layout ------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def legacy(tmp_path_factory, tiny_split) -> tuple[Path, Path]:
    """BERT-style spm ([PAD] [UNK] [CLS] [SEP] [MASK]) + frequency-ordered dict of spm-id strings + a fairseq
    checkpoint trained (10 updates) on data binarized with that dict — the KoRoBERTa recipe."""
    import sentencepiece as spm

    root = tmp_path_factory.mktemp("legacy")
    vocab = root / "vocab"
    vocab.mkdir()
    spm.SentencePieceTrainer.train(
        input=str(tiny_split / "train.txt"), model_prefix=str(vocab / "spm"), vocab_size=1500, model_type="unigram",
        character_coverage=0.995, num_threads=1, minloglevel=2, pad_id=0, pad_piece="[PAD]", unk_id=1, unk_piece="[UNK]", bos_id=2,
        bos_piece="[CLS]", eos_id=3, eos_piece="[SEP]", user_defined_symbols=["[MASK]"])
    sp = spm.SentencePieceProcessor(model_file=str(vocab / "spm.model"))
    enc = root / "enc"
    enc.mkdir()
    counts: Counter[str] = Counter()
    for name in ("train", "valid"):
        lines = (tiny_split / f"{name}.txt").read_text(encoding="utf-8").split("\n")[:-1]
        ids = [" ".join(map(str, x)) for x in sp.encode(lines)]
        if name == "train":
            counts.update(t for l in ids for t in l.split())
        (enc / f"{name}.ids").write_text("\n".join(ids) + "\n", encoding="utf-8")
    (vocab / "dict.txt").write_text("".join(f"{s} {c}\n" for s, c in counts.most_common()), encoding="utf-8")
    db = root / "bin"
    subprocess.run([fairseq_bin("fairseq-preprocess"), "--only-source", "--srcdict", str(vocab / "dict.txt"),
                    "--trainpref", str(enc / "train.ids"), "--validpref", str(enc / "valid.ids"), "--destdir", str(db),
                    "--workers", "1"], check=True, capture_output=True)
    save = root / "ckpt"
    r = subprocess.run([fairseq_bin("fairseq-train"), str(db), "--task", "masked_lm", "--criterion", "masked_lm",
                        *TINY_ARCH, "--tokens-per-sample", "64", "--sample-break-mode", "complete", "--batch-size", "8",
                        "--optimizer", "adam", "--lr", "1e-3", "--max-update", "10", "--save-dir", str(save), "--cpu",
                        "--num-workers", "0", "--seed", "1", "--no-epoch-checkpoints", "--disable-validation"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    return save / "checkpoint_last.pt", vocab


def test_legacy_checkpoint_reordered_with_parity(legacy, tiny_split, tmp_path):
    ckpt, vocab = legacy
    m = convert(CFG, ckpt, vocab, tmp_path / "hf", parity_text=tiny_split / "valid.txt")
    par = m["stats"]["parity"]
    assert par["legacy_vocab"] is True and par["token_id_mismatches"] == 0 and par["token_id_lines"] == 163
    assert par["max_abs_logit_diff"] <= 1e-5
    tok = import_transformers().AutoTokenizer.from_pretrained(str(tmp_path / "hf"))
    assert tok.convert_ids_to_tokens([0, 1, 2, 3]) == ["<s>", "<pad>", "</s>", "<unk>"]
    assert tok.mask_token_id == len(tok) - 1


def test_convert_checks_the_recorded_legacy_map(legacy, tiny_split, tmp_path):
    """`spm import-legacy` writes legacy_map.json; convert reads it and refuses a dict swapped after the import."""
    import shutil

    from koroberta.spm.legacy import import_legacy

    ckpt, vocab = legacy
    imported = import_legacy(vocab / "spm.model", vocab / "dict.txt", tmp_path / "imported")
    m = convert(CFG.replace(parity=False, parity_lines=0), ckpt, imported, tmp_path / "hf")
    assert m["stats"]["parity"]["legacy_vocab"] is True
    swapped = tmp_path / "swapped"
    shutil.copytree(imported, swapped)
    lines = (swapped / "dict.txt").read_text(encoding="utf-8").splitlines()
    lines[0], lines[1] = lines[1], lines[0]  # another frequency order: other rows for two pieces
    (swapped / "dict.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(InputError, match="legacy_map.json does not match"):
        convert(CFG.replace(parity=False, parity_lines=0), ckpt, swapped, tmp_path / "hf2")
