"""The `koroberta` command line: the module graph behind it, and the convention its commands share (README,
"Command-line conventions"): positional paths, whose old option spellings keep working, `--workers 0` = the CPUs
this process may use, and the corpus steps under their own names."""

from __future__ import annotations

import argparse
import ast
import subprocess
import sys
from pathlib import Path

import pytest

from cli_errors import main_error

PACKAGE = Path(__file__).resolve().parents[1] / "koroberta"


# -- the import graph ------------------------------------------------------------------------------------------------
def import_graph(root: Path = PACKAGE) -> dict[str, set[str]]:
    """module -> the koroberta modules it imports, from every ``import koroberta...`` and ``from koroberta... import``
    statement of its source, at module level or inside a function (a lazy import is still an edge: whichever of two
    modules runs first, the other one imports it back)."""
    names = {}
    for path in root.rglob("*.py"):
        parts = path.relative_to(root.parent).with_suffix("").parts
        names[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    graph: dict[str, set[str]] = {}
    for name, path in names.items():
        edges = graph.setdefault(name, set())
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.Import):
                edges |= {a.name for a in node.names if a.name in names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module in names:
                edges.add(node.module)
                # `from koroberta.train import cli` imports the module koroberta.train.cli
                edges |= {f"{node.module}.{a.name}" for a in node.names if f"{node.module}.{a.name}" in names}
    return graph


def reaches(graph: dict[str, set[str]], start: str, goal: str) -> bool:
    seen, todo = set(), [start]
    while todo:
        m = todo.pop()
        if m == goal:
            return True
        if m not in seen:
            seen.add(m)
            todo.extend(graph.get(m, ()))
    return False


def test_import_graph_sees_top_level_and_function_level_imports(tmp_path):
    pkg = tmp_path / "koroberta"
    (pkg / "train").mkdir(parents=True)
    for f in ("__init__.py", "train/__init__.py"):
        (pkg / f).write_text("")
    (pkg / "cli.py").write_text("def main():\n    from koroberta.train.cli import hook\n")
    (pkg / "train" / "cli.py").write_text("from koroberta import cli\nimport koroberta.train\n")
    g = import_graph(pkg)
    assert g["koroberta.cli"] == {"koroberta.train.cli"}
    assert g["koroberta.train.cli"] == {"koroberta", "koroberta.cli", "koroberta.train"}
    assert reaches(g, "koroberta.cli", "koroberta.train.cli") and reaches(g, "koroberta.train.cli", "koroberta.cli")


def test_koroberta_cli_is_in_no_import_cycle():
    """koroberta.cli finds the stage modules by name (STAGE_MODULES) and imports none of them, so a stage module may
    import it (train.cli does, for `python -m koroberta.train.cli`) without a cycle."""
    g = import_graph()
    assert "koroberta.train.cli" in g and "koroberta.cli" in g
    assert not reaches(g, "koroberta.cli", "koroberta.train.cli")
    back = [m for m in g["koroberta.cli"] if reaches(g, m, "koroberta.cli")]
    assert not back, f"koroberta.cli is in an import cycle through {back}"


def test_stage_argv_hooks_are_found_by_name():
    from koroberta.cli import _build
    from koroberta.train.cli import rewrite_argv

    _, hooks = _build(["koroberta.spm.cli", "koroberta.train.cli"])
    assert [h.__name__ for h in hooks] == [rewrite_argv.__name__]
    assert hooks[0](["-v", "train", "c.yaml"]) == ["-v", "train", "run", "c.yaml"]


def test_python_m_train_cli_still_runs_koroberta_train():
    r = subprocess.run([sys.executable, "-m", "koroberta.train.cli", "report", "--help"], capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0 and "usage: koroberta train report" in r.stdout, r.stderr


# -- positional paths and their old option spellings -------------------------------------------------------------------
def _toy() -> argparse.ArgumentParser:
    from koroberta.cli import path_arguments

    parser = argparse.ArgumentParser(prog="koroberta toy")
    path_arguments(parser, lambda a: (a.model, a.dict, a.out), ("model", "model file", "--model"),
                   ("dict", "dict file"), ("out", "output directory", "--out"))
    parser.add_argument("--size", type=int)
    return parser


@pytest.mark.parametrize("argv", [
    ["M", "D", "O"],
    ["M", "--size", "3", "D", "O"],  # a positional after an option still takes its value
    ["--size", "3", "M", "D", "O", "--out", "O/"],  # an option repeating a positional
    ["--model", "M", "--out", "O", "D"],  # the old spelling
    ["D", "O", "--model", "M"],  # mixed: the positionals fill the paths not given as options, in order
])
def test_paths_positional_or_old_option(argv):
    args = _toy().parse_args(argv)
    assert args.func(args) == ("M", "D", "O")


@pytest.mark.parametrize("argv, needles", [
    ([], ("MODEL DICT OUT not given", "`koroberta toy MODEL DICT OUT`")),
    (["--model", "M", "D"], ("OUT not given",)),
    (["M", "D", "O", "--out", "P"], ("OUT given twice, as O and as --out P",)),
    (["D", "--model", "M", "--out", "M"], ("M: given to", "as both MODEL and OUT")),
])
def test_paths_missing_or_given_twice(argv, needles):
    from koroberta.errors import ConfigError

    args = _toy().parse_args(argv)
    with pytest.raises(ConfigError) as e:
        args.func(args)
    assert " — fix: " in str(e.value) and "\n" not in str(e.value)
    for n in needles:
        assert n in str(e.value), str(e.value)


def test_old_option_spellings_are_hidden_from_help():
    from koroberta.cli import build_parser

    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)).choices
    spm = next(a for a in sub["spm"]._actions if isinstance(a, argparse._SubParsersAction)).choices
    pre = next(a for a in sub["preprocess"]._actions if isinstance(a, argparse._SubParsersAction)).choices
    for parser, shown, hidden in ((spm["train"], "TRAIN_TEXT OUT", ("--train-text", "--out")),
                                  (spm["import-legacy"], "SPM_MODEL DICT OUT", ("--spm-model", "--dict", "--out")),
                                  (sub["convert"], "CHECKPOINT VOCAB_DIR OUT", ("--vocab-dir",)),
                                  (pre["encode"], "SPM_MODEL INPUT OUTPUT", ("--spm-model",))):
        text = parser.format_help()
        assert text.split("\n\n")[0].rstrip().endswith(shown), text
        assert not [h for h in hidden if h in text], text


@pytest.mark.parametrize("argv", [
    ["spm", "train", "{d}/train.txt", "{d}/spm"],
    ["spm", "train", "--train-text", "{d}/train.txt", "--out", "{d}/spm"],
    ["spm", "train", "{d}/train.txt", "--vocab-size", "100", "{d}/spm"],
])
def test_spm_train_paths(capsys, tmp_path, argv):
    """Each spelling reaches the trainer with the same paths (which refuses a missing train text, naming it)."""
    main_error(capsys, [a.format(d=tmp_path) for a in argv], f"{tmp_path}/train.txt: train split not found",
               out=tmp_path / "spm")


def test_spm_train_path_given_twice(capsys, tmp_path):
    main_error(capsys, ["spm", "train", tmp_path / "t.txt", tmp_path / "a", "--out", tmp_path / "b"],
               f"OUT given twice, as {tmp_path / 'a'} and as --out {tmp_path / 'b'}",
               "koroberta spm train TRAIN_TEXT OUT")
    main_error(capsys, ["spm", "import-legacy", "--spm-model", tmp_path / "m", "--dict", tmp_path / "d"],
               "OUT not given", "koroberta spm import-legacy SPM_MODEL DICT OUT")


# -- corpus: --workers, and the steps under their own names ---------------------------------------------------------
def test_corpus_workers_zero_is_the_cpus_this_process_may_use(monkeypatch):
    from koroberta.config import available_cpus
    from koroberta.corpus.cli import _workers
    from koroberta.errors import ConfigError

    monkeypatch.setenv("SLURM_CPUS_PER_TASK", "1")
    assert available_cpus() == 1 and _workers(argparse.Namespace(workers=0)) == 1
    assert _workers(argparse.Namespace(workers=3)) == 3
    with pytest.raises(ConfigError, match="--workers -1"):
        _workers(argparse.Namespace(workers=-1))


def test_corpus_split_old_shard_spelling_names_sentences(capsys, tmp_path):
    main_error(capsys, ["corpus", "split", tmp_path / "c", "--shard", "1", "--num-shards", "4"],
               "per-shard sentence split is now its own step",
               f"koroberta corpus sentences {tmp_path / 'c'} --shard 1 --num-shards 4", out=tmp_path / "c")


@pytest.mark.parametrize("merge", [[], ["--merge"]])
def test_corpus_split_merges_the_sentence_shards(capsys, tmp_path, merge):
    """`corpus split` (and its old spelling `split --merge`) is the train/valid/test step: with no sentence shards
    yet it says which step to run for which shard."""
    main_error(capsys, ["corpus", "split", tmp_path, "--num-shards", "2", *merge],
               "2 of 2 sentences shard(s) incomplete", "koroberta corpus sentences", out=tmp_path / "split")


def test_corpus_sentences_is_the_kss_step(capsys, tmp_path):
    main_error(capsys, ["corpus", "sentences", tmp_path, "--shard", "1", "--num-shards", "2"],
               "clean step output missing", out=tmp_path / "sentences-00001-of-00002")


def test_preprocess_encode_and_convert_take_their_inputs_positionally(tmp_path, tiny_vocab, tiny_split,
                                                                      tiny_checkpoint):
    """The forms the README's convention gives (the old `--spm-model`/`--vocab-dir` spellings: tests/preprocess,
    tests/convert)."""
    from koroberta.cli import main

    out = tmp_path / "valid.spm"
    assert main(["preprocess", "encode", str(tiny_vocab / "spm.model"), str(tiny_split / "valid.txt"), str(out),
                 "--workers", "1", "--no-progress"]) == 0
    assert out.read_text(encoding="utf-8").count("\n") == (tiny_split / "valid.txt").read_text().count("\n")
    assert main(["convert", str(tiny_checkpoint), str(tiny_vocab), str(tmp_path / "hf"), "--no-parity"]) == 0
    assert (tmp_path / "hf" / "model.safetensors").is_file() and (tmp_path / "hf" / "tokenizer.json").is_file()
