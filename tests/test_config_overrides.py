"""`--set SECTION.KEY=VALUE` overrides of a run config and `koroberta config show` (issue 21, part 3a): applied to the
YAML mapping before validation, errors name the override, the shown config is one `koroberta run` takes back."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from cli_errors import main_error
from koroberta.cli import main
from koroberta.config import Override, apply_overrides, parse_override
from koroberta.pipeline import PipelineConfig

DEMO = Path(__file__).resolve().parents[1] / "configs" / "demo.yaml"


def show(capsys, *argv: object) -> str:
    assert main(["config", "show", str(DEMO), *map(str, argv)]) == 0
    return capsys.readouterr().out


def hashes(text: str) -> dict[str, str]:
    return dict(re.findall(r"^# (\w+) stage identity ([0-9a-f]{12})$", text, flags=re.M))


# -- the merge ---------------------------------------------------------------------------------------------------------
def test_apply_overrides_scalars_lists_mappings_and_order():
    data = {"workdir": "a", "train": {"lr": 0.001, "max_update": 10}, "preprocess": None}
    out = apply_overrides(data, ["train.lr=3e-4", "train.adam_betas=[0.9, 0.98]", "workdir=runs/x",
                                 "corpus={valid_fraction: 0.01}", "corpus={test_fraction: 0.02}",
                                 "preprocess.method=fairseq", "train.max_update=20", "train.max_update=30"])
    assert out["workdir"] == "runs/x"
    assert out["train"] == {"lr": "3e-4", "max_update": 30, "adam_betas": [0.9, 0.98]}  # later wins; "3e-4" is
    # what YAML 1.1 reads, exactly as in a file (a float field takes it)
    assert out["corpus"] == {"valid_fraction": 0.01, "test_fraction": 0.02}  # a mapping merges, it does not reset
    assert out["preprocess"] == {"method": "fairseq"}  # a null section is created
    assert data == {"workdir": "a", "train": {"lr": 0.001, "max_update": 10}, "preprocess": None}  # not modified
    assert apply_overrides({"x": {"a": 1}}, ["x=null", "x={b: 2}"]) == {"x": {"b": 2}}  # null, then a fresh mapping
    assert parse_override("name= ") == Override(("name",), None, "--set 'name= '")  # empty = null, as `key:` is


def test_load_applies_overrides_through_the_same_validation():
    cfg = PipelineConfig.load(DEMO, ["train.lr=3e-4", "corpus.valid_fraction=0.01", "workdir=runs/x",
                                     "train.adam_betas=[0.9,0.98]", "corpus={test_fraction: 0.02}", "nsmc_train=null"])
    assert isinstance(cfg.train.lr, float) and cfg.train.lr == 3e-4
    assert (cfg.corpus.valid_fraction, cfg.corpus.test_fraction) == (0.01, 0.02)
    assert cfg.workdir == "runs/x" and cfg.train.adam_betas == [0.9, 0.98] and cfg.nsmc_train is None
    plain = PipelineConfig.load(DEMO)
    assert cfg.train.max_update == plain.train.max_update and cfg.spm == plain.spm  # the rest is the file's


def test_shorthands_are_set_of_that_key_and_set_wins():
    assert PipelineConfig.load(DEMO, workdir="w", workers=3) == PipelineConfig.load(DEMO, ["workdir=w", "workers=3"])
    assert PipelineConfig.load(DEMO, ["workers=5"], workers=3).workers == 5
    # a shorthand value is not re-read as YAML: --workdir 2024 is the directory "2024", as before --set existed
    assert PipelineConfig.load(DEMO, workdir="2024").workdir == "2024"


# -- errors: one line naming the override ------------------------------------------------------------------------------
@pytest.mark.parametrize("item,needles", [
    ("train.lr=-1", ["error: --set train.lr=-1: train: lr=-1.0 must be > 0",
                     f"fix: correct --set train.lr=-1 (or leave it out to use the value in {DEMO})"]),
    ("train.lrr=1", ["error: --set train.lrr=1: ", "unknown key(s) lrr in section 'train'", "fix: rename lrr to lr"]),
    ("trian.lr=1", ["error: --set trian.lr=1: ", "unknown key(s) trian", "fix: rename trian to train"]),
    ("train.lr", ["error: --set train.lr: no '=' in it", "fix: write it as SECTION.KEY=VALUE"]),
    ("=3", ["error: --set =3: the key before '=' is empty", "fix: write it as SECTION.KEY=VALUE"]),
    ("train..lr=1", ["error: --set train..lr=1: the key 'train..lr' has an empty part", "SECTION.KEY=VALUE"]),
    ("train.adam_betas=[0.9", ["error: --set 'train.adam_betas=[0.9': the value '[0.9' is not valid YAML"]),
    ("workers.x=1", [f"error: --set workers.x=1: workers is 0 in {DEMO}, not a section", "--set workers=VALUE"]),
    ("train.adam_betas=0.9", ["error: --set train.adam_betas=0.9: TrainConfig.adam_betas must be a list"]),
    ("train.max_update=10", ["error: --set train.max_update=10: train: warmup_updates=100 must be >= 0 and < "
                             "max_update=10", f"train.warmup_updates (its value in {DEMO} does not fit"]),
    ("train=3", ["error: --set train=3: PipelineConfig.train must be a mapping, got 3"]),
])
def test_bad_override_is_one_line_naming_it(capsys, item, needles):
    main_error(capsys, ["config", "show", DEMO, "--set", item], *needles, absent=(f"error: {DEMO}",))


def test_run_names_the_override_and_makes_nothing(tmp_path, capsys):
    wd = tmp_path / "wd"
    main_error(capsys, ["run", DEMO, "--set", f"workdir={wd}", "--set", "corpus.valid_fraction=2"],
               "error: --set corpus.valid_fraction=2: corpus: valid_fraction must be in [0, 1)")
    assert not wd.exists()
    main_error(capsys, ["run", DEMO, "--workers", "-1"], "error: --workers -1: run: workers must be >= 0",
               "fix: correct --workers -1")
    # the same key twice: the later one is what was used, and what is named
    line = main_error(capsys, ["run", DEMO, "--set", "workers=-3", "--set", "workers=-2"], "--set workers=-2:")
    assert "workers=-3" not in line


def test_a_bad_file_is_still_named_not_a_good_override(tmp_path, capsys):
    cfg = tmp_path / "run.yaml"
    cfg.write_text("source: x.txt\ntrain:\n  lr: -1\n")
    line = main_error(capsys, ["run", cfg, "--set", "train.max_update=2000", "--set", "workers=2"],
                      f"error: {cfg}: train: lr=-1.0 must be > 0",
                      f"fix: correct train.lr in {cfg}, or override it with --set train.lr=VALUE")
    assert "max_update" not in line and "workers" not in line
    # and an override can repair the file
    assert PipelineConfig.load(cfg, ["train.lr=0.001"]).train.lr == 0.001


# -- config show -------------------------------------------------------------------------------------------------------
def test_show_annotates_every_field_and_names_the_stages_a_change_reruns(capsys):
    plain = show(capsys)
    lr = show(capsys, "--set", "train.lr=3e-4")
    runtime = show(capsys, "--set", "train.log_interval=7", "--workers", "3")
    h0, h1, h2 = hashes(plain), hashes(lr), hashes(runtime)
    assert set(h0) == {"corpus", "spm", "importhf", "preprocess", "train", "convert", "finetune"}
    assert [s for s in h0 if h0[s] != h1[s]] == ["train"] and h2 == h0
    assert "# the overrides change the identity of: train " in lr
    assert "# the overrides change no stage's identity" in runtime
    assert re.search(r"^  lr: 0\.0003 +# identity$", lr, flags=re.M), lr
    assert re.search(r"^  log_interval: 7 +# run-time$", runtime, flags=re.M)
    assert re.search(r"^workers: 3 +# run-time$", runtime, flags=re.M)
    assert re.search(r"^  encoding: utf-8 +# identity \(left out of the identity at this value\)$", plain, flags=re.M)
    body = [l for l in plain.splitlines() if l and not l.startswith("#") and not l.endswith(":")]
    assert body and all(re.search(r" # (identity|run-time)", l) for l in body), body
    assert "overrides change" not in plain


def test_show_json(capsys):
    out = json.loads(show(capsys, "--set", "train.lr=3e-4", "--json"))
    cfg = PipelineConfig.load(DEMO, ["train.lr=3e-4"])
    assert out["config"] == json.loads(json.dumps(cfg.to_dict()))
    assert out["stage_identity_sha256"] == cfg.stage_identities()
    assert out["classes"]["train.lr"] == "identity" and out["classes"]["workdir"] == "run-time"


@pytest.mark.parametrize("preset", ["demo", "small", "base", "koroberta-8k"])
def test_shown_config_reloads_to_the_same_config(tmp_path, capsys, preset):
    path = DEMO.parent / f"{preset}.yaml"
    # strings YAML would read as something else must come back as the same strings
    sets = ["train.lr=3e-4", "train.adam_betas=[0.9,0.98]", "corpus={valid_fraction: 0.01}",
            "convert.model_name='yes'", 'convert.data_description="a: b #c"', "workdir=runs/x"]
    assert main(["config", "show", str(path), *[a for s in sets for a in ("--set", s)]]) == 0
    saved = tmp_path / "resolved.yaml"
    saved.write_text(capsys.readouterr().out, encoding="utf-8")
    want, got = PipelineConfig.load(path, sets), PipelineConfig.load(saved)
    assert got == want and got.stage_identities() == want.stage_identities()
    assert (got.convert.model_name, got.convert.data_description) == ("yes", "a: b #c")


def test_run_set_reaches_the_stage_config(tmp_path, capsys, monkeypatch):
    """What `run` hands to run_pipeline (which gives each stage ``getattr(cfg, stage)``) carries the overrides."""
    import koroberta.pipeline as pipeline

    seen = {}

    def fake_run(cfg, **kw):
        seen["cfg"], seen["until"] = cfg, kw["until"]
        return {}

    monkeypatch.setattr(pipeline, "run_pipeline", fake_run)
    monkeypatch.setattr(pipeline, "format_summary", lambda summary: "done")
    assert main(["run", str(DEMO), "--set", "corpus.valid_fraction=0.01", "--set", "train.lr=3e-4",
                 "--set", f"workdir={tmp_path}", "--workers", "2", "--until", "corpus"]) == 0
    cfg = seen["cfg"]
    assert (cfg.corpus.valid_fraction, cfg.train.lr, cfg.workdir, cfg.workers) == (0.01, 3e-4, str(tmp_path), 2)
    assert seen["until"] == "corpus" and capsys.readouterr().out.strip() == "done"


def test_config_show_errors_like_run(tmp_path, capsys):
    main_error(capsys, ["config", "show", tmp_path / "nope.yaml"], "config file not found")
