"""One end-to-end run of every stage on the tiny fixture (kowiki-tiny.xml.bz2 + nsmc-tiny.tsv), ~2-3 min on 2 cores.

What it pins down, each checked with tools *other* than the stage code that produced the artifact:

* documents stay separated in the binarized data (fairseq's own reader sees one eos-only item per blank line);
* fairseq ids == spm ids + 1 == HF ``AutoTokenizer`` ids, line by line on the valid split;
* the HF export's logits equal the fairseq model's (loaded through fairseq's hub interface, the way a user would);
* ``pipeline("fill-mask")`` and fine-tuning work on the export;
* a run killed with SIGKILL mid-way and rerun yields byte-identical corpus / spm / data-bin files, and rerunning a
  complete run touches nothing.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from koroberta.artifacts import read_manifest


pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "fixtures"

CONFIG = {
    "name": "e2e-tiny",
    "source": str(FIXTURES / "kowiki-tiny.xml.bz2"),
    "workers": 2,
    "nsmc_train": str(FIXTURES / "nsmc-tiny.tsv"),
    "fill_mask": ["대한민국의 수도는 <mask>이다."],
    "corpus": {"valid_fraction": 0.1, "test_fraction": 0.1},
    "spm": {"vocab_size": 2000, "character_coverage": 0.995, "hard_vocab_limit": False, "threads": 1},
    "train": {"encoder_layers": 2, "encoder_embed_dim": 64, "encoder_ffn_embed_dim": 128,
              "encoder_attention_heads": 2, "tokens_per_sample": 64, "max_positions": 64, "batch_size": 8,
              "update_freq": 1, "lr": 0.001, "warmup_updates": 5, "max_update": 40, "log_interval": 10,
              "save_interval_updates": 20, "validate_interval_updates": 20, "keep_interval_updates": 1,
              "device": "cpu", "cpu_threads": 1, "num_workers": 0, "tensorboard": False},
    "convert": {"parity_lines": 500, "parity_sentences": 8},
    "finetune": {"max_train_rows": 200, "max_eval_rows": 100, "max_length": 32, "batch_size": 16, "lr": 0.0001,
                 "device": "cpu", "threads": 1},
}

#: files that must come out byte-identical however often the run is interrupted
DETERMINISTIC = ["corpus/split/train.txt", "corpus/split/valid.txt", "corpus/split/test.txt",
                 "spm/spm.model", "spm/dict.txt"] + [f"data-bin/{s}.{e}" for s in ("train", "valid", "test")
                                                     for e in ("bin", "idx")] + ["data-bin/dict.txt"]


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    from koroberta.pipeline import PipelineConfig, run_pipeline

    wd = tmp_path_factory.mktemp("e2e")
    cfg = PipelineConfig.from_dict({**CONFIG, "workdir": str(wd / "run")})
    summary = run_pipeline(cfg)
    return cfg, summary, wd / "run"


def _split_docs(path: Path) -> list[list[str]]:
    text = path.read_text(encoding="utf-8")
    return [d.split("\n") for d in text.rstrip("\n").split("\n\n")] if text.strip() else []


def test_summary_reports_every_stage(run):
    from koroberta.pipeline import format_summary

    _, summary, _ = run
    assert set(summary["stages"]) == {"corpus", "spm", "preprocess", "train", "convert", "finetune"}
    tr = summary["stages"]["train"]
    assert tr["updates"] == 40
    assert tr["final_train_loss"] < tr["first_train_loss"] - 0.5, tr  # a tiny model on real text still learns
    text = format_summary(summary)
    for needle in ("documents", "updates", "max |logit diff|", "fill-mask", "NSMC accuracy", "learned?"):
        assert needle in text
    lc = summary["learning_check"]
    assert lc["lines"] > 0 and lc["masked"] > 100 and lc["unigram_top_token"]


def test_documents_stay_separated_in_data_bin(run):
    from fairseq.data import data_utils

    _, summary, wd = run
    corpus_docs = summary["stages"]["corpus"]["documents"]
    for split in ("train", "valid", "test"):
        docs = _split_docs(wd / "corpus" / "split" / f"{split}.txt")
        assert len(docs) == corpus_docs[split] and len(docs) >= 2
        ds = data_utils.load_indexed_dataset(str(wd / "data-bin" / split), None, "mmap")
        sizes = np.asarray(ds.sizes)
        # one item per line; a blank line (document boundary) is an item holding only </s>
        assert len(sizes) == sum(len(d) for d in docs) + len(docs) - 1
        boundaries = np.flatnonzero(sizes == 1)
        expected, at = [], 0
        for d in docs[:-1]:
            at += len(d)
            expected.append(at)
            at += 1
        assert boundaries.tolist() == expected


def test_fairseq_ids_equal_spm_plus_one_equal_hf(run):
    import sentencepiece as spm
    from fairseq.data import Dictionary, data_utils

    from koroberta.hfcompat import import_transformers

    _, _, wd = run
    sp = spm.SentencePieceProcessor(model_file=str(wd / "spm" / "spm.model"))
    d = Dictionary.load(str(wd / "data-bin" / "dict.txt"))
    tok = import_transformers().AutoTokenizer.from_pretrained(str(wd / "hf"))
    lines = (wd / "corpus" / "split" / "valid.txt").read_text(encoding="utf-8").split("\n")[:-1]
    ds = data_utils.load_indexed_dataset(str(wd / "data-bin" / "valid"), None, "mmap")
    assert len(ds) == len(lines)
    checked = 0
    for i, line in enumerate(lines):
        binned = ds[i].tolist()
        if not line:
            assert binned == [d.eos()]
            continue
        spm_ids = sp.encode(line)
        assert binned == [d.unk() if x == sp.unk_id() else x + 1 for x in spm_ids] + [d.eos()]
        assert d.encode_line(" ".join(sp.encode(line, out_type=str)), add_if_not_exist=False).tolist() == binned
        assert tok(line)["input_ids"] == [tok.bos_token_id] + binned[:-1] + [tok.eos_token_id]
        checked += 1
    assert checked > 50
    assert sp.unk_id() == 0 and d.unk() == tok.unk_token_id == 3  # <unk> is the one piece not at spm id + 1
    assert d.add_symbol("<mask>") == tok.mask_token_id == len(tok) - 1  # what fairseq's masked_lm task does on load
    assert len(d) % 8 == 0  # padded for tensor cores, <mask> included


def test_hf_logits_equal_fairseq_hub_model(run):
    import torch
    from fairseq.models.roberta import RobertaModel

    from koroberta.hfcompat import import_transformers

    _, summary, wd = run
    par = summary["stages"]["convert"]["parity"]
    assert par["max_abs_logit_diff"] <= 1e-5 and par["token_id_mismatches"] == 0
    tf = import_transformers()
    fs = RobertaModel.from_pretrained(str(wd / "checkpoints"), checkpoint_file="checkpoint_last.pt",
                                      data_name_or_path=str(wd / "data-bin"), bpe="sentencepiece",
                                      sentencepiece_model=str(wd / "spm" / "spm.model")).eval()
    hf = tf.AutoModelForMaskedLM.from_pretrained(str(wd / "hf")).eval()
    tok = tf.AutoTokenizer.from_pretrained(str(wd / "hf"))
    for s in ["대한민국은 동아시아의 한반도에 있는 나라이다.", "수학은 수, 양, 구조, 공간을 다루는 학문이다."]:
        ids = fs.encode(s)
        assert ids.tolist() == tok(s)["input_ids"]
        with torch.no_grad():
            a = fs.model(ids.unsqueeze(0))[0]
            b = hf(ids.unsqueeze(0)).logits
        assert a.shape == b.shape
        assert (a - b).abs().max().item() <= 1e-4


def test_fill_mask_and_finetune(run):
    _, summary, wd = run
    (fm,) = summary["fill_mask"]
    assert len(fm["predictions"]) == 5 and all(0 <= p["score"] <= 1 for p in fm["predictions"])
    ft = summary["stages"]["finetune"]  # the eval harness's NSMC task: per-split mean/std over the seeds
    assert 0.0 <= ft["summary"]["dev"]["accuracy"]["mean"] <= 1.0
    assert ft["examples"]["train"] > 0 and ft["examples"]["dev"] > 0
    assert (wd / "finetune-nsmc" / "model" / "model.safetensors").is_file()
    assert read_manifest(wd / "finetune-nsmc")["stage"] == "finetune"


def test_rerun_of_complete_run_touches_nothing(run, monkeypatch):
    import koroberta.eval.mlm
    from koroberta.pipeline import run_pipeline

    cfg, first, wd = run

    def not_again(*a, **k):
        raise AssertionError("the learning check was recomputed for an unchanged export")

    monkeypatch.setattr(koroberta.eval.mlm, "masked_lm_check", not_again)
    watched = [wd / "hf" / "model.safetensors", wd / "checkpoints" / "checkpoint_last.pt", wd / "spm" / "spm.model",
               wd / "data-bin" / "train.bin", wd / "finetune-nsmc" / "metrics.json"]
    before = [p.stat().st_mtime_ns for p in watched]
    t = time.perf_counter()
    again = run_pipeline(cfg)
    assert again["learning_check"] == first["learning_check"]  # kept in learning_check.json, not recomputed
    assert [p.stat().st_mtime_ns for p in watched] == before
    assert time.perf_counter() - t < 60


def test_killed_then_rerun_is_byte_identical(run, tmp_path):
    """SIGKILL the CLI while corpus, then spm, then preprocess is running; the final rerun must match ``run``."""
    _, _, ref = run
    wd = tmp_path / "killed"
    cfg_path = tmp_path / "cfg.yaml"
    cfg_path.write_text(yaml.safe_dump({**CONFIG, "workdir": str(wd)}, allow_unicode=True), encoding="utf-8")
    cmd = [sys.executable, "-m", "koroberta", "run", str(cfg_path), "--until", "preprocess"]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    kills = 0
    # stages write into hidden .NAME.tmp-PID siblings and rename when complete: kill while one of those exists
    for trigger in ("corpus", ".spm.tmp-*", ".data-bin.tmp-*"):
        p = subprocess.Popen(cmd, env=env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             start_new_session=True)
        deadline = time.time() + 120
        while not any(wd.glob(trigger)) and p.poll() is None and time.time() < deadline:
            time.sleep(0.005)
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
            kills += 1
        p.wait()
    assert kills >= 2
    r = subprocess.run(cmd, env=env, cwd=REPO, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    for rel in DETERMINISTIC:
        assert _sha(wd / rel) == _sha(ref / rel), rel
    assert not list(wd.glob(".*.tmp-*")), "stale temporary directories left behind"


def _mtimes(wd: Path) -> dict[str, int]:
    # the stage outputs; summary.json and logs/<stage>.log are rewritten/appended by every run by design
    return {str(p.relative_to(wd)): p.stat().st_mtime_ns for p in sorted(wd.rglob("*"))
            if p.is_file() and p.name != "summary.json" and p.relative_to(wd).parts[0] != "logs"}


def test_the_real_journey_cluster_train_then_run(run, tmp_path):
    """The path users walk (issue: "the real journey"):

    1. a finished run directory copied elsewhere, its inputs moved, and every run-time knob changed
       (workers, chunk sizes, launcher, GPU split of the same effective batch, intervals): nothing reruns;
    2. a preprocess change that cannot alter the .bin/.idx bytes (keep_encoded) reruns preprocess only;
    3. training by the torchrun launcher script (2 gloo processes, the batch split over them), then
       `koroberta run` converts and fine-tunes without re-entering training;
    4. an identity change of train with checkpoints present: one-line error, exit 2, nothing moved.
    """
    import shutil

    from koroberta.pipeline import PipelineConfig, run_pipeline

    _, _, ref = run
    wd = tmp_path / "copied-run"
    shutil.copytree(ref, wd, symlinks=True)
    inputs = tmp_path / "moved-inputs"
    inputs.mkdir()
    shutil.copy(CONFIG["source"], inputs / "dump.xml.bz2")
    shutil.copy(CONFIG["nsmc_train"], inputs / "nsmc.tsv")
    runtime = {**CONFIG, "workdir": str(wd), "source": str(inputs / "dump.xml.bz2"),
               "nsmc_train": str(inputs / "nsmc.tsv"), "workers": 1,
               "preprocess": {"chunk_lines": 7, "max_line_tokens": 50},
               "train": {**CONFIG["train"], "launcher": "torchrun", "ngpus": 2, "batch_size": 4, "log_interval": 3,
                         "save_interval_updates": 7, "tensorboard": True, "master_port": 29555}}
    before = _mtimes(wd)
    run_pipeline(PipelineConfig.from_dict(runtime))
    assert _mtimes(wd) == before

    run_pipeline(PipelineConfig.from_dict({**runtime, "preprocess": {"keep_encoded": True}}))
    after = _mtimes(wd)
    assert (wd / "data-bin" / "train.spm").is_file()  # preprocess reran ...
    for rel in ("checkpoints/checkpoint_last.pt", "checkpoints/train.log", "hf/model.safetensors",
                "finetune-nsmc/metrics.json"):
        assert after[rel] == before[rel], rel  # ... and nothing downstream of the unchanged .bin/.idx did
    for rel in DETERMINISTIC:
        assert _sha(wd / rel) == _sha(ref / rel), rel

    # 3. train on "the cluster" with the launcher script, then the README's next step on a CPU node
    for d in ("checkpoints", "hf", "finetune-nsmc"):
        shutil.rmtree(wd / d)
    cfg_path = tmp_path / "journey.yaml"
    cfg_path.write_text(yaml.safe_dump({**CONFIG, "workdir": str(wd), "source": str(inputs / "dump.xml.bz2"),
                                        "nsmc_train": str(inputs / "nsmc.tsv")}, allow_unicode=True),
                        encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(REPO), "NGPU": "2", "KOROBERTA": str(Path(sys.executable).parent /
                                                                                 "koroberta")}
    r = subprocess.run(["bash", str(REPO / "scripts/pretrain_torchrun.sh"), str(cfg_path), str(wd / "data-bin"),
                        str(wd / "checkpoints"), "--device", "cpu", "--batch-size", "4"], env=env, cwd=REPO,
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "training on 2 devices" in (wd / "checkpoints" / "train.log").read_text()
    r = subprocess.run([sys.executable, "-m", "koroberta", "run", str(cfg_path)], env=env, cwd=REPO,
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-3000:]
    assert (wd / "checkpoints" / "train.log").read_text().count("# koroberta train:") == 1  # not re-entered
    assert (wd / "hf" / "model.safetensors").is_file() and (wd / "finetune-nsmc" / "metrics.json").is_file()

    # 4. an identity change with checkpoints present
    cfg_path.write_text(yaml.safe_dump({**CONFIG, "workdir": str(wd), "source": str(inputs / "dump.xml.bz2"),
                                        "nsmc_train": str(inputs / "nsmc.tsv"),
                                        "train": {**CONFIG["train"], "lr": 0.002}}, allow_unicode=True),
                        encoding="utf-8")
    before = _mtimes(wd)
    r = subprocess.run([sys.executable, "-m", "koroberta", "run", str(cfg_path)], env=env, cwd=REPO,
                       capture_output=True, text=True)
    err = r.stderr.strip().splitlines()
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert err[-1].startswith("error: ") and "lr 0.001 -> 0.002" in err[-1] and "--restart" in err[-1]
    assert _mtimes(wd) == before


def _tree(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): _sha(p) for p in sorted(root.rglob("*")) if p.is_file()}


def test_no_stage_replaces_another_stages_output(run, tmp_path, capsys):
    """Every stage's command, pointed at every *other* stage's finished output directory (and at the run directory
    itself), with --overwrite where the command has it: exit 2, one line naming the directory and what is there,
    and the run's files byte for byte as they were (issue: nothing lost)."""
    from koroberta.cli import main

    _, _, wd = run
    cfg_yaml = tmp_path / "train.yaml"
    cfg_yaml.write_text(yaml.safe_dump({"train": CONFIG["train"]}), encoding="utf-8")
    split, nsmc = wd / "corpus" / "split", str(FIXTURES / "nsmc-tiny.tsv")
    writers = {  # stage -> its command with OUT as the output directory
        "corpus": ["corpus", "build", CONFIG["source"], "OUT", "--overwrite"],
        "corpus.extract": ["corpus", "extract", CONFIG["source"], "OUT", "--overwrite"],
        "spm": ["spm", "train", "--train-text", str(split / "train.txt"), "--out", "OUT", "--overwrite"],
        "preprocess": ["preprocess", "run", str(split), str(wd / "spm"), "OUT", "--overwrite"],
        "train": ["train", str(cfg_yaml), str(wd / "data-bin"), "OUT"],
        "convert": ["convert", str(wd / "checkpoints" / "checkpoint_last.pt"), "OUT", "--vocab-dir", str(wd / "spm"),
                    "--parity-text", str(split / "valid.txt"), "--overwrite"],
        "finetune": ["finetune", "nsmc", str(wd / "hf"), nsmc, "OUT", "--overwrite"],
        "eval": ["eval", "nsmc", str(wd / "hf"), "--train", nsmc, "--out", "OUT", "--overwrite"],
    }
    targets = {"corpus": wd / "corpus", "corpus.extract": wd / "corpus" / "extract", "corpus.split": split,
               "spm": wd / "spm", "preprocess": wd / "data-bin", "train": wd / "checkpoints", "convert": wd / "hf",
               "finetune": wd / "finetune-nsmc", "run directory": wd}
    before = _tree(wd)
    table = {}
    for writer, argv in writers.items():
        for owner, target in targets.items():
            if owner == writer or (writer, owner) == ("corpus.extract", "corpus"):
                continue  # a stage replaces its own output (another identity, --force): tested elsewhere; a corpus
                # step's OUT is the corpus directory it writes its step directory into
            capsys.readouterr()
            rc = main([str(target) if a == "OUT" else a for a in argv])
            err = capsys.readouterr().err.strip().splitlines()
            table[(writer, owner)] = rc
            assert rc == 2 and len(err) == 1 and "Traceback" not in err[0], (writer, owner, rc, err)
            assert err[0].startswith(f"error: {target}") and "fix:" in err[0], (writer, owner, err)
            assert ("input" in err[0] or "inside" in err[0] or "holds the output" in err[0]), (writer, owner, err)
    assert len(table) == len(writers) * len(targets) - len(set(writers) & set(targets)) - 1
    assert _tree(wd) == before, "a refused command changed the run's files"
    assert not [p for p in wd.rglob(".*") if p.name.endswith(".lock") or ".tmp-" in p.name]
