"""What each stage says it needs (koroberta.resources): the estimators, each stage's first log line, the warnings
and `koroberta run --plan`."""

from __future__ import annotations

import bz2
import gzip
import lzma
import shutil
from collections import namedtuple
from pathlib import Path

import pytest

from koroberta import resources as R
from koroberta.cli import main
from koroberta.corpus.config import CorpusConfig
from koroberta.preprocess.config import PreprocessConfig
from koroberta.spm.config import SpmConfig
from koroberta.train.config import TrainConfig

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "configs" / "demo.yaml"
PARA = "대한민국의 수도는 서울이다. 서울은 한강을 끼고 있는 큰 도시이며 많은 사람이 산다."


def _text_source(path: Path, docs: int) -> Path:
    path.write_text("\n\n".join(f"{i}번째 문서. {PARA}\n{PARA}" for i in range(docs)) + "\n", encoding="utf-8")
    return path


def _stderr_lines(err: str) -> list[str]:
    return [l for l in err.splitlines() if l.strip()]


# -- the estimators ----------------------------------------------------------------------------------------------------
def test_corpus_needs_grow_with_the_source_and_the_workers(tmp_path):
    small, big = _text_source(tmp_path / "small.txt", 100), _text_source(tmp_path / "big.txt", 2000)
    cfg = CorpusConfig()
    a = R.corpus_needs(cfg, {"source": small}, 1)
    b = R.corpus_needs(cfg, {"source": big}, 1)
    assert b.needs.disk > a.needs.disk > 0 and b.needs.kept > a.needs.kept > 0 and b.needs.memory >= a.needs.memory
    assert b.text.documents > a.text.documents and b.text.sentences > a.text.sentences
    mem = [R.corpus_needs(cfg, {"source": big}, w).needs.memory for w in (1, 2, 4, 16)]
    assert mem == sorted(mem) and mem[-1] > mem[0]
    # the kss workers dominate a many-worker run: 16 of them at the measured size
    assert mem[-1] >= 16 * R.KSS_WORKER_BYTES


def test_corpus_needs_by_hand_for_plain_text(tmp_path):
    """Plain text: its bytes are the cleaned text's upper bound; disk = the steps' measured ratios; the probe's
    document length gives the documents; keep_intermediates keeps the peak."""
    src = _text_source(tmp_path / "t.txt", 300)
    size = src.stat().st_size
    cfg = CorpusConfig()
    est = R.corpus_needs(cfg, {"source": src}, 1)
    f = R.CORPUS_FILES_PER_TEXT_BYTE
    text_bytes = est.text.bytes
    assert abs(text_bytes - size) / size < 0.02  # chars from the probe's bytes per char, bytes from the constant
    assert abs(est.text.documents - 300) <= 6  # the probe read all 300: only the separators make it an estimate
    assert est.needs.disk == pytest.approx(text_bytes * (f["extract"] + f["clean"] + f["sentences"])
                                           + est.split.bytes * (f["split"] + f["parquet"]), rel=1e-6, abs=4)
    assert est.needs.kept == pytest.approx(est.split.bytes * (f["split"] + f["parquet"]), rel=1e-6, abs=2)
    keep = R.corpus_needs(CorpusConfig(keep_intermediates=True), {"source": src}, 1)
    assert keep.needs.kept == keep.needs.disk
    # one worker: kss in the main process is the peak (a few hundred documents index nothing of note)
    assert est.needs.memory == R.SENTENCE_MAIN_BYTES + R.KSS_WORKER_BYTES
    assert "dump" not in est.needs.basis and "t.txt" not in est.needs.basis and "text" in est.needs.basis


def test_compressed_sources_are_sized_from_their_container(tmp_path):
    data = ("\n\n".join(f"{i} {PARA}" for i in range(500)) + "\n").encode()
    xz = tmp_path / "a.txt.xz"
    xz.write_bytes(lzma.compress(data[:1000]) + lzma.compress(data[1000:]) + b"\0" * 4)  # two streams, padding
    assert R.xz_size(xz) == len(data)
    gz = tmp_path / "a.txt.gz"
    gz.write_bytes(gzip.compress(data))
    assert R.gzip_size(gz) == len(data)
    b = tmp_path / "a.txt.bz2"
    b.write_bytes(bz2.compress(data))
    n, how = R.decompressed_size(b)  # bz2 records no size: its compressed size x the measured ratio
    assert n == int(b.stat().st_size * R.DECOMPRESSION_RATIO["bz2"]) and "x 3.85" in how
    assert R.decompressed_size(xz)[0] == len(data) and R.decompressed_size(gz)[0] == len(data)
    (tmp_path / "broken.xz").write_bytes(b"\xfd7zXZ\x00" + b"x" * 40)
    assert R.xz_size(tmp_path / "broken.xz") is None


def test_spm_preprocess_train_needs_by_hand():
    from koroberta.spm.train import estimate_peak_bytes

    spm = SpmConfig(vocab_size=32000, input_sentence_size=1_000_000)
    assert R.vocab_rows(spm) == 32008  # 32,000 pieces + <pad> + <mask>, padded to 8
    assert R.spm_needs(spm, 5_000_000).memory == estimate_peak_bytes(1_000_000)  # the sample, not the file
    assert R.spm_needs(spm, 300_000).memory == estimate_peak_bytes(300_000)
    assert R.spm_needs(spm, 400_000).memory > R.spm_needs(spm, 300_000).memory

    # 1.94M characters = 1M tokens of 2 bytes (< 65,500 rows), 1.1M lines of 12 index bytes, 6 index headers
    text = R.Text(chars=int(1_000_000 * R.CHARS_PER_TOKEN), sentences=1_000_000, documents=100_001)
    pre = R.preprocess_needs(PreprocessConfig(), text, text, rows=32008)
    assert pre.disk == pre.kept == 2 * 1_000_000 + 12 * 1_100_000 + 34 * 4
    wide = R.preprocess_needs(PreprocessConfig(), text, text, rows=70000)
    assert wide.disk == 4 * 1_000_000 + 12 * 1_100_000 + 34 * 4  # int32 past 65,500 rows
    fairseq = R.preprocess_needs(PreprocessConfig(method="fairseq"), text, text, rows=32008)
    assert fairseq.disk == pre.disk + int(text.bytes * R.PIECE_TEXT_PER_TEXT_BYTE) and fairseq.kept == pre.kept
    bigger = R.preprocess_needs(PreprocessConfig(), text.scaled(2), text.scaled(2), rows=32008)
    assert bigger.disk > pre.disk and bigger.memory > pre.memory

    cfg = TrainConfig(keep_interval_updates=3, device="cpu")
    t = R.train_needs(cfg, rows=32008, train_lines=1_000_000, train_tokens=20_000_000)
    params = R.model_params(cfg, 32008)
    assert t.disk == t.kept == 6 * (params * 12 + (1 << 20))  # 3 kept + last + best + the one being written
    assert t.memory == int(R.TRAIN_PROCESS_BYTES + 20 * 1_000_000 + 20_000_000 / 512 * 40 + 16 * params)
    more = R.train_needs(cfg, rows=32008, train_lines=2_000_000, train_tokens=40_000_000)
    sharded = R.train_needs(cfg, rows=32008, train_lines=2_000_000, train_tokens=40_000_000, shards=2)
    assert more.memory > t.memory and sharded.memory == t.memory  # fairseq loads one shard per epoch
    two = R.train_needs(TrainConfig(ngpus=2, device="cuda", launcher="torchrun"), rows=32008, train_lines=10,
                        train_tokens=100)
    assert two.memory > 2 * R.TRAIN_PROCESS_BYTES and "on the GPU" in two.basis


def test_model_needs_by_hand(tmp_path):
    c = R.convert_needs(type("C", (), {"dtype": "fp16"})(), params=1000, checkpoint_bytes=12_000, rows=10)
    assert c.disk == 2 * 1000 + int(R.TOKENIZER_FIXED_BYTES + 10 * R.TOKENIZER_BYTES_PER_ROW)
    assert c.memory == R.TORCH_FAIRSEQ_HF_BYTES + 12_000 + 3 * 4 * 1000
    f = R.finetune_needs(type("F", (), {"save_model": True})(), params=1000, tokenizer_bytes=500)
    assert (f.memory, f.disk) == (R.TORCH_HF_BYTES + 16 * 1000, 4 * 1000 + 500)
    assert R.finetune_needs(type("F", (), {"save_model": False})(), params=1000, tokenizer_bytes=500).disk == 0
    # import-hf: the parameters from model.safetensors' header
    import json
    import struct

    hf = tmp_path / "hf"
    hf.mkdir()
    header = json.dumps({"a": {"dtype": "F32", "shape": [10, 20], "data_offsets": [0, 800]},
                         "b": {"dtype": "F32", "shape": [20], "data_offsets": [800, 880]},
                         "__metadata__": {"format": "pt"}}).encode()
    (hf / "model.safetensors").write_bytes(struct.pack("<Q", len(header)) + header + b"\0" * 880)
    (hf / "tokenizer.json").write_text("{}" + " " * 98)
    n = R.importhf_needs(hf)
    assert R.hf_params(hf) == (220, "model.safetensors")
    assert (n.disk, n.memory) == (220 * 4 + 100, R.TORCH_FAIRSEQ_HF_BYTES + 4 * 4 * 220)


def test_parameter_count_is_fairseqs():
    """A 2-layer RoBERTa as fairseq builds it: the estimate's parameter count is the model's."""
    import argparse

    pytest.importorskip("fairseq")
    from types import SimpleNamespace

    from fairseq.data import Dictionary
    from fairseq.models.roberta import RobertaModel

    d = Dictionary()
    for i in range(91):
        d.add_symbol(f"w{i}")
    d.add_symbol("<mask>")
    cfg = TrainConfig(encoder_layers=2, encoder_embed_dim=64, encoder_ffn_embed_dim=96, encoder_attention_heads=2,
                      tokens_per_sample=64, max_positions=64)
    args = argparse.Namespace(arch="roberta_base", encoder_layers=2, encoder_embed_dim=64, encoder_ffn_embed_dim=96,
                              encoder_attention_heads=2, max_positions=64, tokens_per_sample=64)
    task = SimpleNamespace(source_dictionary=d, target_dictionary=d, max_positions=lambda: 64)
    model = RobertaModel.build_model(args, task)
    assert R.model_params(cfg, len(d)) == sum(p.numel() for p in model.parameters())


def test_corpus_steps_alone_from_their_inputs_manifests(tmp_path):
    """The SLURM array's merge, kss and split tasks: their needs from the manifests of the steps before them."""
    from koroberta.artifacts import StageOutput

    cfg = CorpusConfig()
    assert R.corpus_step_needs(cfg, "clean", tmp_path) is None  # nothing extracted yet: the step says so itself
    for i, docs in enumerate((600, 400)):
        with StageOutput(tmp_path / f"extract-{i:05d}-of-00002", stage="corpus.extract", config={}, inputs={}) as st:
            st.stats.update(documents=docs, characters=docs * 1000)
    clean = R.corpus_step_needs(cfg, "clean", tmp_path)
    assert clean.memory == R.CORPUS_MAIN_BYTES + 1000 * 130  # exact dedup only for one source
    assert clean.disk == int(1_000_000 * R.UTF8_BYTES_PER_CHAR * R.CORPUS_FILES_PER_TEXT_BYTE["clean"])
    with StageOutput(tmp_path / "clean", stage="corpus.clean", config={}, inputs={}) as st:
        st.stats.update(documents=1000, characters=1_000_000)
    one, four = (R.corpus_step_needs(cfg, "sentences", tmp_path, workers=w, num_shards=2) for w in (1, 4))
    assert four.memory - one.memory == 3 * R.KSS_WORKER_BYTES and one.disk == four.disk > 0
    with StageOutput(tmp_path / "sentences", stage="corpus.sentences", config={}, inputs={}) as st:
        st.stats.update(sentences=2_000_000)
    split = R.corpus_step_needs(cfg, "split", tmp_path)
    assert split.memory == R.SPLIT_PEAK_BYTES + 40 * (2_000_000 - R.SPLIT_PEAK_SENTENCES)


# -- each stage's first line, and the warnings ---------------------------------------------------------------------
def test_corpus_cli_first_line_is_the_needs_line(tmp_path, capsys, monkeypatch):
    """The needs line comes before the first step (which is stopped here: only the line is checked)."""
    from koroberta.corpus import steps

    def stop(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(steps, "extract", stop)
    src = _text_source(tmp_path / "src.txt", 50)
    assert main(["corpus", "build", str(src), str(tmp_path / "out")]) == 130
    lines = _stderr_lines(capsys.readouterr().err)
    assert "| INFO | koroberta.corpus | corpus: needs about " in lines[0], lines
    assert " memory, " in lines[0] and " disk at peak, " in lines[0] and " kept (" in lines[0]
    assert lines[1:] == ["interrupted"], lines


def test_corpus_bad_source_stays_one_line(tmp_path, capsys):
    """A source the reader refuses at its start fails before the needs line: still one line."""
    bad = tmp_path / "bad.txt"
    bad.write_bytes("UTF-16 텍스트\n".encode("utf-16"))
    assert main(["corpus", "build", str(bad), str(tmp_path / "out")]) == 2
    lines = _stderr_lines(capsys.readouterr().err)
    assert len(lines) == 1 and lines[0].startswith("error: ") and "UTF-16" in lines[0], lines


def test_spm_and_preprocess_cli_first_lines(tmp_path, capsys, tiny_split, tiny_vocab):
    assert main(["spm", "train", str(tiny_split / "train.txt"), str(tmp_path / "spm"), "--vocab-size", "1200",
                 "--character-coverage", "0.98", "--threads", "1"]) == 0
    lines = _stderr_lines(capsys.readouterr().err)
    assert "| INFO | koroberta.spm | spm: needs about " in lines[0], lines
    assert "spm: training on" in lines[1], lines  # then the plan line it had before
    assert main(["preprocess", "run", str(tiny_split), str(tiny_vocab), str(tmp_path / "db"), "--no-progress"]) == 0
    lines = _stderr_lines(capsys.readouterr().err)
    assert "| INFO | koroberta.preprocess | preprocess: needs about " in lines[0], lines
    # a split without a manifest: counted; its estimate is within a factor of two of what was written
    written = sum(p.stat().st_size for p in (tmp_path / "db").glob("*.[bi][id][nx]"))
    est = int(lines[0].split(" memory, ")[1].split(" disk")[0].split()[0].replace(",", ""))
    unit = {"KB": 1e3, "MB": 1e6}[lines[0].split(" memory, ")[1].split(" disk")[0].split()[1]]
    assert written / 2 < est * unit < written * 2, (written, lines[0])


def test_low_free_disk_and_memory_are_warnings(tmp_path, capsys, monkeypatch, tiny_split, tiny_vocab):
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda p: usage(10 ** 12, 10 ** 12 - 1000, 1000))
    assert main(["preprocess", "run", str(tiny_split), str(tiny_vocab), str(tmp_path / "db"), "--no-progress"]) == 0
    lines = _stderr_lines(capsys.readouterr().err)
    assert "preprocess: needs about" in lines[0]
    assert "| WARNING | koroberta.preprocess | preprocess: 1.0 KB free on the filesystem of " in lines[1], lines
    assert "less than the ~" in lines[1] and (tmp_path / "db" / "_COMPLETE").is_file()  # a warning, not an error

    import koroberta.corpus.steps as steps

    monkeypatch.setattr(steps, "memory_limit", lambda: 1000)
    w = R.warnings_for("spm", R.Needs(5000, 0, 0, "x"), tmp_path)
    assert len(w) == 1 and "spm: the estimated peak of ~5.0 KB memory is more than the 1.0 KB" in w[0]
    monkeypatch.setattr(steps, "memory_limit", lambda: None)  # unknown: no warning
    assert R.warnings_for("spm", R.Needs(5000, 0, 0, "x"), tmp_path) == []


# -- complete outputs and the plan ---------------------------------------------------------------------------------
def test_output_complete_follows_identity_and_inputs(tmp_path):
    from koroberta.artifacts import StageOutput, sha256_json

    src = tmp_path / "in.txt"
    src.write_text("a\n")
    with StageOutput(tmp_path / "out", stage="spm", config={"k": 1}, inputs={"train": src}) as st:
        (st.tmp / "x").write_text("y")
    ident = sha256_json({"k": 1})
    assert R.output_complete(tmp_path / "out", "spm", ident)
    assert not R.output_complete(tmp_path / "out", "spm", sha256_json({"k": 2}))
    assert not R.output_complete(tmp_path / "out", "preprocess", ident)
    src.write_text("b\n")
    assert not R.output_complete(tmp_path / "out", "spm", ident)
    assert not R.corpus_complete(CorpusConfig(), tmp_path / "nothing")


def test_run_plan_prints_one_line_per_stage_and_writes_nothing(tmp_path, capsys):
    wd = tmp_path / "wd"
    assert main(["run", str(DEMO), "--plan", "--set", f"workdir={wd}"]) == 0
    out = capsys.readouterr().out.splitlines()
    stages = ["corpus", "spm", "preprocess", "train", "convert", "finetune"]
    assert [l.split()[1] for l in out if l.startswith("plan: ")] == [*stages, "total"], out
    for line in out[:len(stages)]:
        assert " runs: needs about " in line and " kept (" in line, line
    assert "more disk at peak" in out[len(stages)] and "free on the filesystem of" in out[len(stages)]
    assert not wd.exists()
    assert main(["run", str(DEMO), "--plan", "--until", "spm", "--set", f"workdir={wd}"]) == 0
    assert [l.split()[1] for l in capsys.readouterr().out.splitlines()] == ["corpus", "spm", "total"]
    assert not wd.exists()
