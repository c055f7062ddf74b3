"""``train.init_from``: continue masked-LM pretraining from existing weights (real fairseq on CPU, tiny model).

* the first launch loads the checkpoint's weights with a fresh optimizer, lr schedule and data position (fairseq's
  --finetune-from-model); a relaunch after a kill continues from checkpoint_last.pt and never reloads the init;
* the run identity holds the checkpoint's content (sha256), not its path;
* a checkpoint that does not fit the data-bin's vocabulary or the configured model is refused in one line before
  fairseq starts.
"""

import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from contextlib import redirect_stdout

import pytest
import torch
import yaml

from koroberta.artifacts import read_manifest, sha256_file, write_json
from koroberta.databin import data_fingerprint
from koroberta.errors import ConfigError, InputError
from koroberta.train.cli import main as cli_main
from koroberta.train.config import TrainConfig
from koroberta.train.launch import checkpoint_updates, is_trained, train
from koroberta.train.logs import parse_log
from koroberta.train.preflight import TRAIN_STATE, preflight, run_identity

from train_tiny import TINY

CPU = (False, 0, "cpu")


def _copy(ckpt, d):
    d.mkdir(parents=True, exist_ok=True)
    return shutil.copy(ckpt, d / "checkpoint.pt")


def _model(ckpt):
    return torch.load(ckpt, map_location="cpu", weights_only=False)["model"]


def _one_line(e) -> str:
    msg = str(e.value)
    assert len(msg.splitlines()) == 1, msg
    return msg


def test_starts_from_the_weights_and_identity_is_their_content(tiny_checkpoint, tiny_databin, tmp_path):
    # lr ~0: the weights after the run are the ones fairseq loaded (a random init is ~0.02 away everywhere)
    init = _copy(tiny_checkpoint, tmp_path / "a")
    cfg = TrainConfig(**{**TINY, "max_update": 2, "warmup_updates": 1, "lr": 1e-9, "init_from": str(init)})
    save = tmp_path / "ckpt"
    buf = io.StringIO()
    with redirect_stdout(buf):
        ckpt = train(cfg, tiny_databin, save)
    out, sha = buf.getvalue(), sha256_file(init)
    assert f"init: starts from the weights of {init} (sha256 {sha[:12]}; 30 updates" in out
    assert f"--finetune-from-model {init}" in out and "--restore-file" not in out and "--reset-" not in out
    before, after = _model(init), _model(ckpt)
    assert before.keys() == after.keys()
    assert all(torch.allclose(before[k].float(), after[k].float(), atol=1e-6) for k in before)
    assert checkpoint_updates(ckpt) == 2  # the new run's counter, from 0: not 30 + 2
    assert "loading pretrained model from" in (save / "train.log").read_text()
    m = read_manifest(save)
    assert m["identity"]["init_from_sha256"] == sha and m["inputs"]["init_from"]["fingerprint"] == sha
    assert json.loads((save / TRAIN_STATE).read_text())["init_from"]["sha256"] == sha

    # the same content at another path: the same run, complete, nothing launched
    moved = cfg.replace(init_from=str(_copy(init, tmp_path / "b")))
    fp = data_fingerprint(tiny_databin)
    assert is_trained(save, moved, fp)
    size = (save / "train.log").stat().st_size
    assert train(moved, tiny_databin, save) == ckpt and (save / "train.log").stat().st_size == size
    # other weights: another run, refused in one line (never trained on top of the old checkpoints)
    other_state = torch.load(init, map_location="cpu", weights_only=False)
    other_state["model"]["encoder.lm_head.bias"] += 0.5
    other = tmp_path / "c" / "checkpoint.pt"
    other.parent.mkdir()
    torch.save(other_state, other)
    changed = cfg.replace(init_from=str(other))
    assert not is_trained(save, changed, fp)
    with pytest.raises(ConfigError) as e:
        train(changed, tiny_databin, save)
    msg = _one_line(e)
    assert "init_from_sha256" in msg and str(save) in msg and "--restart" in msg
    assert "init_from_sha256" not in run_identity(cfg.replace(init_from=None), fp)
    with pytest.raises(ConfigError, match="init_from_sha256"):  # random init is another run as well
        train(cfg.replace(init_from=None), tiny_databin, save)


def test_kill_9_then_rerun_continues_without_reloading_the_init(tiny_checkpoint, tiny_databin, tmp_path):
    init = _copy(tiny_checkpoint, tmp_path / "import")
    cfg_yaml = tmp_path / "train.yaml"
    cfg_yaml.write_text(yaml.safe_dump({"train": {**TINY, "max_update": 60, "init_from": str(init)}}))
    save = tmp_path / "ckpt"
    args = [sys.executable, "-m", "koroberta.train.cli", str(cfg_yaml), str(tiny_databin), str(save)]
    with open(tmp_path / "run1.out", "w") as out:
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.time() + 120
        # fairseq writes checkpoint_1_10.pt, then copies it to checkpoint_last.pt: wait until it trains past them
        while time.time() < deadline and proc.poll() is None:
            if (save / "checkpoint_1_10.pt").is_file() and parse_log(save).updates >= 12:
                break
            time.sleep(0.05)
        assert proc.poll() is None, "training finished before it could be killed"
        os.killpg(proc.pid, signal.SIGKILL)  # koroberta + fairseq-train, like a node dying
        proc.wait()
    assert read_manifest(save) is None and checkpoint_updates(save / "checkpoint_last.pt") >= 10
    first = (save / "train.log").read_text()
    assert re.search(rf"Loaded checkpoint {re.escape(str(init))} \(epoch 1 @ 0 updates\)", first)
    assert int(re.search(r'train_inner \| \{.*?"num_updates": "(\d+)"', first)[1]) == 5  # from 0, not 30

    buf = io.StringIO()  # the rerun in this process: a second interpreter start costs seconds
    with redirect_stdout(buf):
        train(TrainConfig(**{**TINY, "max_update": 60, "init_from": str(init)}), tiny_databin, save)
    assert "it resumes from its own checkpoint_last.pt, the init weights are not loaded again" in buf.getvalue()
    second = (save / "train.log").read_text()[len(first):]
    assert "loading pretrained model" not in second
    resumed = int(re.search(r"Loaded checkpoint \S+checkpoint_last\.pt \(epoch \d+ @ (\d+) updates\)", second)[1])
    assert resumed >= 10 and resumed % 10 == 0
    assert int(re.search(r'train_inner \| \{.*?"num_updates": "(\d+)"', second)[1]) == resumed + 5
    assert checkpoint_updates(save / "checkpoint_last.pt") == 60 and read_manifest(save)["stats"]["updates"] == 60
    assert parse_log(save).updates == 60


def test_dry_run_and_cli_errors(tiny_checkpoint, tiny_databin, tmp_path, capsys):
    init = _copy(tiny_checkpoint, tmp_path / "import")
    cfg_yaml = tmp_path / "train.yaml"
    cfg_yaml.write_text(yaml.safe_dump({"train": TINY}))
    save = tmp_path / "ckpt"
    assert cli_main([str(cfg_yaml), str(tiny_databin), str(save), "--init-from", str(init), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert f"init: starts from the weights of {init} (sha256 {sha256_file(init)[:12]}" in out
    assert f"--finetune-from-model {init}" in out and not save.exists()
    assert cli_main([str(cfg_yaml), str(tiny_databin), str(save), "--init-from", str(tmp_path / "no.pt")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "no.pt: train.init_from: checkpoint not found" in err and "fix:" in err


@pytest.fixture()
def init_dir(tiny_checkpoint, tmp_path):
    return _copy(tiny_checkpoint, tmp_path / "init").parent


def _pf(databin, save, **kw):
    return preflight(TrainConfig(**{**TINY, **kw}), databin, save, cuda_info=CPU)


def test_vocabulary_of_the_checkpoint_must_be_the_data_bins(init_dir, tiny_databin, tmp_path):
    ckpt, save = init_dir / "checkpoint.pt", tmp_path / "ckpt"
    pf = _pf(tiny_databin, save, init_from=str(ckpt))  # nothing next to it: rows match, a warning says so
    assert pf.init.sha256 == sha256_file(ckpt) and pf.init.num_updates == 30
    assert any("could not be verified" in w for w in pf.warnings)
    for record in ("vocab.json", TRAIN_STATE):  # an import's record, a koroberta run's train_config.json
        write_json(init_dir / record, {"dict_sha256": "0" * 64})
        with pytest.raises(InputError) as e:
            _pf(tiny_databin, save, init_from=str(ckpt))
        msg = _one_line(e)
        assert str(tiny_databin / "dict.txt") in msg and str(init_dir / record) in msg
        assert "another vocabulary" in msg and "`koroberta preprocess SPLIT_DIR" in msg
        (init_dir / record).unlink()
    write_json(init_dir / TRAIN_STATE, {"dict_sha256": sha256_file(tiny_databin / "dict.txt")})
    pf = _pf(tiny_databin, save, init_from=str(ckpt))
    assert pf.warnings == [] and "train_config.json" in pf.init.vocab_check


def test_model_of_the_checkpoint_must_be_the_configured_one(init_dir, tiny_databin, tmp_path):
    ckpt, save = str(init_dir / "checkpoint.pt"), tmp_path / "ckpt"
    with pytest.raises(ConfigError) as e:
        _pf(tiny_databin, save, init_from=ckpt, encoder_layers=3, max_positions=128)
    msg = _one_line(e)
    assert msg.startswith(f"{ckpt}: ") and "encoder_layers 2 in the checkpoint, 3 in the config" in msg
    assert "max_positions 64 in the checkpoint, 128 in the config" in msg
    assert "fix: set train.encoder_layers: 2; set train.max_positions: 64" in msg
    with pytest.raises(ConfigError) as e:  # same shapes, untied head: fairseq would load it without a word
        _pf(tiny_databin, save, init_from=ckpt, extra_args=["--untie-weights-roberta"])
    assert "untie_weights_roberta False in the checkpoint, True" in _one_line(e)
    with pytest.raises(ConfigError) as e:
        _pf(tiny_databin, save, init_from=ckpt, extra_args=["--activation-fn", "relu"])
    assert "activation_fn gelu in the checkpoint, relu" in _one_line(e)


def test_refusals_of_the_file_itself(init_dir, tiny_databin, tmp_path):
    save = tmp_path / "ckpt"
    with pytest.raises(InputError) as e:
        _pf(tiny_databin, save, init_from=str(tmp_path / "missing.pt"))
    assert "missing.pt: train.init_from: checkpoint not found" in _one_line(e) and "import-hf" in str(e.value)
    with pytest.raises(InputError, match="a directory, not a checkpoint file"):
        _pf(tiny_databin, save, init_from=str(init_dir))
    with pytest.raises(InputError) as e:  # another file: convert's reader says what it is
        _pf(tiny_databin, save, init_from=str(tiny_databin / "dict.txt"))
    assert "not a fairseq checkpoint" in _one_line(e)
    save.mkdir()
    inside = shutil.copy(init_dir / "checkpoint.pt", save / "init.pt")
    with pytest.raises(ConfigError, match="lies in the save dir"):
        _pf(tiny_databin, save, init_from=str(inside))


def test_config_refuses_what_fairseq_refuses_with_it():
    with pytest.raises(ConfigError, match="fairseq refuses --reset-optimizer together with --finetune-from-model"):
        TrainConfig(**{**TINY, "init_from": "x.pt", "extra_args": ["--reset-optimizer"]})
    with pytest.raises(ConfigError, match="it would load its checkpoint instead of init_from"):
        TrainConfig(**{**TINY, "init_from": "x.pt", "extra_args": ["--continue-once", "y.pt"]})
    with pytest.raises(ConfigError, match="set train.init_from instead"):
        TrainConfig(**{**TINY, "extra_args": ["--finetune-from-model=x.pt"]})
    with pytest.raises(ConfigError, match="init_from is empty"):
        TrainConfig(**{**TINY, "init_from": " "})
    TrainConfig(**{**TINY, "extra_args": ["--reset-optimizer"]})  # without init_from: fairseq's business, as before
    cfg = TrainConfig(**TINY)
    assert cfg.identity() == cfg.replace(init_from="x.pt").identity()  # the path is not identity; its content is
