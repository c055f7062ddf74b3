"""The train stage's errors send the user the right way (issue 20, section 5).

fairseq refusing a flag is caught before launch, also by --dry-run; a fairseq that fails at start is never answered
with "rerun to resume"; a lowered max_update is not offered --extend; and every case is one stderr line with the
file (or option) and the fix, exit code 2, no traceback and no completion marker.
"""

import json

import pytest
import yaml

from koroberta.cli import main
from koroberta.databin import data_fingerprint
from koroberta.errors import ConfigError
from koroberta.train.launch import _failure_cause, _failure_error, _stopped_early_error, train
from koroberta.train.config import TrainConfig
from koroberta.train.preflight import TRAIN_STATE, run_identity

from cli_errors import after_needs, error_line
from train_tiny import TINY


def config(tmp_path, **train) -> str:
    p = tmp_path / "train.yaml"
    p.write_text(yaml.safe_dump({"train": {**TINY, **train}}))
    return str(p)


def fake_run(save, cfg: TrainConfig, data_bin, updates: int) -> None:
    """A save dir as a killed koroberta run leaves it: its state file and a checkpoint at ``updates``."""
    import torch

    save.mkdir(parents=True)
    torch.save({"optimizer_history": [{"num_updates": updates}]}, save / "checkpoint_last.pt")
    (save / TRAIN_STATE).write_text(json.dumps({"identity": run_identity(cfg, data_fingerprint(data_bin))}))


# -- fairseq refuses a flag: caught by preflight, named where it was given --------------------------------------------
def test_extra_args_natural_spelling_and_unknown_flag_in_dry_run(tiny_databin, tmp_path, capsys):
    cfg = config(tmp_path)
    save = tmp_path / "ckpt"
    # `--extra-args --flag value` works, and an option of ours after it is ours again
    assert main(["train", cfg, str(tiny_databin), str(save), "--extra-args", "--max-epoch", "5",
                 "--no-progress-bar", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "--max-epoch 5 --no-progress-bar" in out and not save.exists()
    from koroberta.cli import build_parser

    with pytest.raises(SystemExit):
        build_parser().parse_args(["train", "run", "--help"])
    text = " ".join(capsys.readouterr().out.split())  # argparse wraps the help
    assert "written as they are: `--extra-args --max-epoch 5" in text and "`--extra-args=--flag` works too" in text

    assert main(["train", cfg, str(tiny_databin), str(save), "--extra-args", "--no-such-flag", "3", "--dry-run"]) == 2
    error_line(capsys.readouterr().err, "error: command-line option --extra-args --no-such-flag 3:",
             "unrecognized arguments: --no-such-flag 3", "fix: correct or remove it in --extra-args")
    assert not save.exists()

    bad = config(tmp_path, extra_args="--max-epoch 5 --mask-whole-wrds")  # one string, split like a shell line
    assert main(["train", bad, str(tiny_databin), str(save), "--dry-run"]) == 2
    error_line(capsys.readouterr().err, f"error: {bad}: train.extra_args ['--max-epoch', '5', '--mask-whole-wrds']",
             "unrecognized arguments: --mask-whole-wrds", f"extra_args of {bad}")


def test_extra_args_item_with_a_space_is_named(tmp_path, capsys):
    bad = config(tmp_path, extra_args=["--max-epoch 5"])
    assert main(["train", bad, str(tmp_path / "db"), str(tmp_path / "ckpt"), "--dry-run"]) == 2
    error_line(capsys.readouterr().err, f"error: {bad}:", "'--max-epoch 5' holds a space", "own list item")


# -- fairseq fails at start: the cause, not "resume" ------------------------------------------------------------------
def test_fairseq_failing_at_start_names_the_cause_not_resume(tiny_databin, tmp_path, capsys):
    """A real launch: fairseq accepts the flag, then raises before its first update. A rerun would fail the same
    way and there is no checkpoint, so the message names the cause (the error line of the log)."""
    # (--finetune-from-model was the example before train.init_from: the config refuses it now)
    cfg = config(tmp_path, extra_args=["--cpu-offload"])
    save = tmp_path / "ckpt"
    assert main(["train", cfg, str(tiny_databin), str(save)]) == 2
    line = error_line(after_needs(capsys.readouterr().err, "train"), f"error: {save / 'train.log'}:",
                    "ValueError: --cpu-offload requires --ddp-backend=fully_sharded",
                    "at start, before its first update", "fail the same way", "check extra_args --cpu-offload",
                    "no checkpoint was saved", absent=("resume from checkpoint_last",))
    assert "resumes" not in line
    assert not (save / "_COMPLETE").exists() and not (save / "checkpoint_last.pt").exists()


def test_failure_advice_depends_on_what_the_launch_did(tmp_path):
    cfg = TrainConfig(**{**TINY, "extra_args": ["--foo"]})
    tb = ["Traceback (most recent call last):\n", '  File "x.py", line 1\n', "RuntimeError: CUDA error: device lost\n"]
    assert _failure_cause(tb) == ("exception", "RuntimeError: CUDA error: device lost")
    usage = ["usage: fairseq-train [-h] ...\n", "fairseq-train: error: unrecognized arguments: --foo\n"]
    assert _failure_cause(usage) == ("usage", "unrecognized arguments: --foo")
    assert _failure_cause(["RuntimeError: error: x\n"]) == ("exception", "RuntimeError: error: x")  # no usage line
    torchrun = [*tb, "torch.distributed.elastic.multiprocessing.errors.ChildFailedError: \n"]
    assert _failure_cause(torchrun)[1] == "RuntimeError: CUDA error: device lost"  # the rank's error, not torchrun's

    e = str(_failure_error(1, usage, tmp_path / "none", cfg, started_at=None, launch_updates=0))
    assert "refused its arguments at start: unrecognized arguments: --foo (from extra_args: --foo)" in e
    assert "resume" not in e

    import torch

    save = tmp_path / "ckpt"
    save.mkdir()
    torch.save({"optimizer_history": [{"num_updates": 20}]}, save / "checkpoint_last.pt")
    # trained 10 -> 25 and saved at 20 before the crash: resuming is the advice
    e = str(_failure_error(1, tb, save, cfg, started_at=10, launch_updates=25))
    assert "device lost (at update 25)" in e and "rerun the same command: it resumes from checkpoint_last.pt " \
                                                 "(update 20)" in e
    # resumed at 20 and failed before an update: the same command fails again
    e = str(_failure_error(1, tb, save, cfg, started_at=20, launch_updates=0))
    assert "at start, before its first update; resuming from update 20" in e and "fail the same way" in e
    assert "rerun the same command" not in e

    killed = str(_failure_error(-9, [], save, cfg, started_at=10, launch_updates=25))
    assert "killed by SIGKILL (as the kernel's out-of-memory killer" in killed and "resumes from" in killed

    stopped = str(_stopped_early_error(cfg.replace(extra_args=["--max-epoch", "1"]), save, 20, 20))
    assert "stopped at update 20 of 30: extra_args --max-epoch 1 ended it" in stopped
    assert "remove --max-epoch 1 from train.extra_args" in stopped and "lower max_update" not in stopped


# -- max_update: lowered is not "extend", --extend says what it cannot do ---------------------------------------------
def test_max_update_lowered_or_extend_with_other_changes(tiny_databin, tmp_path, capsys):
    ran = TrainConfig(**TINY)  # max_update 30, lr 0.001
    save = tmp_path / "ckpt"
    fake_run(save, ran, tiny_databin, 30)

    cfg = config(tmp_path, max_update=20)
    assert main(["train", cfg, str(tiny_databin), str(save), "--dry-run"]) == 2
    error_line(capsys.readouterr().err, f"error: {save}:", "max_update was lowered 30 -> 20: fairseq cannot shorten a run",
             "at update 30, already past max_update 20", "fix: restore max_update: 30 to resume it", "--restart",
             absent=("--extend continues",))
    assert main(["train", cfg, str(tiny_databin), str(save), "--dry-run", "--extend"]) == 2
    error_line(capsys.readouterr().err, "fairseq cannot shorten", "(--extend only raises max_update)", absent=("--extend continues",))

    with pytest.raises(ConfigError, match=r"--extend only continues a run to a raised max_update, and max_update "
                                          r"is unchanged \(30\) while other settings differ \(lr 0.001 -> 0.002\)"):
        train(ran.replace(lr=0.002), tiny_databin, save, dry_run=True, extend=True)
    with pytest.raises(ConfigError, match=r"other settings differ too \(lr 0.001 -> 0.002\).*fix: restore lr to the "
                                          r"recorded values to resume it \(then --extend raises max_update\)"):
        train(ran.replace(lr=0.002, max_update=40), tiny_databin, save, dry_run=True, extend=True)
    with pytest.raises(ConfigError, match=r"max_update 30 -> 40\).*--extend continues it to the new max_update"):
        train(ran.replace(max_update=40), tiny_databin, save, dry_run=True)  # raised: --extend is the advice
    assert main(["train", cfg, str(tiny_databin), str(save), "--dry-run", "--extend", "--restart"]) == 2
    error_line(capsys.readouterr().err, "error: options --restart and --extend together", "pass one of them")
    assert not (save / "_COMPLETE").exists() and (save / "checkpoint_last.pt").is_file()
