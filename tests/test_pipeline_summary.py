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
