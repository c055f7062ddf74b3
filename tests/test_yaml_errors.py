"""A YAML config that does not parse is one line ``error: FILE:LINE:COL: <problem> — fix: ...`` (issue 20, §5), for
every command that reads one; in-process through ``koroberta.cli.main``."""

from __future__ import annotations

import os

import pytest

from koroberta.cli import main


def error_line(capsys, argv: list, *needles: str) -> str:
    assert main([str(a) for a in argv]) == 2
    err = capsys.readouterr().err
    lines = [l for l in err.splitlines() if l.strip()]
    assert "Traceback" not in err and len(lines) == 1, err[-3000:]
    assert lines[0].startswith("error: ") and " — fix: " in lines[0], lines[0]
    for n in needles:
        assert n in lines[0], (n, lines[0])
    return lines[0]


@pytest.mark.parametrize("command", ["train", "run", "spm"])
def test_tab_indentation_names_line_and_column(tmp_path, capsys, command):
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text("source: x.txt\ntrain:\n  lr: 0.001\n\tmax_update: 10\n")
    argv = {"train": ["train", cfg, tmp_path / "db", tmp_path / "ckpt", "--dry-run"], "run": ["run", cfg],
            "spm": ["spm", "train", "--config", cfg, "--train-text", cfg, "--out", tmp_path / "spm"]}[command]
    error_line(capsys, argv, f"error: {cfg}:4:1: found a tab character where indentation is expected",
               "fix: YAML indents with spaces, not tabs: replace the tab on line 4")
    assert not (tmp_path / "ckpt").exists() and not (tmp_path / "spm").exists()


def test_other_yaml_errors_name_line_and_column(tmp_path, capsys):
    cfg = tmp_path / "train.yaml"
    cfg.write_text("train:\n  adam_betas: [0.9, 0.98\n  lr: 0.001\n")
    error_line(capsys, ["train", cfg, tmp_path / "db", tmp_path / "ckpt", "--dry-run"],
               f"error: {cfg}:3:5: invalid YAML: expected ',' or ']'", "close the bracket opened at line 2, column 15")
    cfg.write_text("train:\n  arch: roberta: base\n")
    error_line(capsys, ["train", cfg, tmp_path / "db", tmp_path / "ckpt", "--dry-run"], f"error: {cfg}:2:16:",
               "mapping values are not allowed here", "quote it")
    cfg.write_text("train:\n  lr:\t0.001\n")
    error_line(capsys, ["train", cfg, tmp_path / "db", tmp_path / "ckpt", "--dry-run"],
               f"error: {cfg}:2:6: found a tab character where YAML expects a space", "line 2, column 6")
    cfg.write_bytes("train:\n  # 학습률\n  lr: 0.001\n".encode("euc-kr"))
    error_line(capsys, ["train", cfg, tmp_path / "db", tmp_path / "ckpt", "--dry-run"],
               f"error: {cfg}:2: not UTF-8", "re-save the file as UTF-8")
    error_line(capsys, ["train", "--config", tmp_path, tmp_path / "db", tmp_path / "ckpt", "--dry-run"],
               f"error: {tmp_path}: is a directory, not a YAML file")


def test_config_from_process_substitution_is_read(tmp_path, capsys):
    """`koroberta train <(sed ... base.yaml) DATA_BIN SAVE_DIR`: a config is read once, so a pipe works (and as the
    first of three paths it is the config); its values reach validation, which names it."""
    r, w = os.pipe()
    os.write(w, b"train:\n  lr: -1.0\n")
    os.close(w)
    try:
        error_line(capsys, ["train", f"/dev/fd/{r}", tmp_path / "db", tmp_path / "ckpt", "--dry-run"],
                   f"error: /dev/fd/{r}: train: lr=-1.0 must be > 0", f"correct the `train:` section of /dev/fd/{r}")
    finally:
        os.close(r)
