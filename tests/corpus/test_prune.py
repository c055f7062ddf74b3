"""The corpus's intermediates are removed once the whole stage is complete (issue 24, item 5), a rerun still skips
every step, and a change that needs them again redoes them -- by itself on one machine, with ``--restore`` for the
step commands of a SLURM array."""

import json
import shutil
from pathlib import Path

import pytest

from koroberta.artifacts import read_manifest
from koroberta.cli import main
from koroberta.corpus.prune import PRUNED

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
DATA = {"extract": "docs.jsonl", "clean": "docs.jsonl", "sentences": "sentences.jsonl"}


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Path:
    """12 real kowiki paragraphs as documents (a blank line between them): kss takes about a second."""
    docs = (FIXTURES / "kowiki-docs.txt").read_text(encoding="utf-8").split("\n\n")[:12]
    p = tmp_path_factory.mktemp("prune-src") / "docs.txt"
    p.write_text("\n\n".join(docs) + "\n", encoding="utf-8")
    return p


def _ok(argv: list) -> None:
    assert main([str(a) for a in argv]) == 0, argv


def _build(source: Path, out: Path, *extra) -> None:
    _ok(["corpus", "build", source, out, "--workers", "1", "--min-chars", "20", "--no-report", *extra])


def _files(d: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(d.glob("*.txt"))}


def _stamps(out: Path) -> dict[Path, int]:
    return {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def fresh(source, tmp_path_factory) -> Path:
    """A fresh build with another valid fraction: what redoing the removed steps must give."""
    out = tmp_path_factory.mktemp("fresh") / "corpus"
    _build(source, out, "--valid-fraction", "0.3")
    return out


@pytest.fixture(scope="module")
def kept(source, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("kept") / "corpus"
    _build(source, out, "--keep-intermediates")
    return out


def test_intermediates_are_removed_once_split_is_complete(source, kept, tmp_path):
    out = tmp_path / "corpus"
    _build(source, out)
    for step, name in DATA.items():
        assert (kept / step / name).stat().st_size > 0  # kept on request
        assert not (out / step / name).exists()
        note = json.loads((out / step / PRUNED).read_text())
        assert note["removed"] == {name: (kept / step / name).stat().st_size}
        # the manifest stays complete, with the hashes of what was removed: downstream fingerprints do not move
        for key in ("outputs", "identity_sha256", "stats"):
            assert read_manifest(out / step)[key] == read_manifest(kept / step)[key]
    assert _files(out / "split") == _files(kept / "split") and _files(kept / "split")
    # the same build again skips every step: nothing rewritten, nothing restored
    before = _stamps(out)
    _build(source, out)
    assert _stamps(out) == before


def test_a_corpus_built_with_the_intermediates_sheds_them_when_asked(source, kept, tmp_path):
    out = tmp_path / "corpus"
    shutil.copytree(kept, out)
    split = _stamps(out / "split")
    _build(source, out)  # every step complete: only the removal happens
    assert not (out / "sentences" / "sentences.jsonl").exists() and _stamps(out / "split") == split


def test_a_split_change_redoes_the_removed_steps_on_one_machine(source, fresh, tmp_path, capsys):
    out = tmp_path / "corpus"
    _build(source, out)
    capsys.readouterr()
    _build(source, out, "--valid-fraction", "0.3")
    assert "redoing the removed steps" in capsys.readouterr().err
    assert _files(out / "split") == _files(fresh / "split")
    assert not (out / "sentences" / "sentences.jsonl").exists()  # removed again at the end


def test_step_commands_refuse_with_the_fix_then_restore(source, kept, fresh, tmp_path, capsys):
    """The SLURM array's commands: a resubmitted extract skips its pruned shard; a split that must run names
    --restore; the four commands with --restore give what a fresh build gives."""
    out = tmp_path / "corpus"
    _build(source, out)
    steps = [["corpus", "extract", source, out, "--workers", "1", "--min-chars", "20"],
             ["corpus", "clean", out], ["corpus", "sentences", out, "--workers", "1"],
             ["corpus", "split", out, "--no-report", "--valid-fraction", "0.3"]]
    before = _stamps(out / "extract")
    _ok(steps[0])
    assert _stamps(out / "extract") == before and not (out / "extract" / "docs.jsonl").exists()
    capsys.readouterr()
    assert main([str(a) for a in steps[3]]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "sentences" in err and "--restore" in err
    for argv in steps:
        _ok([*argv, "--restore"])
    assert _files(out / "split") == _files(fresh / "split")
    assert _files(out / "split") != _files(kept / "split")  # the change did change the split
