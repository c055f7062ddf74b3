"""The closing summary of `koroberta run` names the export only when there is one."""

from __future__ import annotations

from koroberta.pipeline import format_summary

STAGES = {"corpus": {"documents": {"train": 9}, "sentences": {"train": 90}},
          "spm": {"pieces": 100, "final_vocab_size": 108, "fillers": 4},
          "preprocess": {"tokens": {"train": 900}, "unk_rate": 0.0}}


def test_until_preprocess_names_no_model():
    text = format_summary({"name": "x", "workdir": "runs/x", "stages": dict(STAGES), "seconds": {}})
    assert "runs/x/hf" not in text and "model" not in text
    assert "stopped    after preprocess (--until)" in text


def test_after_convert_names_the_export():
    stages = {**STAGES, "train": {"updates": 5}, "convert": {"parity": {}}}
    text = format_summary({"name": "x", "workdir": "runs/x", "stages": stages, "seconds": {}})
    assert "model      runs/x/hf" in text and "stopped" not in text


def test_broken_pipe_is_a_quiet_exit():
    """`koroberta ... | head`: the reader went away; exit 0 without a traceback (BrokenPipeError is an OSError, and
    the OSError handler used to catch it first and re-raise it)."""
    import subprocess
    import sys

    code = ("import sys, koroberta.pipeline as p\n"
            "def cmd(args):\n    raise BrokenPipeError(32, 'Broken pipe')\n"
            "p._cmd_run = cmd\n"
            "from koroberta.cli import main\nsys.exit(main(['run', 'any.yaml']))\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
