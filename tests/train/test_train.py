"""Real fairseq-train runs on CPU: completion marker + skip, config change, kill -9 + resume, 2-process gloo DDP,
CLI dry-run / errors / report."""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time

import pytest
import yaml

from koroberta.artifacts import StageOutput, read_manifest
from koroberta.databin import data_fingerprint
from koroberta.errors import ConfigError
from koroberta.train.launch import is_trained, train
from koroberta.train.cli import main as cli_main
from koroberta.train.config import TrainConfig
from koroberta.train.logs import parse_log

from train_tiny import TINY


def expected_lr(cfg: TrainConfig, u: int) -> float:
    """fairseq polynomial_decay (power 1) after update u."""
    if u <= cfg.warmup_updates:
        return cfg.lr * u / cfg.warmup_updates
    if u >= cfg.max_update:
        return cfg.end_learning_rate
    frac = 1 - (u - cfg.warmup_updates) / (cfg.max_update - cfg.warmup_updates)
    return (cfg.lr - cfg.end_learning_rate) * frac + cfg.end_learning_rate


def check_lr_schedule(cfg, tlog):
    xs, lrs = tlog.series("inner", "lr")
    assert xs
    for u, lr in zip(xs, lrs):
        assert lr == pytest.approx(expected_lr(cfg, u), rel=2e-3, abs=1e-7), u


def test_train_marks_complete_and_skips(trained, tiny_databin):
    cfg, save, ckpt, out = trained
    assert ckpt == save / "checkpoint_last.pt" and ckpt.is_file()
    m = read_manifest(save)
    st = m["stats"]
    assert st["updates"] == 30 and st["final_train_loss"] < st["first_train_loss"] - 0.3
    assert st["final_valid_loss"] is not None and st["final_valid_loss"] < 11.0
    assert st["tokens_per_update"] == 8 * 64
    assert is_trained(save, cfg, data_fingerprint(tiny_databin))
    check_lr_schedule(cfg, parse_log(save))
    # keep-last-N: only the last 2 interval checkpoints survive
    assert sorted(p.name for p in save.glob("checkpoint_*_*.pt")) == ["checkpoint_1_20.pt", "checkpoint_1_30.pt"]
    assert any((save / "tensorboard").rglob("events.out.tfevents.*"))
    assert "effective batch: 8 sequences x 64 tokens = 512 tokens per update" in out and "command: " in out
    # the terminal gets fairseq's progress records, not its model repr / config dump (those are in train.log)
    assert re.search(r"^train update +30/30 +loss [\d.]+ bits +lr ", out, re.M) and "RobertaModel(" not in out
    assert "RobertaModel(" in (save / "train.log").read_text()

    log_size = (save / "train.log").stat().st_size
    t0 = time.perf_counter()
    assert train(cfg, tiny_databin, save) == ckpt  # complete: skipped, fairseq not started
    assert time.perf_counter() - t0 < 5 and (save / "train.log").stat().st_size == log_size


def test_raising_max_update_needs_extend_then_continues(trained, tiny_databin, tmp_path):
    cfg, save0, _, _ = trained
    save = tmp_path / "ckpt"
    shutil.copytree(save0, save)
    longer = cfg.replace(max_update=40)
    assert not is_trained(save, longer, data_fingerprint(tiny_databin))
    with pytest.raises(ConfigError, match=r"max_update 30 -> 40.*--extend"):
        train(longer, tiny_databin, save)  # never silently: the LR schedule of a finished run would change
    assert is_trained(save, cfg, data_fingerprint(tiny_databin))  # the refusal left the finished run as it was
    train(longer, tiny_databin, save, extend=True)
    text = (save / "train.log").read_text()
    assert re.search(r"[Ll]oaded checkpoint .*checkpoint_last\.pt \(epoch \d+ @ 30 updates\)", text)
    m2 = read_manifest(save)
    assert m2["stats"]["updates"] == 40 and m2["config"]["max_update"] == 40
    assert m2["stats"]["first_train_loss"] == read_manifest(save0)["stats"]["first_train_loss"]
    assert not is_trained(save, cfg, data_fingerprint(tiny_databin))
    assert is_trained(save, longer, data_fingerprint(tiny_databin))


def test_report_cli(trained, capsys):
    _, save, _, _ = trained
    assert cli_main(["report", str(save), "--gpu", "H100", "--out", str(save.parent / "rep")]) == 0
    out = capsys.readouterr().out
    assert "MFU: " in out and "of 989 TFLOP/s" in out
    r = json.loads(out.strip().splitlines()[-1])
    assert r["updates"] == 30 and 0 < r["mfu"] < 1e-3  # a CPU's tokens/s against an H100 peak
    assert sorted(p.name for p in (save.parent / "rep").glob("*.png")) == ["gnorm.png", "loss.png", "lr.png",
                                                                           "ppl.png", "wps.png"]
    assert cli_main(["report", str(save)]) == 0
    assert "MFU: n/a" in capsys.readouterr().out  # trained on CPU: no peak to compare with
    other = save.parent / "vocab"  # another stage's output: the PNGs never go there
    with StageOutput(other, stage="spm", config={}, inputs={}) as st:
        (st.tmp / "spm.model").write_bytes(b"x")
    assert cli_main(["report", str(save), "--out", str(other / "plots")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "the output of the spm stage" in err[0] and not (other / "plots").exists()


def _start(args, log):
    return subprocess.Popen([sys.executable, "-m", "koroberta.train.cli", *args], stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)


def test_kill_9_then_rerun_resumes(tiny_databin, tmp_path):
    cfg_yaml = tmp_path / "train.yaml"
    cfg_yaml.write_text(yaml.safe_dump({"train": {**TINY, "max_update": 40}}))
    save = tmp_path / "ckpt"
    args = [str(cfg_yaml), str(tiny_databin), str(save)]
    with open(tmp_path / "run1.out", "w") as out:
        proc = _start(args, out)
        deadline = time.time() + 120
        while time.time() < deadline and proc.poll() is None:
            if (save / "checkpoint_1_10.pt").is_file() and parse_log(save).updates >= 15:
                break
            time.sleep(0.1)
        assert proc.poll() is None, "training finished before it could be killed"
        os.killpg(proc.pid, signal.SIGKILL)  # koroberta + fairseq-train, like a node dying
        proc.wait()
    killed_at = parse_log(save).updates
    assert 15 <= killed_at < 40 and (save / "checkpoint_last.pt").is_file()
    assert read_manifest(save) is None and not (save / "_COMPLETE").exists()

    with open(tmp_path / "run2.out", "w") as out:
        assert _start(args, out).wait(timeout=240) == 0
    text = (save / "train.log").read_text()
    resumed = int(re.search(r"[Ll]oaded checkpoint \S+checkpoint_last\.pt \(epoch \d+ @ (\d+) updates\)", text)[1])
    assert resumed % 10 == 0 and 10 <= resumed <= killed_at
    second = text.split("# koroberta train:")[2]  # the rerun's part of the log
    first_update = int(re.search(r'train_inner \| \{.*?"num_updates": "(\d+)"', second)[1])
    assert first_update == resumed + 5  # continued, not restarted from 0
    tlog = parse_log(save)
    cfg = TrainConfig(**{**TINY, "max_update": 40})
    check_lr_schedule(cfg, tlog)  # same schedule across the restart
    assert read_manifest(save)["stats"]["updates"] == 40


def test_two_process_gloo_ddp_on_cpu(tiny_databin, tmp_path):
    cfg = TrainConfig(**{**TINY, "max_update": 10, "launcher": "torchrun", "ngpus": 2})
    save = tmp_path / "ddp"
    train(cfg, tiny_databin, save)
    text = (save / "train.log").read_text()
    assert "training on 2 devices" in text and "torch.distributed.run" in text
    tlog = parse_log(save)
    assert tlog.inner[10]["bsz"] == 16  # 8 per rank x 2 ranks, all-reduced
    m = read_manifest(save)
    assert m["stats"]["updates"] == 10 and m["stats"]["sequences_per_update"] == 16


def test_cli_dry_run_errors_and_report(tiny_databin, tmp_path, capsys):
    cfg_yaml = tmp_path / "run.yaml"
    cfg_yaml.write_text(yaml.safe_dump({"workdir": str(tmp_path / "wd"), "train": {**TINY, "recipe": None}}))
    (tmp_path / "wd").mkdir()
    os.symlink(tiny_databin, tmp_path / "wd" / "data-bin")
    assert cli_main([str(cfg_yaml), "--dry-run", "--update-freq", "4"]) == 0
    out = capsys.readouterr().out
    assert "32 sequences x 64 tokens = 2,048 tokens per update" in out
    assert "--update-freq 4" in out and str(tmp_path / "wd" / "checkpoints") in out
    assert not (tmp_path / "wd" / "checkpoints").exists()

    assert cli_main([str(cfg_yaml), "--precision", "fp16"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "fp16" in err and len(err.splitlines()) == 1
    assert cli_main([str(cfg_yaml), "--tokens-per-sample", "128"]) == 2
    assert "max_positions" in capsys.readouterr().err
    assert cli_main(["report", str(tmp_path)]) == 2
    assert "train.log" in capsys.readouterr().err



def test_supersede_moves_old_run_aside(tmp_path):
    from koroberta.train.launch import supersede_checkpoints

    save = tmp_path / "ckpt"
    (save / "tensorboard").mkdir(parents=True)
    for name in ("checkpoint_last.pt", "checkpoint_1_10.pt", "train.log", "train_config.json", "notes.txt"):
        (save / name).write_text(name)
    dest = supersede_checkpoints(save)
    assert dest == save / "superseded-1"
    assert sorted(p.name for p in save.iterdir()) == ["notes.txt", "superseded-1"]
    assert (dest / "checkpoint_last.pt").read_text() == "checkpoint_last.pt" and (dest / "tensorboard").is_dir()
    (save / "checkpoint_last.pt").write_text("again")
    assert supersede_checkpoints(save) == save / "superseded-2"


def test_same_inputs_and_seed_give_identical_manifest_and_weights(trained, tiny_databin, tmp_path, capsys):
    import torch

    cfg, save0, ckpt0, _ = trained
    ckpt = train(cfg, tiny_databin, tmp_path / "again")
    capsys.readouterr()
    assert (tmp_path / "again" / "manifest.json").read_bytes() == (save0 / "manifest.json").read_bytes()
    a = torch.load(ckpt0, map_location="cpu", weights_only=False)["model"]
    b = torch.load(ckpt, map_location="cpu", weights_only=False)["model"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_unknown_fairseq_option_is_refused_before_launch(tiny_databin, tmp_path):
    """A flag fairseq does not know is caught by preflight with fairseq's own parser: nothing is launched. (A
    fairseq that fails after launch gets its error line into the one-line message: test_train_messages.py.)"""
    cfg = TrainConfig(**{**TINY, "extra_args": ["--no-such-fairseq-option"]})
    with pytest.raises(ConfigError, match="fairseq-train refuses them: unrecognized arguments: "
                                          "--no-such-fairseq-option"):
        train(cfg, tiny_databin, tmp_path / "bad")
    assert not (tmp_path / "bad" / "train.log").exists()


def test_train_report_is_its_own_subcommand():
    from koroberta.train.cli import with_default_subcommand as w

    assert w(["train", "c.yaml", "d", "s"]) == ["train", "run", "c.yaml", "d", "s"]
    assert w(["-v", "train", "--dry-run"]) == ["-v", "train", "run", "--dry-run"]
    assert w(["train", "report", "s"]) == ["train", "report", "s"] and w(["train", "-h"]) == ["train", "-h"]
    assert w(["run", "c.yaml"]) == ["run", "c.yaml"]
    r = subprocess.run([sys.executable, "-m", "koroberta", "train", "report", "--help"], capture_output=True, text=True)
    assert r.returncode == 0 and "--peak-tflops" in r.stdout and "--lr" not in r.stdout
    r = subprocess.run([sys.executable, "-m", "koroberta", "train", "run", "--help"], capture_output=True, text=True)
    assert r.returncode == 0 and "--lr" in r.stdout and "--peak-tflops" not in r.stdout


def test_save_dir_rules(tiny_databin, tmp_path, capsys):
    """Checkpoints never go into the data-bin, over foreign fairseq checkpoints (fairseq would resume from them
    silently) or next to a training that is running (issue: nothing lost)."""
    from koroberta.artifacts import output_lock
    from koroberta.errors import OutputError

    cfg = TrainConfig(**TINY)
    with pytest.raises(OutputError, match="is this stage's input data_bin"):
        train(cfg, tiny_databin, tiny_databin, dry_run=True)
    with pytest.raises(OutputError, match="lies inside this stage's input data_bin"):
        train(cfg, tiny_databin, tiny_databin / "checkpoints", dry_run=True)
    save = tmp_path / "ckpt"
    save.mkdir()
    (save / "checkpoint_last.pt").write_bytes(b"someone else's fairseq run")
    with pytest.raises(ConfigError, match="fairseq checkpoints koroberta did not launch.*--restart"):
        train(cfg, tiny_databin, save, dry_run=True)
    assert (save / "checkpoint_last.pt").read_bytes() == b"someone else's fairseq run"
    with output_lock(save):  # a second `koroberta train` into a save dir in use
        with pytest.raises(OutputError, match="another koroberta process is writing"):
            train(cfg, tiny_databin, save, restart=True)
    train(cfg.replace(max_update=8), tiny_databin, save, restart=True)  # --restart moves them aside, trains from 0
    capsys.readouterr()
    assert (save / "superseded-1" / "checkpoint_last.pt").read_bytes() == b"someone else's fairseq run"
    assert read_manifest(save)["stats"]["updates"] == 8
