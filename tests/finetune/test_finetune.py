"""The finetune step is the eval harness: its config, the stage on the tiny export (model/ kept, stage "finetune",
an old-layout directory replaced), the `koroberta finetune` alias, eval's positional OUT, bad inputs via the CLI."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from cli_errors import main_error

from koroberta.artifacts import read_json, read_manifest, sha256_json
from koroberta.convert.config import ConvertConfig
from koroberta.convert.export import convert
from koroberta.errors import ConfigError, InputError
from koroberta.eval.config import EvalConfig
from koroberta.eval.tasks import TASK_SPECS
from koroberta.finetune import stage
from koroberta.finetune.config import FinetuneConfig

NSMC = Path(__file__).resolve().parents[1] / "fixtures" / "nsmc-tiny.tsv"
REPO = Path(__file__).resolve().parents[2]
#: small and single-threaded: the 2 shared cores of CI; fp32 on CPU, so runs are byte-reproducible
CFG = FinetuneConfig(max_train_rows=120, batch_size=16, lr=1e-3, max_length=64, device="cpu", threads=1)
FAST = ["--max-train-rows", "32", "--batch-size", "16", "--max-length", "64", "--device", "cpu", "--threads", "1"]


@pytest.fixture(scope="module")
def hf_dir(tmp_path_factory, tiny_checkpoint, tiny_vocab) -> Path:
    out = tmp_path_factory.mktemp("ft_hf") / "hf"
    convert(ConvertConfig(parity_lines=10, parity_sentences=2), tiny_checkpoint, tiny_vocab, out)
    return out


# -- the config: eval's, with the finetune step's defaults ----------------------------------------------------------
def test_config_is_eval_config_with_other_defaults():
    own = set(FinetuneConfig.__dict__.get("__annotations__", {}))
    assert issubclass(FinetuneConfig, EvalConfig) and own == {"task", "epochs", "seeds", "save_model"}
    ev, ft = EvalConfig(), FinetuneConfig()
    differ = {f.name for f in dataclasses.fields(FinetuneConfig) if getattr(ev, f.name) != getattr(ft, f.name)}
    assert differ == {"epochs", "seeds", "save_model"} and (ft.epochs, ft.seeds, ft.save_model) == (1, 1, True)
    assert FinetuneConfig.IDENTITY == EvalConfig.IDENTITY and "save_model" in FinetuneConfig.IDENTITY
    # save_model off is left out of eval's identity (completed eval runs stay complete); the step keeps a model
    assert "save_model" not in ev.identity() and ft.identity()["save_model"] is True
    assert "save_model" in EvalConfig(save_model=True).identity()


def test_config_errors_name_the_finetune_section():
    with pytest.raises(ConfigError, match=r"^finetune\.task='klue-ner' is not one of nsmc, tsv"):
        FinetuneConfig(task="klue-ner")
    with pytest.raises(ConfigError, match=r"^finetune: epochs must be >= 1"):
        FinetuneConfig(epochs=0)
    # the old step read these for nsmc too; the harness's nsmc task has NSMC's columns and labels
    with pytest.raises(ConfigError, match=r"^finetune: labels set with task nsmc.*set `task: tsv`"):
        FinetuneConfig(labels=["neg", "pos"])
    assert FinetuneConfig(task="tsv", labels=["neg", "pos"]).labels == ["neg", "pos"]


def test_shipped_configs_finetune_sections_load():
    from koroberta.pipeline import PipelineConfig

    for preset in sorted((REPO / "configs").glob("*.yaml")):
        ft = PipelineConfig.load(preset).finetune
        assert isinstance(ft, FinetuneConfig) and ft.task == "nsmc" and ft.save_model, preset


def test_reader_is_the_harness_nsmc_reader(tmp_path):
    ok = tmp_path / "q.tsv"
    ok.write_text('id\tdocument\tlabel\n1\t"재밌다"고 했지만 "별로\t0\n2\t\t1\n', encoding="utf-8")
    d = TASK_SPECS["nsmc"].read(ok, CFG)
    assert d.text == ['"재밌다"고 했지만 "별로', ""] and d.target == [0, 1]  # quotes kept, empty reviews kept
    bad = tmp_path / "l.tsv"
    bad.write_text("id\tdocument\tlabel\n1\t좋다\t1\n2\t나쁘다\t2\n", encoding="utf-8")
    with pytest.raises(InputError, match="line 3: label '2' is not one of 0, 1.*`koroberta finetune tsv MODEL_DIR"):
        TASK_SPECS["nsmc"].read(bad, CFG)


# -- the stage --------------------------------------------------------------------------------------------------------
def test_stage_replaces_old_layout_saves_model_and_reproduces(hf_dir, tmp_path):
    from koroberta.hfcompat import import_transformers

    out = tmp_path / "finetune-nsmc"
    # a finetune-nsmc/ as the step wrote it before it ran on the harness: its own (stage "finetune"), so replaced
    (out / "model").mkdir(parents=True)
    (out / "model" / "model.safetensors").write_bytes(b"old")
    (out / "metrics.json").write_text('{"accuracy": 0.5, "f1": 0.5, "eval_split": "dev"}\n')
    old = {"stage": "finetune", "config": {}, "identity": {"seed": 42}, "identity_sha256": sha256_json({"seed": 42}),
           "inputs": {}, "outputs": {}, "stats": {"accuracy": 0.5}}
    (out / "manifest.json").write_text(json.dumps(old))
    (out / "_COMPLETE").write_text("x\n")

    m = stage.run(CFG, {"model_dir": hf_dir, "train_tsv": NSMC, "test_tsv": None}, out)
    assert m["stage"] == "finetune" and read_manifest(out)["stage"] == "finetune"
    st = m["stats"]
    assert st["task"] == "nsmc" and st["seeds"] == [42] and st["examples"] == {"train": 120, "dev": 40}
    assert set(st["summary"]) == {"dev"} and 0.0 <= st["summary"]["dev"]["accuracy"]["mean"] <= 1.0
    metrics = read_json(out / "metrics.json")
    assert metrics["model"] == {"dir": "model", "seed": 42} and metrics["runs"][0]["updates"] == 8
    assert metrics["summary"] == st["summary"] and "held out" in metrics["dev_source"]
    for f in ("model/model.safetensors", "model/config.json", "model/tokenizer.json"):
        assert (out / f).is_file() and f in m["outputs"], f
    assert (out / "model" / "model.safetensors").read_bytes() != b"old"

    clf = import_transformers().AutoModelForSequenceClassification.from_pretrained(str(out / "model"))
    assert clf.config.num_labels == 2 and clf.config.id2label == {0: "0", 1: "1"}

    before = (out / "metrics.json").stat().st_mtime_ns
    assert stage.run(CFG, {"model_dir": hf_dir, "train_tsv": NSMC}, out)["outputs"] == m["outputs"]
    assert (out / "metrics.json").stat().st_mtime_ns == before  # complete: skipped
    again = stage.run(CFG, {"model_dir": hf_dir, "train_tsv": NSMC}, tmp_path / "again")
    assert again["outputs"] == m["outputs"]  # same seed on CPU: byte-identical model and metrics


def test_alias_is_the_stage_and_eval_with_the_same_settings(hf_dir, tmp_path, capsys):
    """`koroberta finetune nsmc` writes what the pipeline step writes for the same config (the step finds it
    complete), and what `koroberta eval nsmc` writes with those settings (given with the old `--out` spelling)."""
    from koroberta.cli import main

    test = tmp_path / "test.tsv"
    test.write_text("".join(NSMC.read_text(encoding="utf-8").splitlines(keepends=True)[:31]), encoding="utf-8")
    ft = tmp_path / "ft"
    assert main(["finetune", "nsmc", str(hf_dir), str(NSMC), str(ft), "--test-tsv", str(test), *FAST]) == 0
    printed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert printed["task"] == "nsmc" and printed["seeds"] == [42] and set(printed) >= {"dev", "test"}
    m = read_manifest(ft)
    assert m["stage"] == "finetune" and m["stats"]["examples"] == {"train": 32, "dev": 40, "test": 30}

    cfg = FinetuneConfig(max_train_rows=32, batch_size=16, max_length=64, device="cpu", threads=1)
    before = (ft / "metrics.json").stat().st_mtime_ns
    assert stage.run(cfg, {"model_dir": hf_dir, "train_tsv": NSMC, "test_tsv": test}, ft)["outputs"] == m["outputs"]
    assert (ft / "metrics.json").stat().st_mtime_ns == before

    ev = tmp_path / "ev"
    assert main(["eval", "nsmc", str(hf_dir), "--train", str(NSMC), "--test", str(test), "--out", str(ev), *FAST,
                 "--epochs", "1", "--seeds", "1", "--save-model"]) == 0
    assert read_manifest(ev)["stage"] == "eval"
    for f in ("metrics.json", "model/model.safetensors"):
        assert (ev / f).read_bytes() == (ft / f).read_bytes(), f


# -- eval's OUT: positional, --out still accepted ---------------------------------------------------------------------
def test_eval_out_positional_or_old_option(tmp_path, capsys):
    """Both spellings are parsed to the same run; two different directories, or none, is one line. (The positional
    form runs in tests/eval/test_eval.py::test_cli_tsv_task.)"""
    from koroberta.cli import build_parser

    parser = build_parser()
    pos = parser.parse_args(["eval", "nsmc", "M", "O", "--train", "t"])
    opt = parser.parse_args(["eval", "nsmc", "M", "--train", "t", "--out", "O"])
    assert (pos.out, pos.out_option, opt.out, opt.out_option) == ("O", None, None, "O")
    with pytest.raises(SystemExit):
        parser.parse_args(["eval", "nsmc", "--help"])
    assert "--out" not in capsys.readouterr().out  # hidden: one documented spelling
    m, t = tmp_path / "hf", tmp_path / "t.tsv"
    main_error(capsys, ["eval", "nsmc", m, tmp_path / "a", "--train", t, "--out", tmp_path / "b"],
               f"error: two output directories: OUT {tmp_path / 'a'} and --out {tmp_path / 'b'}", "pass OUT only")
    main_error(capsys, ["eval", "nsmc", m, "--train", t], "error: `koroberta eval nsmc` needs an output directory",
               "`koroberta eval nsmc MODEL_DIR OUT --train FILE`")
    # the same directory both ways is no conflict: the run goes on to the (missing) model
    main_error(capsys, ["eval", "nsmc", m, tmp_path / "a", "--train", t, "--out", f"{tmp_path / 'a'}/"],
               f"error: {m}: model directory not found")


# -- bad inputs through the alias -----------------------------------------------------------------------------------
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
            _one_line_error(r, tsv, "file is empty", "NSMC TSV: header `id<TAB>document<TAB>label`")
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".out.tmp-*"))


def test_finetuning_learns_a_separable_task(hf_dir, tmp_path):
    """Fine-tuning must learn, not only produce a number in [0, 1]: reviews whose label is decided by one word
    ("최고" vs "최악"), the rest of each review random kowiki words; 60 % of the rows are positive, so always
    answering the majority class scores 0.60 on dev. The tiny export (2 layers, 30 pretraining updates) must beat
    that by 25 points."""
    import random

    words = [w for line in (REPO / "tests" / "fixtures" / "kowiki-docs.txt").read_text(encoding="utf-8").split("\n")
             [:200] for w in line.split()][:3000]
    rng = random.Random(0)
    rows = ["id\tdocument\tlabel"]
    for i in range(400):
        label = 1 if rng.random() < 0.6 else 0
        filler = rng.sample(words, 6)
        filler.insert(rng.randrange(7), "최고" if label else "최악")
        rows.append(f"{i}\t{' '.join(filler)}\t{label}")
    tsv = tmp_path / "separable.tsv"
    tsv.write_text("\n".join(rows) + "\n", encoding="utf-8")
    cfg = dataclasses.replace(CFG, max_train_rows=400, epochs=4, dev_fraction=0.25)
    st = stage.run(cfg, {"model_dir": hf_dir, "train_tsv": tsv}, tmp_path / "out")["stats"]
    acc = st["summary"]["dev"]["accuracy"]["mean"]
    n_dev = st["examples"]["dev"]
    assert n_dev >= 80, st["examples"]
    positive = sum(r.endswith("\t1") for r in rows[1:]) / 400
    # the dev rows are a sample of these; the bar allows their majority share to be up to 5 points above it
    assert acc >= max(positive, 1 - positive) + 0.05 + 0.25, (positive, st["summary"])
