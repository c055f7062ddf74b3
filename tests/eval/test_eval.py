"""`koroberta eval` on the tiny export: all four task kinds, seeds, determinism, skip, model card, CLI, errors."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from koroberta.artifacts import read_json
from koroberta.eval.benchmark import run_eval
from koroberta.eval.config import EvalConfig

D = Path(__file__).resolve().parents[1] / "fixtures" / "eval"
REPO = Path(__file__).resolve().parents[2]
FAST = {"epochs": 1, "batch_size": 4, "lr": 1e-3, "seeds": 2, "device": "cpu", "threads": 1, "max_length": 64}
FILES = {  # task -> train, dev, test
    "nsmc": ("nsmc-train.tsv", None, "nsmc-test.tsv"),
    "klue-nli": ("klue-nli-train.json", "klue-nli-dev.json", None),
    "kornli": ("kornli-train.tsv", "kornli-dev.tsv", None),
    "klue-sts": ("klue-sts-train.json", "klue-sts-dev.json", None),
    "klue-ner": ("klue-ner-train.tsv", "klue-ner-dev.tsv", None),
}
KEYS = {"nsmc": ("accuracy", "f1"), "klue-nli": ("accuracy", "f1"), "kornli": ("accuracy", "f1"),
        "klue-sts": ("pearson", "spearman", "f1"), "klue-ner": ("entity_f1", "char_f1", "entity_f1_micro")}


@pytest.fixture(scope="module")
def model(eval_hf, tmp_path_factory) -> Path:
    """A private copy of the export: the model-card tests rewrite its README.md."""
    m = tmp_path_factory.mktemp("eval_model") / "hf"
    shutil.copytree(eval_hf, m)
    return m


def _run(task: str, model: Path, out: Path, **kw):
    tr, dv, te = FILES[task]
    cfg = EvalConfig(task=task, **{**FAST, **kw.pop("cfg", {})})
    return run_eval(cfg, model, D / tr, out, dev=D / dv if dv else None, test=D / te if te else None, **kw)


@pytest.mark.parametrize("task", list(FILES))
def test_task_two_seeds(task, model, tmp_path):
    _run(task, model, tmp_path / "o")
    m = read_json(tmp_path / "o" / "metrics.json")
    assert (tmp_path / "o" / "_COMPLETE").is_file()
    assert not (tmp_path / "o" / "model").exists() and "model" not in m  # save_model is off by default
    assert m["task"] == task and m["seeds"] == [42, 43] and [r["seed"] for r in m["runs"]] == [42, 43]
    assert m["device"] == "cpu" and m["precision"] == "fp32" and m["metrics"] == list(KEYS[task])
    splits = ["dev", "test"] if task == "nsmc" else ["dev"]
    assert sorted(m["summary"]) == sorted(splits)
    for sp in splits:
        for k in KEYS[task]:
            vals = [r[sp][k] for r in m["runs"]]
            s = m["summary"][sp][k]
            assert s["values"] == vals and all(v is not None and -1.0 <= v <= 1.0 for v in vals)
            assert s["mean"] == pytest.approx(np.mean(vals), abs=1e-6)
            assert s["std"] == pytest.approx(np.std(vals, ddof=1), abs=1e-6)
    # each seed trained its own head: the training curves differ
    assert m["runs"][0]["final_train_loss"] != m["runs"][1]["final_train_loss"]
    assert all(r["updates"] == math.ceil(m["examples"]["train"] / 4) for r in m["runs"])
    if task == "nsmc":  # no dev file: 10 % of the 20 training rows held out, the same for both seeds
        assert m["examples"] == {"train": 18, "dev": 2, "test": 8} and "held out" in m["dev_source"]
    else:
        assert m["dev_source"] == "file" and m["data"]["dev"]["file"] == FILES[task][1]
        assert len(m["data"]["dev"]["sha256"]) == 64


def test_deterministic_skip_and_model_card(model, tmp_path):
    original = (model / "README.md").read_text(encoding="utf-8")
    _run("klue-sts", model, tmp_path / "a", model_card=True)
    _run("klue-sts", model, tmp_path / "b", model_card=True)
    a, b = (tmp_path / "a" / "metrics.json").read_bytes(), (tmp_path / "b" / "metrics.json").read_bytes()
    assert a == b  # CPU, same seeds -> same metrics, byte for byte
    card = (model / "README.md").read_text(encoding="utf-8")
    assert card.startswith(original.rstrip("\n")) and card.count("### KLUE-STS") == 1  # replaced, not appended
    m = json.loads(a)
    for k in ("pearson", "spearman", "f1"):
        s = m["summary"]["dev"][k]
        assert f"| dev | {k} | {100 * s['mean']:.2f} ± {100 * s['std']:.2f} |" in card
    assert m["data"]["train"]["sha256"] in card and "seeds: 42, 43 (2 runs)" in card

    before = (tmp_path / "a" / "metrics.json").stat().st_mtime_ns
    _run("klue-sts", model, tmp_path / "a", model_card=True)  # complete for this config + inputs: skipped
    assert (tmp_path / "a" / "metrics.json").stat().st_mtime_ns == before
    assert (model / "README.md").read_text(encoding="utf-8") == card  # idempotent
    _run("klue-ner", model, tmp_path / "n", model_card=True, cfg={"seeds": 1})
    both = (model / "README.md").read_text(encoding="utf-8")
    assert both.count("### KLUE-STS") == both.count("### KLUE-NER") == 1 and "seeds: 42 (1 runs)" in both


def test_bf16_autocast_path_on_cpu(model, tmp_path):
    """The mixed-precision code path (autocast, fp32 loss) runs; on CPU only when asked for."""
    _run("klue-ner", model, tmp_path / "o", cfg={"seeds": 1, "precision": "bf16"})
    m = read_json(tmp_path / "o" / "metrics.json")
    assert m["precision"] == "bf16" and 0.0 <= m["summary"]["dev"]["char_f1"]["mean"] <= 1.0


def test_cli_tsv_task(model, tmp_path, capsys):
    from koroberta.cli import main

    rc = main(["eval", "tsv", str(model), str(tmp_path / "o"), "--train", str(D / "kornli-train.tsv"),
               "--dev", str(D / "kornli-dev.tsv"), "--text-column", "sentence2", "--label-column", "gold_label",
               "--labels", "entailment", "neutral", "contradiction", "--seeds", "1", "--epochs", "1",
               "--batch-size", "4", "--device", "cpu", "--threads", "1"])
    assert rc == 0
    printed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert printed["task"] == "tsv" and printed["seeds"] == [42] and set(printed["dev"]) == {"accuracy", "f1"}
    m = read_json(tmp_path / "o" / "metrics.json")
    assert m["labels"] == ["entailment", "neutral", "contradiction"] and m["runs"][0]["dev"]["f1_average"] == "macro"


def _cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "koroberta", *args], capture_output=True, text=True, env=env,
                          timeout=120)


def test_cli_bad_input_one_line(model, tmp_path):
    bad = tmp_path / "ner.tsv"
    text = (D / "klue-ner-train.tsv").read_text(encoding="utf-8").split("\n")
    text[9] = text[9].split("\t")[0]  # a character line loses its tag
    bad.write_text("\n".join(text), encoding="utf-8")
    r = _cli("eval", "klue-ner", str(model), "--train", str(bad), "--dev", str(D / "klue-ner-dev.tsv"),
             "--out", str(tmp_path / "o"))  # the old spelling of OUT, still accepted
    assert r.returncode == 2 and "Traceback" not in r.stderr
    (line,) = r.stderr.strip().splitlines()
    assert line.startswith(f"error: {bad}: line 10: expected `<character><TAB><tag>`") and "fix:" in line
    assert not (tmp_path / "o").exists()
