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


def test_an_import_is_summarised_in_place_of_spm():
    stages = {"corpus": STAGES["corpus"], "preprocess": STAGES["preprocess"],
              "importhf": {"arch": "roberta_base", "tokenizer_class": "BertTokenizer", "tokenizer_tokens": 32000,
                           "rows": 32000, "mask_id": 4, "parity": {"max_abs_logit_diff": 3e-06}}}
    text = format_summary({"name": "x", "workdir": "runs/x", "stages": stages, "seconds": {}})
    assert ("  importhf   roberta_base from BertTokenizer (32000 tokens, 32000 rows, mask id 4); max |logit diff| "
            "fairseq vs HF 3e-06") in text and "  spm " not in text
    stages["importhf"]["parity"] = {"checked": False}
    assert "logits NOT checked" in format_summary({"name": "x", "workdir": "runs/x", "stages": stages,
                                                   "seconds": {}})


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


def _finetune_stats(seeds: list[int], test: bool) -> dict:
    """The stats the finetune step's manifest holds (the eval harness's)."""
    per = {"accuracy": {"mean": 0.81234, "std": 0.0123, "values": []}, "f1": {"mean": 0.8, "std": 0.02, "values": []}}
    return {"task": "nsmc", "main_metric": "accuracy", "seeds": seeds, "device": "cpu", "precision": "fp32",
            "examples": {"train": 3600, "dev": 400, **({"test": 1000} if test else {})},
            "summary": {"dev": per, **({"test": {**per, "accuracy": {"mean": 0.7, "std": 0.01}}} if test else {})}}


def test_finetune_line_reports_the_held_out_split_over_the_seeds():
    stages = {**STAGES, "finetune": _finetune_stats([42, 43, 44], test=True)}
    text = format_summary({"name": "x", "workdir": "runs/x", "stages": stages, "seconds": {}})
    assert ("  finetune   NSMC accuracy 0.7000 ± 0.0100, F1 0.8000 ± 0.0200 (test, 1,000 rows, mean ± std over "
            "3 seeds; trained on 3,600)") in text
    stages["finetune"] = _finetune_stats([42], test=False)
    text = format_summary({"name": "x", "workdir": "runs/x", "stages": stages, "seconds": {}})
    # one seed: no spread to show (the demo's step)
    assert "  finetune   NSMC accuracy 0.8123, F1 0.8000 (dev, 400 rows, 1 seed; trained on 3,600)" in text
    stages["finetune"]["summary"]["dev"]["f1"] = {"mean": None, "std": None, "values": [None]}
    assert "F1 ? (dev" in format_summary({"name": "x", "workdir": "runs/x", "stages": stages, "seconds": {}})
