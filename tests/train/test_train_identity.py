"""A training run's identity: what makes checkpoints "the same run", measured rather than assumed.

* run-time fields (launcher, how the batch is split over processes, log/save/validate intervals, tensorboard) never
  re-enter a finished run, and -- measured here -- do not change the trained weights;
* identity fields with checkpoints present are refused in one line (never a silent restart from update 0);
* a finished run is never trained one update further, whatever re-enters it;
* the data is identified by the content of the files fairseq reads, not by the preprocess manifest.
"""

import io
import shutil
import subprocess
import sys
from contextlib import redirect_stdout

import pytest
import torch

from koroberta.artifacts import read_manifest
from koroberta.databin import data_fingerprint
from koroberta.errors import ConfigError
from koroberta.train.launch import checkpoint_updates, is_trained, train
from koroberta.train.config import TrainConfig

from train_tiny import TINY


def _quiet_train(*args, **kw):
    with redirect_stdout(io.StringIO()):
        return train(*args, **kw)


def _weights(ckpt):
    return torch.load(ckpt, map_location="cpu", weights_only=False)["model"]


def test_runtime_fields_do_not_change_the_weights(trained, tiny_databin, tmp_path):
    """The measurement behind TrainConfig.RUNTIME: every run-time knob changed at once, same weights bit for bit.
    (torchrun with one process is a different launcher and process group than the local launcher.)"""
    cfg, _, ckpt0, _ = trained
    other = cfg.replace(log_interval=3, save_interval_updates=7, validate_interval_updates=0,
                        keep_interval_updates=1, tensorboard=False, launcher="torchrun", master_port=29517,
                        min_free_disk_gb=0.0, recipe=None)
    assert other.identity() == cfg.identity()
    ckpt = _quiet_train(other, tiny_databin, tmp_path / "other")
    a, b = _weights(ckpt0), _weights(ckpt)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert checkpoint_updates(ckpt) == cfg.max_update


def test_num_workers_is_identity_because_it_changes_results():
    """fairseq seeds its loader workers differently from the in-process loader (measured: 0 vs 1 workers diverge
    after epoch 1), so num_workers cannot be a run-time knob."""
    cfg = TrainConfig(**TINY)
    assert cfg.identity() != cfg.replace(num_workers=1).identity()


def test_effective_batch_is_identity_its_split_is_not():
    cfg = TrainConfig(**{**TINY, "batch_size": 8, "update_freq": 4})
    split = cfg.replace(batch_size=4, update_freq=2, ngpus=2, nnodes=2, launcher="slurm", device="cuda",
                        precision="auto")
    assert split.identity() == cfg.identity()
    assert cfg.replace(update_freq=2).identity() != cfg.identity()


def test_cluster_launched_run_is_complete_for_koroberta_run(trained, tiny_databin, capsys):
    """The README's path: train with the launcher of a cluster job, then `koroberta run` with the YAML's own
    launcher/ngpus on a CPU node -- found complete, nothing started, no device check."""
    cfg, save, ckpt, _ = trained
    log_size = (save / "train.log").stat().st_size
    on_gpu_nodes = cfg.replace(launcher="slurm", nnodes=2, ngpus=4, batch_size=1, device="cuda")
    assert on_gpu_nodes.identity() == cfg.identity()
    assert train(on_gpu_nodes, tiny_databin, save) == ckpt  # no preflight: `device: cuda` on a CPU node is fine
    assert (save / "train.log").stat().st_size == log_size and "command:" not in capsys.readouterr().out


def test_identity_change_with_checkpoints_is_refused_in_one_line(trained, tiny_databin, tmp_path):
    cfg, save0, _, _ = trained
    save = tmp_path / "ckpt"
    shutil.copytree(save0, save)
    with pytest.raises(ConfigError) as e:
        train(cfg.replace(lr=2e-3), tiny_databin, save)
    msg = str(e.value)
    assert len(msg.splitlines()) == 1 and str(save) in msg and "lr 0.001 -> 0.002" in msg and "--restart" in msg
    assert is_trained(save, cfg, data_fingerprint(tiny_databin))  # untouched: marker and checkpoints kept
    # the same refusal through the CLI: exit 2, one line, no traceback
    r = subprocess.run([sys.executable, "-m", "koroberta.train.cli", str(tiny_databin), str(save),
                        *sum(([f"--{k.replace('_', '-')}", str(v)] for k, v in TINY.items()), []),
                        "--lr", "0.002"], capture_output=True, text=True)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.strip().startswith("error: ") and len(r.stderr.strip().splitlines()) == 1


def test_restart_moves_other_run_aside(trained, tiny_databin, tmp_path):
    cfg, save0, _, _ = trained
    save = tmp_path / "ckpt"
    shutil.copytree(save0, save)
    new = cfg.replace(seed=7, max_update=10)
    _quiet_train(new, tiny_databin, save, restart=True)
    assert (save / "superseded-1" / "checkpoint_last.pt").is_file()
    assert checkpoint_updates(save / "checkpoint_last.pt") == 10 and is_trained(save, new,
                                                                                data_fingerprint(tiny_databin))
    assert "Loaded checkpoint" not in (save / "train.log").read_text()  # from update 0, not resumed


def test_finished_run_is_not_trained_further(trained, tiny_databin, tmp_path):
    """fairseq resumes a checkpoint at max_update and runs one more update (at lr 0) before it stops: a finished run
    relaunched (marker lost, or --force) must be recognised instead."""
    cfg, save0, _, _ = trained
    save = tmp_path / "ckpt"
    shutil.copytree(save0, save)
    (save / "_COMPLETE").unlink()  # e.g. killed between fairseq's exit and the marker
    before = _weights(save / "checkpoint_last.pt")
    log_size = (save / "train.log").stat().st_size
    _quiet_train(cfg, tiny_databin, save)
    assert (save / "train.log").stat().st_size == log_size  # fairseq was not started
    assert checkpoint_updates(save / "checkpoint_last.pt") == 30
    assert read_manifest(save)["stats"]["updates"] == 30
    after = _weights(save / "checkpoint_last.pt")
    assert all(torch.equal(before[k], after[k]) for k in before)
    _quiet_train(cfg, tiny_databin, save, force=True)
    assert (save / "train.log").stat().st_size == log_size and read_manifest(save)["stats"]["updates"] == 30


def test_data_fingerprint_is_the_content_fairseq_reads(tiny_databin, tmp_path):
    db = tmp_path / "db"
    shutil.copytree(tiny_databin, db)
    fp = data_fingerprint(tiny_databin)
    assert data_fingerprint(db) == fp  # another path, same bytes
    (db / "notes.spm").write_text("piece text training never reads\n")
    assert data_fingerprint(db) == fp
    data = bytearray((db / "valid.bin").read_bytes())
    data[-2] ^= 1
    (db / "valid.bin").write_bytes(bytes(data))
    assert data_fingerprint(db) != fp


def test_one_process_torchrun_on_cpu(tiny_databin, tmp_path):
    """`--launcher torchrun --ngpus 1 --device cpu` used to die with "Distributed package doesn't have NCCL":
    fairseq's default backend is nccl even for one rank."""
    cfg = TrainConfig(**{**TINY, "max_update": 6, "launcher": "torchrun", "ngpus": 1})
    save = tmp_path / "one"
    _quiet_train(cfg, tiny_databin, save)
    assert "--distributed-backend gloo" in (save / "train.log").read_text()
    assert checkpoint_updates(save / "checkpoint_last.pt") == 6
