"""Atomic stage outputs: a marker written last, tied to config and inputs; failures leave nothing behind."""

import json
import os
import subprocess
import sys
import textwrap

import pytest

from koroberta.artifacts import (MARKER, MANIFEST, StageOutput, fingerprint, is_complete, read_manifest,
                                 remove_stale_tmp)
from koroberta.errors import OutputError


def make(out, inp, cfg, text="hello"):
    with StageOutput(out, stage="demo", config=cfg, inputs={"src": inp}) as st:
        (st.tmp / "a.txt").write_text(text)
        st.stats["n"] = len(text)
    return st.manifest


def test_complete_output_and_marker(tmp_path):
    inp = tmp_path / "in.txt"
    inp.write_text("x")
    out = tmp_path / "out"
    m = make(out, inp, {"k": 1})
    assert (out / MARKER).is_file() and (out / "a.txt").read_text() == "hello"
    assert m["outputs"]["a.txt"]["bytes"] == 5 and m["stats"] == {"n": 5}
    assert is_complete(out, "demo", {"k": 1}, {"src": inp})
    assert not is_complete(out, "demo", {"k": 2}, {"src": inp}), "a marker for another config must not count"
    assert not is_complete(out, "other", {"k": 1}, {"src": inp})
    inp.write_text("y")
    assert not is_complete(out, "demo", {"k": 1}, {"src": inp}), "changed input must invalidate"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_manifest_is_deterministic(tmp_path):
    inp = tmp_path / "in.txt"
    inp.write_text("x")
    make(tmp_path / "o1", inp, {"k": 1})
    make(tmp_path / "o2", inp, {"k": 1})
    assert (tmp_path / "o1" / MANIFEST).read_bytes() == (tmp_path / "o2" / MANIFEST).read_bytes()
    assert fingerprint(tmp_path / "o1") == fingerprint(tmp_path / "o2")


def test_failure_keeps_previous_output(tmp_path):
    inp = tmp_path / "in.txt"
    inp.write_text("x")
    out = tmp_path / "out"
    make(out, inp, {"k": 1})
    with pytest.raises(RuntimeError):
        with StageOutput(out, stage="demo", config={"k": 2}, inputs={"src": inp}) as st:
            (st.tmp / "a.txt").write_text("partial")
            raise RuntimeError("boom")
    assert (out / "a.txt").read_text() == "hello" and is_complete(out, "demo", {"k": 1}, {"src": inp})
    assert not any(p.name.startswith(".out.tmp") for p in tmp_path.iterdir())


def test_edited_manifest_is_not_complete(tmp_path):
    inp = tmp_path / "in.txt"
    inp.write_text("x")
    out = tmp_path / "out"
    make(out, inp, {"k": 1})
    m = json.loads((out / MANIFEST).read_text())
    m["stats"]["n"] = 99
    (out / MANIFEST).write_text(json.dumps(m))
    assert read_manifest(out) is None


def test_foreign_directory_is_refused(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    (tmp_path / "in.txt").write_text("x")
    with pytest.raises(OutputError, match="files koroberta did not write"):
        make(out, tmp_path / "in.txt", {})
    assert (out / "notes.txt").read_text() == "mine"
    with StageOutput(out, stage="demo", config={}, inputs={}, overwrite=True) as st:
        (st.tmp / "b").write_text("b")
    assert sorted(p.name for p in out.iterdir()) == sorted(["b", MARKER, MANIFEST, "timing.json"])


def test_killed_stage_never_looks_complete(tmp_path):
    """SIGKILL in the middle of a stage: no marker, stale tmp removed by the next run, which completes."""
    out = tmp_path / "out"
    script = textwrap.dedent(f"""
        import os, signal
        from koroberta.artifacts import StageOutput
        with StageOutput({str(out)!r}, stage="demo", config={{}}, inputs={{}}) as st:
            (st.tmp / "a.txt").write_text("half")
            os.kill(os.getpid(), signal.SIGKILL)
    """)
    r = subprocess.run([sys.executable, "-c", script])
    assert r.returncode == -9
    assert not out.exists() and len(list(tmp_path.glob(".out.tmp-*"))) == 1
    assert read_manifest(out) is None
    remove_stale_tmp(out)
    assert list(tmp_path.glob(".out.tmp-*")) == []


# -- who may write where (issue: nothing lost) ------------------------------------------------------------------------
def _stage_dir(path, stage: str, files: dict[str, str] | None = None):
    """A complete output of ``stage`` at ``path`` (what any stage leaves)."""
    with StageOutput(path, stage=stage, config={}, inputs={}) as st:
        for name, text in (files or {"out.txt": stage}).items():
            (st.tmp / name).write_text(text)
    return path


def _snapshot(root) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_another_stages_output_is_never_replaced(tmp_path):
    from koroberta.artifacts import check_output_location

    other = _stage_dir(tmp_path / "spm", "spm")
    before = _snapshot(tmp_path)
    for overwrite in (False, True):
        with pytest.raises(OutputError, match=r"holds the output of the spm stage, not of convert.*not even with "
                                              r"--overwrite"):
            with StageOutput(other, stage="convert", config={}, inputs={}, overwrite=overwrite) as st:
                (st.tmp / "x").write_text("x")
    assert _snapshot(tmp_path) == before
    check_output_location(other, "spm")  # the same stage replaces its own output (another identity, --force)
    _stage_dir(other, "spm", {"new.txt": "new"})
    assert (other / "new.txt").is_file() and not (other / "out.txt").exists()


def test_a_corpus_step_replaces_only_the_same_step(tmp_path):
    from koroberta.artifacts import check_output_location

    _stage_dir(tmp_path / "extract", "corpus.extract")
    check_output_location(tmp_path / "extract", "corpus.extract")
    with pytest.raises(OutputError, match="corpus.extract stage, not of corpus.split"):
        check_output_location(tmp_path / "extract", "corpus.split")


def test_never_over_into_or_above_an_input(tmp_path):
    from koroberta.artifacts import check_output_location

    split = tmp_path / "mine"
    split.mkdir()
    (split / "train.txt").write_text("x\n")
    cases = {split / "train.txt": "is this stage's input", split: "holds this stage's input",
             tmp_path: "holds this stage's input"}
    for out, why in cases.items():
        with pytest.raises(OutputError, match=why):
            check_output_location(out, "spm", {"train": split / "train.txt"}, overwrite=True)
    with pytest.raises(OutputError, match="lies inside this stage's input model_dir"):
        check_output_location(split / "sub", "eval", {"model_dir": split}, overwrite=True)
    assert (split / "train.txt").read_text() == "x\n"
    check_output_location(tmp_path / "elsewhere", "spm", {"train": split / "train.txt"})  # a sibling is fine


def test_never_inside_another_stages_output(tmp_path):
    from koroberta.artifacts import check_output_location

    split = _stage_dir(tmp_path / "split", "corpus.split")
    with pytest.raises(OutputError, match=r"lies inside .*split, the output of the corpus.split stage"):
        check_output_location(split / "vocab", "spm")
    train = tmp_path / "checkpoints"  # a training run in progress: no manifest yet, its state file names it
    train.mkdir()
    (train / "train_config.json").write_text("{}")
    with pytest.raises(OutputError, match="the output of the train stage"):
        check_output_location(train / "hf", "convert")


def test_a_directory_holding_other_stages_outputs_is_refused_even_with_overwrite(tmp_path):
    from koroberta.artifacts import check_output_location

    run = tmp_path / "run"
    _stage_dir(run / "spm", "spm")
    _stage_dir(run / "corpus" / "split", "corpus.split")
    (run / "summary.json").write_text("{}")
    before = _snapshot(run)
    with pytest.raises(OutputError, match=r"holds the outputs of other stages: spm \(spm\), corpus/split \(corpus.split\)"):
        with StageOutput(run, stage="convert", config={}, inputs={}, overwrite=True):
            pass
    assert _snapshot(run) == before
    # the corpus directory may hold its own steps, and foreign files there still need --overwrite
    check_output_location(run / "corpus", "corpus", nested_ok=("corpus",))
    (run / "corpus" / "notes.txt").write_text("mine")
    with pytest.raises(OutputError, match="notes.txt"):
        check_output_location(run / "corpus", "corpus", nested_ok=("corpus",))


def test_lock_refuses_a_second_writer_and_is_released(tmp_path):
    from koroberta.artifacts import output_lock

    out = tmp_path / "hf"
    with output_lock(out):
        with pytest.raises(OutputError, match="another koroberta process is writing this output"):
            with StageOutput(out, stage="convert", config={}, inputs={}):
                pass
        assert not out.exists()
    with pytest.raises(RuntimeError):  # a failing stage releases its lock too
        with StageOutput(out, stage="convert", config={}, inputs={}):
            raise RuntimeError("boom")
    _stage_dir(out, "convert")  # both released: the next writer gets it
    assert read_manifest(out)["stage"] == "convert"


def test_lock_is_held_across_processes(tmp_path):
    """A second process (a second `koroberta run` of the same config) is refused while the first writes."""
    from koroberta.artifacts import output_lock

    out = tmp_path / "data-bin"
    code = textwrap.dedent(f"""
        import sys
        from koroberta.artifacts import StageOutput
        from koroberta.errors import OutputError
        try:
            with StageOutput({str(out)!r}, stage="preprocess", config={{}}, inputs={{}}):
                pass
        except OutputError as e:
            print(e); sys.exit(2)
    """)
    with output_lock(out):
        r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 2 and "another koroberta process" in r.stdout, r.stdout + r.stderr
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr  # released when the holder let go (or died)
