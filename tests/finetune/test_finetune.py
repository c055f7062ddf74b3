"""finetune stage on the tiny export: NSMC TSV, split, metrics, saved model, bad inputs through the CLI."""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from koroberta.convert.config import ConvertConfig
from koroberta.convert.export import convert
from koroberta.errors import InputError, KorobertaError
from koroberta.finetune import FinetuneConfig, finetune, metrics
from koroberta.finetune.data import read_tsv

NSMC = Path(__file__).resolve().parents[1] / "fixtures" / "nsmc-tiny.tsv"
CFG = FinetuneConfig(max_train_rows=120, batch_size=16, epochs=1, lr=1e-3)


@pytest.fixture(scope="module")
def hf_dir(tmp_path_factory, tiny_checkpoint, tiny_vocab) -> Path:
    out = tmp_path_factory.mktemp("ft_hf") / "hf"
    convert(ConvertConfig(parity_lines=10, parity_sentences=2), tiny_checkpoint, tiny_vocab, out)
    return out


def test_metrics():
    m = metrics([1, 1, 0, 0], [1, 0, 0, 1], 2)
    assert m["accuracy"] == 0.5 and m["f1"] == 0.5
    assert metrics([0, 1, 2], [0, 1, 1], 3)["f1"] == pytest.approx((1 + 2 / 3 + 0) / 3, abs=1e-6)


def test_finetune_nsmc_dev_split_and_reproducible(hf_dir, tmp_path):
    from koroberta.hfcompat import import_transformers

    m = finetune(CFG, hf_dir, NSMC, tmp_path / "ft")
    st = m["stats"]
    assert (st["eval_split"], st["n_train"], st["n_dev"], st["n_test"]) == ("dev", 120, 40, 0)
    assert 0.0 <= st["accuracy"] <= 1.0 and 0.0 <= st["f1"] <= 1.0 and st["updates"] == 8
    for f in ("metrics.json", "model/model.safetensors", "model/config.json", "model/tokenizer.json"):
        assert (tmp_path / "ft" / f).is_file(), f
    tf = import_transformers()
    clf = tf.AutoModelForSequenceClassification.from_pretrained(str(tmp_path / "ft" / "model"))
    assert clf.config.num_labels == 2 and clf.config.id2label == {0: "0", 1: "1"}
    assert not list((tmp_path / "ft").rglob("*.arrow"))  # datasets cache was scratch
    m2 = finetune(CFG, hf_dir, NSMC, tmp_path / "ft2")
    assert m2["outputs"] == m["outputs"]  # same seed -> byte-identical model and metrics


def test_test_tsv_and_cli(hf_dir, tmp_path):
    from koroberta.finetune.cli import register

    test = tmp_path / "test.tsv"
    test.write_text("".join(NSMC.read_text(encoding="utf-8").splitlines(keepends=True)[:31]), encoding="utf-8")
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["finetune", "nsmc", str(hf_dir), str(NSMC), str(tmp_path / "o"), "--test-tsv", str(test),
                              "--max-train-rows", "32", "--batch-size", "16"])
    assert args.func(args) == 0
    from koroberta.artifacts import read_manifest

    st = read_manifest(tmp_path / "o")["stats"]
    assert (st["eval_split"], st["n_test"], st["n_eval"], st["n_train"]) == ("test", 30, 30, 32)


def test_quotes_kept_and_bad_tsvs(tmp_path):
    cache = tmp_path / "cache"
    ok = tmp_path / "q.tsv"
    ok.write_text('id\tdocument\tlabel\n1\t"재밌다"고 했지만 "별로\t0\n2\t\t1\n', encoding="utf-8")
    rows = read_tsv(ok, CFG, cache)
    assert rows.texts == ['"재밌다"고 했지만 "별로', ""] and rows.labels == [0, 1]
    bad_col = tmp_path / "c.tsv"
    bad_col.write_text("id\ttext\tlabel\n1\t좋다\t1\n", encoding="utf-8")
    with pytest.raises(InputError, match="line 1: .*lacks column\\(s\\) document"):
        read_tsv(bad_col, CFG, cache)
    bad_lab = tmp_path / "l.tsv"
    bad_lab.write_text("id\tdocument\tlabel\n1\t좋다\t1\n2\t나쁘다\t2\n", encoding="utf-8")
    with pytest.raises(InputError, match="line 3: label '2' is not one of 0, 1"):
        read_tsv(bad_lab, CFG, cache)
    with pytest.raises(KorobertaError, match="not found"):
        read_tsv(tmp_path / "none.tsv", CFG, cache)


REPO = Path(__file__).resolve().parents[2]


def _cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "koroberta", "finetune", "nsmc", *args], capture_output=True,
                          text=True, env=env, timeout=120)


def _one_line_error(r: subprocess.CompletedProcess, path: Path, *words: str) -> str:
    assert r.returncode != 0 and "Traceback" not in r.stderr, r.stderr
    (line,) = r.stderr.strip().splitlines()
    assert line.startswith(f"error: {path}: ") and "— fix: " in line, line
    for w in words:
        assert w in line, line
    return line


@pytest.mark.parametrize("case", ["no_weights", "header_only", "empty"])
def test_cli_bad_inputs(case, hf_dir, tmp_path):
    """Each bad input: non-zero exit, one `error:` line naming the file and the fix, and no output directory."""
    model, tsv = hf_dir, NSMC
    if case == "no_weights":  # e.g. an interrupted copy: config.json and tokenizer, no model.safetensors
        model = tmp_path / "hf"
        shutil.copytree(hf_dir, model, ignore=shutil.ignore_patterns("model.safetensors"))
        r = _cli(str(model), str(tsv), str(tmp_path / "out"))
        _one_line_error(r, model, "no model weights", "rerun `koroberta convert`")
    else:
        tsv = tmp_path / "t.tsv"
        tsv.write_text("id\tdocument\tlabel\n" if case == "header_only" else "", encoding="utf-8")
        r = _cli(str(model), str(tsv), str(tmp_path / "out"))
        if case == "header_only":
            _one_line_error(r, tsv, "has a header line but no data rows", "id<TAB>document<TAB>label")
        else:
            _one_line_error(r, tsv, "file is empty", "NSMC layout")
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".out.tmp-*"))
