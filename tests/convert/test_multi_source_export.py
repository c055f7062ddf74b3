"""A corpus of three sources of different kinds with PII -> spm -> preprocess -> a few fairseq updates -> HF export (issue 22,
done-when: "the HF export's parity holds"). The placeholders that replaced the PII are spm user symbols
(``koroberta run`` fills ``spm.user_symbols`` because the review source's profile replaces PII); the export's
token ids must equal the data-bin's on every line of the corpus's train split, placeholders included, and each
placeholder must be one ordinary vocabulary entry with the same id in fairseq's dict and the HF tokenizer."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from koroberta.convert.config import ConvertConfig
from koroberta.convert.export import convert
from koroberta.corpus.build import build_corpus_sources
from koroberta.corpus.pii import PLACEHOLDERS
from koroberta.layout import FAIRSEQ_SPECIALS, read_dict_symbols
from koroberta.pipeline import PipelineConfig
from koroberta.preprocess.build import preprocess
from koroberta.spm.train import train_vocab

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from conftest import FIXTURES, TINY_ARCH, fairseq_bin  # noqa: E402

# three kinds (a dump, a Parquet dataset, an NSMC TSV) with weights 1 / 2 / 0.5 -- 0.5 on the many short reviews,
# so that half of them carries half their tokens (a half of 40 articles would not, within 2 points)
WEIGHTS = {"kowiki": 1.0, "news": 2.0, "reviews": 0.5}
PII = ["문의는 010-1234-5678 로 주세요", "메일 hong.gildong@naver.com 으로", "주민번호 900101-1234567 유출",
       "국민은행 계좌 123456-01-123456 로 입금", "연락처 02-123-4567"]


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("multi_export")
    rows = (FIXTURES / "nsmc-tiny.tsv").read_text(encoding="utf-8").splitlines()
    # every fourth review gets a piece of personal data: the web profile replaces it with a placeholder
    body = [r if i % 4 else "\t".join((r.split("\t")[0], f"{r.split(chr(9))[1]} {PII[i // 4 % len(PII)]}",
                                       r.split("\t")[2])) for i, r in enumerate(rows[1:])]
    (root / "reviews.tsv").write_text("\n".join([rows[0], *body]) + "\n", encoding="utf-8")
    # a Hugging Face Parquet dataset of articles (the kowiki-docs fixture), beside the tiny dump and the reviews TSV
    import pyarrow as pa
    import pyarrow.parquet as pq

    docs = (FIXTURES / "kowiki-docs.txt").read_text(encoding="utf-8").split("\n\n")[:40]
    pq.write_table(pa.table({"id": [f"a{k}" for k in range(len(docs))], "title": [f"기사 {k}" for k in range(len(docs))],
                             "text": docs}), root / "news.parquet")
    paths = {"kowiki": FIXTURES / "kowiki-tiny.xml.bz2", "news": root / "news.parquet", "reviews": root / "reviews.tsv"}
    conf = {"workdir": str(root / "work"),
            "sources": [{"name": n, "path": str(p), "weight": WEIGHTS[n]} for n, p in paths.items()],
            "corpus": {"valid_fraction": 0.1, "test_fraction": 0.05, "keep_intermediates": True},
            "spm": {"vocab_size": 1200, "threads": 1, "character_coverage": 0.995, "hard_vocab_limit": False}}
    (root / "run.yaml").write_text(yaml.safe_dump(conf, allow_unicode=True), encoding="utf-8")
    cfg = PipelineConfig.load(root / "run.yaml")
    split = build_corpus_sources(cfg.corpus, cfg.source_paths(), root / "corpus")
    vocab = train_vocab(cfg.spm, split / "train.txt", root / "spm")
    data = preprocess(cfg.preprocess, split, vocab, root / "data-bin")

    save = root / "ckpt"
    cmd = [fairseq_bin("fairseq-train"), str(data), "--task", "masked_lm", "--criterion", "masked_lm", *TINY_ARCH,
           "--tokens-per-sample", "64", "--sample-break-mode", "complete", "--batch-size", "8", "--optimizer",
           "adam", "--lr", "1e-3", "--max-epoch", "1", "--disable-validation", "--save-dir", str(save), "--cpu",
           "--num-workers", "0", "--seed", "1", "--no-epoch-checkpoints", "--skip-invalid-size-inputs-valid-test",
           "--log-format", "simple"]
    r = subprocess.run(cmd, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-3000:]
    return {"cfg": cfg, "split": split, "vocab": vocab, "data": data, "checkpoint": save / "checkpoint_last.pt",
            "root": root}


def test_the_pipeline_made_the_placeholders_user_symbols(run):
    assert run["cfg"].spm.user_symbols == list(PLACEHOLDERS.values())
    train = (run["split"] / "train.txt").read_text(encoding="utf-8")
    found = [p for p in PLACEHOLDERS.values() if p in train]
    assert len(found) == len(PLACEHOLDERS)  # every kind was planted and replaced
    assert "010-1234-5678" not in train and "hong.gildong@naver.com" not in train
    # fairseq row = 4 + spm id - 3: the placeholders are the first rows after fairseq's specials
    assert read_dict_symbols(run["vocab"] / "dict.txt")[:len(PLACEHOLDERS)] == list(PLACEHOLDERS.values())


def test_export_parity_on_text_with_placeholders(run):
    from transformers import AutoTokenizer

    out = run["root"] / "hf"
    m = convert(ConvertConfig(parity_lines=100000, parity_sentences=4), run["checkpoint"], run["vocab"], out,
                parity_text=run["split"] / "train.txt")
    par = m["stats"]["parity"]
    n_lines = sum(1 for line in (run["split"] / "train.txt").read_text(encoding="utf-8").splitlines() if line.strip())
    assert par["token_id_mismatches"] == 0 and par["token_id_lines"] == n_lines
    assert par["max_abs_logit_diff"] <= 1e-5
    tok = AutoTokenizer.from_pretrained(out)
    ids = {p: len(FAIRSEQ_SPECIALS) + k for k, p in enumerate(PLACEHOLDERS.values())}
    assert all(tok.convert_tokens_to_ids(p) == i for p, i in ids.items())
    assert not set(ids) & set(tok.get_added_vocab())  # ordinary vocabulary entries, not added tokens
    enc = tok("연락처는 <전화번호>로, 메일은 <이메일>입니다", add_special_tokens=False)["input_ids"]
    assert enc.count(ids["<전화번호>"]) == 1 and enc.count(ids["<이메일>"]) == 1


def test_spm_train_alone_with_the_run_config_builds_the_same_vocabulary(run, tmp_path):
    """`koroberta spm train --config RUN.yaml` (the stage run by hand) fills user_symbols as `koroberta run` does:
    the same spm.model bytes. Without the run config it says that the placeholders will be cut."""
    import os

    exe = [sys.executable, "-m", "koroberta"]
    train = str(run["split"] / "train.txt")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    r = subprocess.run([*exe, "spm", "train", train, str(tmp_path / "a"), "--config", str(run["root"] / "run.yaml")],
                       capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr[-2000:]
    assert (tmp_path / "a" / "spm.model").read_bytes() == (run["vocab"] / "spm.model").read_bytes()
    r = subprocess.run([*exe, "spm", "train", train, str(tmp_path / "b"), "--vocab-size", "1200", "--threads", "1",
                        "--character-coverage", "0.995", "--no-hard-vocab-limit"], capture_output=True, text=True,
                       env=env)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "spm.user_symbols is not set" in r.stderr
    assert read_dict_symbols(tmp_path / "b" / "dict.txt")[0] not in PLACEHOLDERS.values()


def test_token_shares_are_what_the_weights_imply(run):
    """preprocess's share of the train tokens per source (from the data-bin) is within 2 points of the share the
    weights imply: w_i * T_i / sum_j w_j * T_j, with T_i the tokens of source i's train documents before weighting
    (counted here from the sentence step's records, encoded with the run's spm model, one </s> per sentence)."""
    import json

    import sentencepiece as spm

    from koroberta.artifacts import read_manifest
    from koroberta.corpus.steps import assign_split

    cfg = run["cfg"].corpus
    sp = spm.SentencePieceProcessor(model_file=str(run["vocab"] / "spm.model"))
    tokens = {n: 0 for n in WEIGHTS}
    for line in (run["root"] / "corpus" / "sentences" / "sentences.jsonl").read_text(encoding="utf-8").splitlines():
        rec = json.loads(line)
        if rec["sentences"] and assign_split(str(rec["id"]), cfg.split_salt, cfg.valid_fraction,
                                             cfg.test_fraction) == "train":
            tokens[rec["source"]] += sum(len(x) + 1 for x in sp.encode(rec["sentences"]))
    total = sum(WEIGHTS[n] * t for n, t in tokens.items())
    shares = read_manifest(run["data"])["stats"]["sources"]
    for n, w in WEIGHTS.items():
        assert abs(shares[n]["share"] - w * tokens[n] / total) <= 0.02, (n, shares[n], w * tokens[n] / total)
    # weight 2 writes every news document twice: exactly twice its tokens; weight 1 exactly once
    assert shares["news"]["train_tokens"] == 2 * tokens["news"]
    assert shares["kowiki"]["train_tokens"] == tokens["kowiki"]
