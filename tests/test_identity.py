"""Stage identity: every config field is classified, and completion keys on identity + input *contents* only."""

import dataclasses
import importlib
import pkgutil
import shutil
from pathlib import Path

import pytest

import koroberta
from koroberta.artifacts import StageOutput, fingerprint, is_complete, read_manifest
from koroberta.config import Config, available_cpus, option


def _all_config_classes():
    for mod in pkgutil.walk_packages(koroberta.__path__, "koroberta."):
        if not mod.name.endswith("__main__"):  # importing it would run the CLI
            importlib.import_module(mod.name)
    seen, todo = [], list(Config.__subclasses__())
    while todo:
        c = todo.pop()
        if c not in seen and c.__module__.startswith("koroberta."):
            seen.append(c)
        todo += c.__subclasses__()
    return seen


def test_every_field_of_every_stage_config_is_classified():
    classes = _all_config_classes()
    names = {c.__name__ for c in classes}
    assert {"CorpusConfig", "SpmConfig", "PreprocessConfig", "TrainConfig", "ConvertConfig", "FinetuneConfig",
            "PipelineConfig"} <= names
    problems = [p for c in classes for p in c.classification_problems()]
    assert problems == []


def test_unclassified_field_is_caught():
    @dataclasses.dataclass
    class Half(Config):
        IDENTITY = ("a",)
        a: int = option(1)
        b: int = option(2)

    assert Half.classification_problems() == ["Half.b: not classified as identity or run-time"]
    with pytest.raises(TypeError, match="Half.b"):
        Half().identity()


@dataclasses.dataclass
class Toy(Config):
    SECTION = "toy"
    IDENTITY = ("size",)
    RUNTIME = ("threads",)
    size: int = option(3)
    threads: int = option(1)


def _make(out, cfg, src):
    with StageOutput(out, stage="toy", config=cfg, inputs={"src": src}) as st:
        (st.tmp / "out.txt").write_text(src.read_text() * cfg.size)
    return out


def test_completion_ignores_runtime_fields_and_paths(tmp_path):
    src = tmp_path / "a" / "src.txt"
    src.parent.mkdir()
    src.write_text("x")
    out = _make(tmp_path / "o", Toy(), src)
    assert is_complete(out, "toy", Toy(threads=8), {"src": src})  # a run-time change
    moved = tmp_path / "b" / "renamed.txt"
    moved.parent.mkdir()
    shutil.copy(src, moved)
    copy = tmp_path / "elsewhere" / "o"
    shutil.copytree(out, copy)
    assert is_complete(copy, "toy", Toy(), {"src": moved})  # run dir copied, input moved: still complete
    assert not is_complete(out, "toy", Toy(size=4), {"src": src})  # identity
    moved.write_text("y")
    assert not is_complete(copy, "toy", Toy(), {"src": moved})  # content


def test_stage_fingerprint_is_its_outputs_not_its_manifest(tmp_path):
    src = tmp_path / "src.txt"
    src.write_text("x")
    a = _make(tmp_path / "a", Toy(threads=1), src)
    other_src = tmp_path / "elsewhere.txt"
    other_src.write_text("x")
    b = _make(tmp_path / "b", Toy(threads=4), other_src)
    assert read_manifest(a) != read_manifest(b)  # paths and run-time knobs are recorded ...
    assert fingerprint(a) == fingerprint(b)  # ... but downstream sees only the output bytes
    c = _make(tmp_path / "c", Toy(size=2), src)
    assert fingerprint(c) != fingerprint(a)


def test_available_cpus_follows_affinity_and_slurm(monkeypatch):
    import os

    monkeypatch.delenv("SLURM_CPUS_PER_TASK", raising=False)
    assert available_cpus() == len(os.sched_getaffinity(0))
    monkeypatch.setenv("SLURM_CPUS_PER_TASK", "1")
    assert available_cpus() == 1


def test_workers_zero_uses_the_affinity_mask_not_cpu_count(tmp_path):
    """`taskset -c 0` gives one CPU: `workers: 0` must mean 1 there, whatever os.cpu_count() says."""
    import subprocess
    import sys

    code = "from koroberta.pipeline import PipelineConfig; print(PipelineConfig(source='x').n_workers)"
    r = subprocess.run(["taskset", "-c", "0", sys.executable, "-c", code], capture_output=True, text=True,
                       cwd=Path(__file__).resolve().parents[1])
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "1"
