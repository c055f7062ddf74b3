"""Every shell command README.md shows is run by a test.

The README is the user's first script, so a command that fails as written is a bug. This module

* extracts every shell command from README.md (:func:`parse_readme`): the lines of fenced code blocks that start
  with a command word (the ASCII diagram and the layout tree have none; ``python`` blocks are snippets, run below), and
  inline code in prose and tables that starts with one (``make …``, ``koroberta …``, ``scripts/…``, ``NGPU=8 …``);
* keeps a registry (:data:`REGISTRY`) saying how each one is exercised:

  ``run``      executed as written by the named function here, in a sandbox directory laid out like the checkout
               (``.venv`` linked, ``configs/`` and ``scripts/`` copied) on the tiny fixtures. A synopsis line with
               placeholders (``CONFIG.yaml``, ``DATA_BIN``, ``[--until STAGE]``) is a *form*: :func:`instantiate` turns
               it into concrete invocations mechanically, so each one provably comes from the README line;
  ``dry-run``  GPU-only (CUDA, 8 GPUs, a 4-node allocation): executed as written plus ``--dry-run``, so preflight
               (data-bin, dict/spm, recipe batch math, disk) parses it on this CPU machine;
  ``ci``       a make target that ``.ci/run`` (CI's entry point: ``make ci``) reaches: ``make test``,
               ``make test-cluster`` and the command in its recipe;
  ``cluster``  SLURM job submissions: the named test in ``tests/cluster`` (``make test-cluster``, a real local SLURM)
               reads the line from README.md and submits it;
  ``mention``  inline code that names a command or script without being a command line to run as is
               (``koroberta convert``, ``scripts/pretrain.slurm``); the named test checks the thing exists/does that;
  ``manual``   the by-hand cluster lines (``local_slurm.sh up/down``): need root, apt and daemons, so NOT executed;
               the named test checks the script takes them and that ``make test-cluster`` goes through the same code.

* fails (:func:`test_every_readme_command_is_registered`) when the README shows a command the registry lacks, and when
  a registry entry no longer appears in the README (stale), and checks each entry's test really contains it.

``make demo`` (the README's main command) runs for real (:func:`demo`), in a copy of the checkout so that an existing
``runs/demo`` can neither mask a regression nor be overwritten; the ``python`` snippets of "Using the exported model"
run against its export, as written.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.util
import inspect
import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
FIXTURES = REPO / "tests" / "fixtures"
VENV = REPO / ".venv"

# ======================================================================================================================
# the parser
# ======================================================================================================================
COMMAND_WORDS = {
    "make", "koroberta", "bash", "sh", "source", "export", "cd", "env", "python", "python3", "pip", "pip3", "uv",
    "conda", "git", "curl", "wget", "tensorboard", "torchrun", "fairseq-train", "fairseq-preprocess",
    "fairseq-hydra-train", "nvidia-smi", "sbatch", "srun", "salloc", "scontrol", "scancel", "squeue", "sinfo", "sacct",
    "docker", "apptainer", "singularity", "mkdir", "cp", "mv", "ln", "rm", "tar", "bunzip2", "bzip2", "echo", "cat",
    "ls", "head", "tail", "du", "df", "export",
}
COMMAND_PREFIXES = ("scripts/", "./", ".venv/bin/", "bench/", ".ci/")
ASSIGN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
SUBST = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=\$\((\S*)")  # A=$(sbatch ...
SHELL_LANGS = {"", "bash", "sh", "shell", "console", "zsh"}
PYTHON_LANGS = {"python", "py", "python3"}
FENCE = re.compile(r"^\s*```\s*([\w+-]*)\s*$")
INLINE = re.compile(r"(?<!`)`([^`]+)`(?!`)")
COMMENT = re.compile(r"\s+#(\s.*)?$")


def command_word(text: str) -> str | None:
    """The program a command line starts (after VAR=value assignments), or None when ``text`` is not one."""
    for w in text.split():
        m = SUBST.match(w)
        if m:
            return command_word(m.group(1) or text.split("$(", 1)[1])
        if ASSIGN.match(w):
            continue
        if w in COMMAND_WORDS or (w.startswith(COMMAND_PREFIXES) and not w.endswith("/")):
            return w
        return None
    return None


def only_assignments(text: str) -> bool:
    words = text.split()
    return bool(words) and all(ASSIGN.match(w) and not SUBST.match(w) for w in words)


@dataclass(frozen=True)
class Shown:
    """One command the README shows: its text (whitespace collapsed), line number, and where it stands."""
    text: str
    line: int
    where: str  # "block" | "inline"


@dataclass(frozen=True)
class Snippet:
    code: str
    line: int


@dataclass
class Parsed:
    commands: list[Shown]
    snippets: list[Snippet]
    unclassified: list[tuple[int, str]]  # lines of a shell block that are neither a command nor a comment


def parse_readme(text: str) -> Parsed:
    commands: list[Shown] = []
    snippets: list[Snippet] = []
    unclassified: list[tuple[int, str]] = []
    lines = text.split("\n")
    para: list[str] = []
    para_start = 0

    def prose() -> None:  # inline code may wrap onto the next line of its paragraph (or table row)
        joined = "\n".join(para)
        for m in INLINE.finditer(joined):
            span = " ".join(m.group(1).split())
            if command_word(span):
                commands.append(Shown(span, para_start + joined.count("\n", 0, m.start()) + 1, "inline"))
        para.clear()

    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            if not lines[i].strip():
                prose()
            else:
                if not para:
                    para_start = i
                para.append(lines[i])
            i += 1
            continue
        prose()
        lang, start = m.group(1).lower(), i + 1
        j = start
        while j < len(lines) and not FENCE.match(lines[j]):
            j += 1
        body = lines[start:j]
        i = j + 1
        if lang in PYTHON_LANGS:
            snippets.append(Snippet("\n".join(body) + "\n", start + 1))
            continue
        if lang not in SHELL_LANGS:
            continue
        # join continuation lines, drop prompts and comments
        logical: list[tuple[int, str]] = []
        buf, at = "", 0
        for k, raw in enumerate(body):
            line = raw.strip()
            if not buf:
                at = start + k + 1
            if line.endswith("\\"):
                buf += line[:-1] + " "
                continue
            logical.append((at, buf + line))
            buf = ""
        if buf:
            logical.append((at, buf))
        cleaned = []
        for n, line in logical:
            line = line[2:] if line.startswith("$ ") else line
            if not line or line.startswith("#"):
                continue
            cleaned.append((n, " ".join(COMMENT.sub("", line).split())))
        is_shell = any(command_word(t) for _, t in cleaned)
        if not is_shell:
            continue  # a diagram or a tree: no line starts a command
        for n, t in cleaned:
            if command_word(t) or only_assignments(t):
                commands.append(Shown(t, n, "block"))
            else:
                unclassified.append((n, t))
    prose()
    return Parsed(commands, snippets, unclassified)


def readme() -> Parsed:
    return parse_readme(README.read_text(encoding="utf-8"))


def readme_command(text: str) -> str:
    """``text`` exactly as the README shows it (fails when the README no longer does): what a test runs."""
    shown = {c.text for c in readme().commands}
    assert text in shown, f"README.md no longer shows {text!r}; update tests/test_readme.py"
    return text


# -- forms: synopsis lines with placeholders ---------------------------------------------------------------------------
PLACEHOLDER = re.compile(r"^(?:<[a-z_]+>|[A-Z][A-Z0-9_]*(?:\.[a-z]+)?)$")


def _tokens(form: str) -> list[str]:
    return re.findall(r"\[|\]|\||[^\s\[\]|]+", form)


def is_form(text: str) -> bool:
    return any(PLACEHOLDER.match(t) or t in ("[", "|", "...") for t in _tokens(text)[1:])


def instantiate(form: str, values: dict[str, str | list[str]], keep: tuple[str, ...] = (), pick: tuple[str, ...] = ()) -> str:
    """A concrete command from a README form: placeholders replaced by ``values``; an optional ``[...]`` group kept
    when its README text is in ``keep``; of ``a | b`` the one in ``pick``; ``X ...`` = one X. A placeholder without a
    value, or a ``keep``/``pick`` that matches nothing, is an error (so a changed form fails its test)."""
    toks = _tokens(form)
    used: set[str] = set()

    def resolve(pos: int) -> tuple[list[str], int]:
        """Tokens up to the matching ']' (or the end): kept groups spliced in, dropped ones removed."""
        out: list[str] = []
        while pos < len(toks):
            t = toks[pos]
            if t == "]":
                return out, pos + 1
            if t == "[":
                inner, pos = resolve(pos + 1)
                text = " ".join(inner)
                if text in keep:
                    used.add(text)
                    out.extend(inner)
                continue
            out.append(t)
            pos += 1
        return out, pos

    seq, _ = resolve(0)
    res: list[str] = []
    pos_of: dict[str, int] = {}
    k = 0
    while k < len(seq):
        t = seq[k]
        if k + 2 < len(seq) and seq[k + 1] == "|":
            chosen = [x for x in (t, seq[k + 2]) if x in pick]
            assert len(chosen) == 1, f"{form!r}: pick one of {t!r} | {seq[k + 2]!r}"
            used.add(chosen[0])
            res.append(chosen[0])
            k += 3
            continue
        if t == "..." and "..." in values:  # `cmd ...`: the rest of a command line
            res.append(values["..."])
        elif t != "...":
            if k > 0 and PLACEHOLDER.match(t):
                assert t in values, f"{form!r}: no value for {t}"
                v = values[t]
                if isinstance(v, list):  # the same placeholder at several places: values in order
                    assert pos_of.get(t, 0) < len(v), f"{form!r}: too few values for {t}"
                    v, pos_of[t] = v[pos_of.get(t, 0)], pos_of.get(t, 0) + 1
                res.append(v)
            else:
                res.append(t)
        k += 1
    missing = (set(keep) | set(pick)) - used
    assert not missing, f"{form!r}: {sorted(missing)} not in the form"
    return " ".join(res)


# ======================================================================================================================
# the registry: README command -> how it is exercised
# ======================================================================================================================
@dataclass(frozen=True)
class How:
    kind: str  # run | dry-run | ci | cluster | mention | manual
    by: str  # a function of this module (its source contains the command), a make target, or tests/cluster/FILE::TEST
    note: str = ""
    cluster: str = ""  # also submitted for real by this cluster test (tests/cluster/FILE::TEST)


RUN, DRY, CI, CLUSTER, MENTION, MANUAL = "run", "dry-run", "ci", "cluster", "mention", "manual"

REGISTRY: dict[str, How] = {
    # -- the two commands ------------------------------------------------------------------------------------------
    "make demo": How(RUN, "demo", "as written, in a copy of the checkout (fresh runs/demo)"),
    "make test": How(CI, "test", ".ci/run runs `make ci` = test + test-cluster"),
    "koroberta run configs/demo.yaml": How(RUN, "demo", "the Makefile's demo recipe; checked to be this line"),
    "make clean-demo": How(RUN, "test_make_clean_demo", "as written, next to a copy of the Makefile and a runs/demo"),
    # -- setup ------------------------------------------------------------------------------------------------------
    "make": How(MENTION, "test_mentioned_names", "`make` with no target = setup = scripts/setup_env.sh"),
    "scripts/setup_env.sh": How(MENTION, "test_mentioned_names", "what make calls; run by test_setup_env_command"),
    "pip install -e .[dev]": How(MENTION, "test_mentioned_names", "step 3 of scripts/setup_env.sh"),
    "TORCH_SPEC=torch==2.13.0 PIP_EXTRA_INDEX_URL=https://download.pytorch.org/whl/cu128 bash scripts/setup_env.sh":
        How(RUN, "test_setup_env_command", "as written on the current .venv: a no-op (the CUDA index is only "
                                           "contacted on a GPU machine's first install)"),
    "source .venv/bin/activate": How(RUN, "test_activate_then_koroberta", "and before every command sh() runs"),
    "pip install torch": How(MENTION, "test_mentioned_names", "the counter-example; setup_env.sh installs the pin"),
    # -- running stages (the synopsis block) -------------------------------------------------------------------------
    "koroberta run CONFIG.yaml [--until STAGE] [--force STAGE ...]": How(RUN, "_journey", "--until, and --force"),
    "koroberta run CONFIG.yaml --plan": How(RUN, "test_plan_command", "on configs/demo.yaml, in the checkout"),
    "koroberta corpus download downloads/ --date latest --multistream":
        How(RUN, "test_multistream_download_command", "+ the URLs of a local replica serving a multistream dump"),
    "koroberta corpus download downloads/ --wiki kowiki --date latest":
        How(RUN, "_journey", "+ --base-url/--checksum-base-url of a local dumps.wikimedia.org replica (no network)"),
    "koroberta corpus build DUMP OUT": How(RUN, "_journey"),
    "koroberta spm train TRAIN_TEXT OUT":
        How(RUN, "_journey", "+ --vocab-size 2000 --no-hard-vocab-limit --threads 1: the fixture cannot support 32k"),
    "koroberta preprocess run SPLIT_DIR VOCAB_DIR OUT": How(RUN, "_journey"),
    "koroberta train CONFIG.yaml [DATA_BIN SAVE_DIR] [--dry-run]":
        How(RUN, "_journey", "without paths (CPU-scaled config); with paths + --dry-run on base.yaml: gpu_dry_runs"),
    "koroberta train CONFIG.yaml DATA_BIN SAVE_DIR --extend | --restart": How(RUN, "_journey", "both"),
    "koroberta train report SAVE_DIR": How(RUN, "_journey"),
    "koroberta convert CHECKPOINT VOCAB_DIR OUT --parity-text VALID_TXT": How(RUN, "_journey"),
    "koroberta finetune nsmc MODEL_DIR ratings_train.txt OUT [--test-tsv ratings_test.txt]":
        How(RUN, "_journey", "with --test-tsv"),
    "koroberta eval TASK MODEL_DIR OUT --train FILE [--dev FILE] [--test FILE] [--seeds 3] [--model-card]":
        How(RUN, "_journey", "kornli on the eval fixtures, with --dev --seeds 3 --model-card"),
    "koroberta <stage> --help": How(RUN, "test_stage_help", "every subcommand koroberta registers"),
    "koroberta -v run ...": How(RUN, "_journey", "= koroberta -v run configs/base.yaml --until spm"),
    "koroberta": How(MENTION, "test_stage_help", "the command the venv provides"),
    "SOURCE=dump.xml.bz2 OUT=runs/corpus WORKERS=16 scripts/01_corpus.sh": How(RUN, "_journey"),
    "scripts/01_corpus.sh": How(MENTION, "test_mentioned_names", "the six stage scripts exist, executable"),
    "koroberta STAGE [STEP] INPUT... OUT [--config FILE.yaml] [--<field> VALUE ...]":
        How(MENTION, "test_command_line_conventions", "the shape every command's parser has; paths: tests/test_cli.py"),
    # -- GPU / node / cluster ----------------------------------------------------------------------------------------
    "koroberta train configs/base.yaml --ngpus 1 --update-freq 128": How(DRY, "gpu_dry_runs"),
    "NGPU=8 scripts/pretrain_torchrun.sh configs/base.yaml runs/base/data-bin runs/base/checkpoints":
        How(DRY, "gpu_dry_runs"),
    "torchrun --standalone": How(MENTION, "test_gpu_commands_preflight", "in the torchrun dry-run command"),
    "srun": How(MENTION, "test_gpu_commands_preflight", "in the pretrain.slurm dry-run command"),
    "scripts/corpus_array.slurm": How(MENTION, "test_mentioned_names", "exists; submitted by tests/cluster"),
    # -- full runs -----------------------------------------------------------------------------------------------------
    "koroberta run": How(MENTION, "test_stage_help"),
    "koroberta convert": How(MENTION, "test_stage_help"),
    "koroberta train report": How(MENTION, "test_stage_help", "per-subset losses: tests/train/test_valid_subsets.py"),
    "koroberta corpus backends": How(MENTION, "test_stage_help", "needs a text argument: --help"),
    "koroberta spm import-legacy": How(MENTION, "test_stage_help", "needs legacy files: --help"),
    "scripts/pretrain_torchrun.sh": How(MENTION, "test_mentioned_names"),
    "scripts/pretrain.slurm": How(MENTION, "test_mentioned_names"),
    "koroberta run CONFIG": How(RUN, "_journey", "= koroberta run configs/base.yaml after training"),
    "koroberta corpus download downloads/ --date latest": How(RUN, "_journey", "+ the local replica's URLs"),
    "koroberta run configs/base.yaml --until preprocess": How(RUN, "_journey", "CPU-scaled base.yaml in the sandbox"),
    "koroberta run configs/base.yaml": How(RUN, "_journey", "after training: convert + fine-tune, no retraining"),
    # -- overriding a config from the command line -------------------------------------------------------------------
    "koroberta config show configs/demo.yaml --set finetune.epochs=1":
        How(RUN, "test_config_show_command", "as written, in the checkout: prints only"),
    "koroberta run configs/demo.yaml --set finetune.epochs=1":
        How(RUN, "test_run_with_set_after_demo", "as written, in the demo copy after make demo: only finetune reruns"),
    # -- continue from an existing model -----------------------------------------------------------------------------
    "koroberta run configs/continue.yaml": How(RUN, "test_continue_from_an_existing_model",
                                               "CPU-scaled, on a local tiny klue-layout model and NSMC-format reviews"),
    "koroberta import-hf HF_DIR OUT [--parity-text VALID_TXT]": How(RUN, "test_continue_from_an_existing_model"),
    "koroberta import-hf HF_DIR OUT": How(RUN, "test_continue_from_an_existing_model"),
    "koroberta preprocess run SPLIT_DIR IMPORT_DIR OUT": How(RUN, "test_continue_from_an_existing_model"),
    "koroberta convert CHECKPOINT IMPORT_DIR OUT": How(RUN, "test_continue_from_an_existing_model"),
    # -- cluster jobs (SLURM) ------------------------------------------------------------------------------------------
    "sbatch --nodes=4 scripts/pretrain.slurm configs/base.yaml runs/base/data-bin runs/base/checkpoints --update-freq 4":
        How(DRY, "gpu_dry_runs", "its batch script + --dry-run inside the 4-node x 8-GPU allocation it asks for",
            cluster="tests/cluster/test_pretrain.py::test_readme_four_node_base_command_passes_preflight"),
    "sbatch": How(MENTION, "test_mentioned_names", "the scheduler's command (tests/cluster submits with it)"),
    "mkdir -p logs": How(RUN, "_journey", "with the export line, in the sandbox after the README's download"),
    "export CONFIG=configs/base.yaml SOURCE=$(ls downloads/kowiki-*-pages-articles.xml.bz2 | tail -n 1) "
    "OUT=runs/base/corpus-array N=16": How(RUN, "_journey", "CONFIG and SOURCE must name files the README's steps produce"),
    "A=$(sbatch --parsable --array=0-$((N-1)) --export=ALL,STEP=extract scripts/corpus_array.slurm)":
        How(CLUSTER, "tests/cluster/test_corpus_array.py::test_array_chain_fails_shard_resubmits_and_matches_one_machine_build"),
    "B=$(sbatch --parsable --dependency=afterok:$A --export=ALL,STEP=clean scripts/corpus_array.slurm)":
        How(CLUSTER, "tests/cluster/test_corpus_array.py::test_array_chain_fails_shard_resubmits_and_matches_one_machine_build"),
    "C=$(sbatch --parsable --dependency=afterok:$B --array=0-$((N-1)) --export=ALL,STEP=sentences "
    "scripts/corpus_array.slurm)":
        How(CLUSTER, "tests/cluster/test_corpus_array.py::test_array_chain_fails_shard_resubmits_and_matches_one_machine_build"),
    "D=$(sbatch --parsable --dependency=afterok:$C --export=ALL,STEP=split scripts/corpus_array.slurm)":
        How(CLUSTER, "tests/cluster/test_corpus_array.py::test_array_chain_fails_shard_resubmits_and_matches_one_machine_build"),
    "scancel $B $C $D": How(CLUSTER, "tests/cluster/test_corpus_array.py::"
                                     "test_array_chain_fails_shard_resubmits_and_matches_one_machine_build"),
    "squeue": How(MENTION, "test_mentioned_names", "the scheduler's queue listing (DependencyNeverSatisfied)"),
    "scontrol show node": How(MENTION, "test_mentioned_names", "pretrain.slurm asks it for NodeAddr"),
    "scontrol requeue": How(CLUSTER, "tests/cluster/test_pretrain.py::test_requeue_and_usr1_resume_and_the_run_finishes"),
    "sbatch --signal=B:USR1@SECONDS": How(MENTION, "test_mentioned_names",
                                          "pretrain.slurm traps USR1; tests/cluster sends it with scancel --signal"),
    "koroberta corpus build": How(MENTION, "test_stage_help"),
    # -- Korean benchmarks ---------------------------------------------------------------------------------------------
    "koroberta eval": How(MENTION, "test_stage_help"),
    "koroberta eval nsmc runs/demo/hf runs/demo/eval-nsmc --train data/demo/nsmc-demo.tsv --seeds 2 --epochs 1 "
    "--model-card": How(RUN, "test_eval_on_the_demo_export", "as written, in the demo copy after make demo"),
    "koroberta finetune nsmc": How(MENTION, "test_stage_help"),
    # -- tests ---------------------------------------------------------------------------------------------------------
    "make test-cluster": How(CI, "test-cluster", ".ci/run runs `make ci` = test + test-cluster"),
    "make ci": How(CI, "ci", "the line .ci/run runs"),
    ".ci/run": How(MENTION, "test_mentioned_names", "CI's entry point, executable"),
    "scripts/dev/local_slurm.sh": How(MENTION, "test_mentioned_names"),
    ".venv/bin/python -m pytest -q tests/cluster": How(CI, "test-cluster", "the test-cluster recipe's command"),
    # by hand: bring a cluster up / down around that command. Not executed by any test (root, apt, daemons); make
    # test-cluster runs the same cmd_up/cmd_down through `local_slurm.sh run --`.
    "scripts/dev/local_slurm.sh up /tmp/slurm-dev": How(MANUAL, "test_by_hand_cluster_lines"),
    "export SLURM_CONF=/tmp/slurm-dev/slurm.conf": How(MANUAL, "test_by_hand_cluster_lines"),
    "scripts/dev/local_slurm.sh down /tmp/slurm-dev": How(MANUAL, "test_by_hand_cluster_lines"),
}

#: how a cluster test (tests/cluster/FILE) selects the README line it submits: it reads README.md itself
CLUSTER_KEYS = {"test_corpus_array.py": 'readme_block("scripts/corpus_array.slurm")',
                "test_pretrain.py": 'readme_block("sbatch --nodes=4 scripts/pretrain.slurm")'}


# ======================================================================================================================
# meta-tests
# ======================================================================================================================
SAMPLE = """\
# title
```
a ─ b ─ c
```
Run `make demo`, not `koroberta/layout.py`; see `scripts/` and | `NGPU=2 scripts/x.sh A B` | table |.
Set `TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1`, then `koroberta train c.yaml
--ngpus 2` (wrapped) and `srun`.

```bash
$ koroberta run CONFIG.yaml [--until STAGE]     # all stages
# a comment line
N=8
A=$(sbatch --parsable --array=0-$((N-1)) scripts/x.slurm)
koroberta train C.yaml \\
    --dry-run
some output line
```

```python
print(1)
```

```
koroberta/      the package
scripts/        the scripts
```
"""


def test_parser_on_a_sample():
    p = parse_readme(SAMPLE)
    assert [(c.text, c.where) for c in p.commands] == [
        ("make demo", "inline"), ("NGPU=2 scripts/x.sh A B", "inline"),
        ("koroberta train c.yaml --ngpus 2", "inline"), ("srun", "inline"),
        ("koroberta run CONFIG.yaml [--until STAGE]", "block"), ("N=8", "block"),
        ("A=$(sbatch --parsable --array=0-$((N-1)) scripts/x.slurm)", "block"),
        ("koroberta train C.yaml --dry-run", "block")]
    assert [c.line for c in p.commands[:4]] == [5, 5, 6, 7]
    assert p.unclassified == [(16, "some output line")]
    assert p.snippets == [Snippet("print(1)\n", 20)]
    assert is_form("koroberta run CONFIG.yaml") and is_form("koroberta <stage> --help")
    assert not is_form("NGPU=8 scripts/pretrain_torchrun.sh configs/base.yaml runs/base/data-bin")


def test_instantiate():
    form = "koroberta run CONFIG.yaml [--until STAGE] [--force STAGE ...]"
    assert instantiate(form, {"CONFIG.yaml": "c.yaml", "STAGE": "spm"}) == "koroberta run c.yaml"
    assert instantiate(form, {"CONFIG.yaml": "c.yaml", "STAGE": "spm"}, keep=("--until STAGE", "--force STAGE ...")) \
        == "koroberta run c.yaml --until spm --force spm"
    alt = "koroberta train CONFIG.yaml DATA_BIN SAVE_DIR --extend | --restart"
    v = {"CONFIG.yaml": "c.yaml", "DATA_BIN": "d", "SAVE_DIR": "s"}
    assert instantiate(alt, v, pick=("--restart",)) == "koroberta train c.yaml d s --restart"
    assert instantiate("koroberta -v run ...", {"...": "c.yaml --until spm"}) == "koroberta -v run c.yaml --until spm"
    files = "koroberta eval TASK --train FILE [--dev FILE] [--test FILE]"
    assert instantiate(files, {"TASK": "t", "FILE": ["a", "b"]}, keep=("--dev FILE",)) == \
        "koroberta eval t --train a --dev b"
    with pytest.raises(AssertionError):
        instantiate(alt, v)  # no pick
    with pytest.raises(AssertionError):
        instantiate(form, {"CONFIG.yaml": "c.yaml"}, keep=("--until STAGE",))  # STAGE has no value
    with pytest.raises(AssertionError):
        instantiate(form, {"CONFIG.yaml": "c.yaml"}, keep=("--until X",))  # not in the form


def registry_gaps(p: Parsed, registry: dict[str, How]) -> tuple[list[str], list[str]]:
    """(README commands the registry lacks, registry entries the README no longer shows)."""
    shown = {c.text for c in p.commands}
    missing = [f"README.md:{c.line}: {c.text}" for c in p.commands if c.text not in registry]
    return missing, [k for k in registry if k not in shown]


def test_registry_gaps_on_a_sample():
    p = parse_readme(SAMPLE)
    reg = {c.text: How(RUN, "x") for c in p.commands}
    assert registry_gaps(p, reg) == ([], [])
    new = parse_readme(SAMPLE + "\nthen `koroberta train new.yaml`\n")
    assert registry_gaps(new, reg) == ([f"README.md:{len(SAMPLE.splitlines()) + 2}: koroberta train new.yaml"], [])
    assert registry_gaps(p, {**reg, "koroberta gone": How(RUN, "x")}) == ([], ["koroberta gone"])


def test_every_readme_command_is_registered():
    p = readme()
    missing, stale = registry_gaps(p, REGISTRY)
    assert not p.unclassified, f"lines of a README shell block that start no command (tell the parser): {p.unclassified}"
    assert not missing, "README.md shows commands no test runs; add them to REGISTRY in tests/test_readme.py:\n" + \
        "\n".join(missing)
    assert not stale, f"REGISTRY entries the README no longer shows (remove or update them): {stale}"


def _make_targets() -> dict[str, tuple[list[str], str]]:
    """Makefile target -> (prerequisites, recipe with $(PY)/$(VENV) expanded)."""
    out: dict[str, tuple[list[str], str]] = {}
    lines = (REPO / "Makefile").read_text().splitlines()
    for i, line in enumerate(lines):
        m = re.match(r"^([\w.-]+):(?!=)(.*)$", line)
        if m:
            recipe = []
            for r in lines[i + 1:]:
                if not r.startswith("\t"):
                    break
                recipe.append(r[1:].replace("$(PY)", ".venv/bin/python").replace("$(VENV)", ".venv"))
            out[m.group(1)] = (m.group(2).split(), "\n".join(recipe))
    return out


def _string_constants(fn) -> set[str]:
    """The string literals of a function's source (adjacent literals joined, as Python does)."""
    tree = ast.parse(inspect.getsource(getattr(fn, "__wrapped__", fn)).lstrip())
    return {n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)}


def test_registry_entries_point_at_what_runs_them():
    module = sys.modules[__name__]
    ci_lines = [l.strip() for l in (REPO / ".ci" / "run").read_text().splitlines()
                if l.strip() and not l.strip().startswith("#")]
    ci_targets = [l.split()[1] for l in ci_lines if l.startswith("make ")]
    assert ci_targets, f".ci/run runs no make target: {ci_lines}"
    targets = _make_targets()
    reached, todo = set(), list(ci_targets)
    while todo:
        t = todo.pop()
        if t not in reached and t in targets:
            reached.add(t)
            todo.extend(targets[t][0])
    for cmd, how in REGISTRY.items():
        assert how.kind in (RUN, DRY, CI, CLUSTER, MENTION, MANUAL), (cmd, how)
        if how.kind in (RUN, DRY, MENTION, MANUAL):
            fn = getattr(module, how.by, None)
            assert fn is not None, f"{cmd!r}: no function {how.by} in tests/test_readme.py"
            assert cmd in _string_constants(fn), f"{how.by} does not contain {cmd!r}"
        elif how.kind == CI:
            assert how.by in reached, f"{cmd!r}: CI (.ci/run: {ci_lines}) never makes {how.by}"
            assert cmd == f"make {how.by}" or cmd in targets[how.by][1], (cmd, targets[how.by])
        if how.kind == CLUSTER or how.cluster:
            path, test = (how.cluster or how.by).split("::")
            src = (REPO / path).read_text(encoding="utf-8")
            assert re.search(rf"^def {re.escape(test)}\(", src, flags=re.M), f"{cmd!r}: no {test} in {path}"
            if "sbatch" in cmd:  # submissions: the cluster test takes the line from README.md itself
                key = CLUSTER_KEYS.get(Path(path).name)
                assert key and key in src, f"{cmd!r}: {path} does not read its command from README.md ({key})"
            tree = ast.parse(src)
            consts = {n.value.strip() for n in ast.walk(tree)
                      if isinstance(n, ast.Constant) and isinstance(n.value, str) and len(n.value.strip()) >= 12}
            # f-strings: f"scancel {b} {c} {d}" runs `scancel $B $C $D`
            fstrings = ["".join(re.escape(v.value) if isinstance(v, ast.Constant) else r"\S+" for v in n.values)
                        for n in ast.walk(tree) if isinstance(n, ast.JoinedStr)
                        and sum(len(v.value) for v in n.values if isinstance(v, ast.Constant)) >= 6]

            def selects(c: str) -> bool:
                if cmd.startswith(c) or c.startswith(cmd):
                    return True
                try:
                    return c.startswith("^") and re.match(c, cmd) is not None
                except re.error:
                    return False
            assert any(selects(c) for c in consts) or any(re.fullmatch(f, cmd) for f in fstrings), \
                f"{path} has nothing that selects or runs {cmd!r}"
    # forms are exercised by instantiate() in the function named; concrete commands are not forms
    for cmd, how in REGISTRY.items():
        if how.kind in (RUN, DRY) and is_form(cmd):
            src = inspect.getsource(getattr(module, how.by))
            assert "instantiate(" in src, f"form {cmd!r}: {how.by} never instantiates it"


def test_ci_runs_make_test():
    """``make test`` is what CI runs: .ci/run's command, and the Makefile target runs the tests."""
    r = subprocess.run(["make", "-n", "test"], cwd=REPO, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert re.search(r"-m pytest\b.* tests\b", r.stdout), r.stdout


# ======================================================================================================================
# running README commands
# ======================================================================================================================
def _env(**extra: str) -> dict[str, str]:
    """A user's shell: no venv on PATH (the README says to activate it), none of the test process' own settings."""
    venv_bins = {str(VENV / "bin"), str(Path(sys.executable).parent)}
    path = os.pathsep.join(p for p in os.environ.get("PATH", "").split(os.pathsep) if p not in venv_bins)
    drop = {"VIRTUAL_ENV", "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "PYTHONPATH", "KOROBERTA", "NGPU", "SOURCE", "OUT",
            "WORKERS", "CONFIG", "http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"}
    env = {k: v for k, v in os.environ.items() if k not in drop and not k.startswith("SLURM_")}
    return {**env, "PATH": path, "NO_PROXY": "127.0.0.1,localhost", **extra}


def sh(cmd: str, cwd: Path, env: dict[str, str] | None = None, timeout: int = 1800,
       ok: bool = True) -> subprocess.CompletedProcess:
    """Run ``cmd`` the way the README's user does: in ``cwd`` after ``source .venv/bin/activate``."""
    r = subprocess.run(["bash", "-c", f"source .venv/bin/activate && {cmd}"], cwd=cwd, env=env or _env(),
                       capture_output=True, text=True, timeout=timeout)
    if ok:
        assert r.returncode == 0, f"`{cmd}` (in {cwd}) exited {r.returncode}:\n{r.stdout[-3000:]}\n{r.stderr[-4000:]}"
    return r


def sandbox(path: Path, configs: bool = True) -> Path:
    """A directory laid out like the checkout: .venv (linked), configs/ and scripts/ (copied)."""
    path.mkdir(parents=True, exist_ok=True)
    (path / ".venv").symlink_to(VENV)
    if configs:
        shutil.copytree(REPO / "configs", path / "configs")
    shutil.copytree(REPO / "scripts", path / "scripts")
    return path


def _load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _updates(ckpt: Path) -> int:
    import torch

    return int(torch.load(ckpt, map_location="cpu", weights_only=False)["optimizer_history"][-1]["num_updates"])


#: base.yaml scaled to the fixture and a CPU: the commands are the README's, the sizes are not
SCALED = {
    "spm": {"vocab_size": 2000, "hard_vocab_limit": False, "input_sentence_size": 0, "threads": 1},
    "train": {"recipe": None, "encoder_layers": 2, "encoder_embed_dim": 64, "encoder_ffn_embed_dim": 128,
              "encoder_attention_heads": 2, "tokens_per_sample": 64, "max_positions": 64, "batch_size": 8,
              "update_freq": 1, "ngpus": 1, "launcher": "local", "precision": "fp32", "device": "cpu",
              "num_workers": 0, "max_update": 10, "warmup_updates": 2, "log_interval": 2,
              "save_interval_updates": 5, "validate_interval_updates": 5, "keep_interval_updates": 1,
              "cpu_threads": 1, "min_free_disk_gb": 0.0},
    "convert": {"parity_lines": 200, "parity_sentences": 4},
    "finetune": {"max_length": 32, "threads": 1, "device": "cpu", "epochs": 1},
}


def _write_config(src: Path, dst: Path, **top) -> dict:
    cfg = yaml.safe_load(src.read_text(encoding="utf-8"))
    for section, over in SCALED.items():
        cfg[section] = {**(cfg.get(section) or {}), **over}
    cfg.update(top)
    dst.write_text(yaml.safe_dump(cfg, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return cfg


@pytest.fixture(scope="module")
def journey(tmp_path_factory) -> dict:
    return _journey(tmp_path_factory.mktemp("journey"))


def _journey(base: Path) -> dict:
    """The README's "Running stages" and "Full runs" commands, in order, in one sandbox on the tiny fixture dump.

    download (from a local replica of dumps.wikimedia.org) -> point `source:` at the printed path -> corpus build ->
    `koroberta run configs/base.yaml --until preprocess` -> train -> `koroberta run configs/base.yaml` (convert +
    fine-tune), then each remaining stage command on those outputs. Returns {command: CompletedProcess}.
    """
    dl = _load("koroberta_test_download", REPO / "tests" / "corpus" / "test_download.py")
    sb = sandbox(base / "checkout")
    res: dict[str, subprocess.CompletedProcess] = {}
    server = dl.DumpServer(dl.layout())
    try:
        local = f" --base-url {server.url} --checksum-base-url {server.url}"
        cmd = readme_command("koroberta corpus download downloads/ --wiki kowiki --date latest")
        res[cmd] = sh(cmd + local, sb)
        cmd = readme_command("koroberta corpus download downloads/ --date latest")
        res[cmd] = sh(cmd + local, sb)
    finally:
        server.stop()
    dump = res[cmd].stdout.strip().splitlines()[-1]

    # "point `source:` at the dated dump path it prints" (+ NSMC files, and sizes for a CPU)
    nsmc = (FIXTURES / "nsmc-tiny.tsv").read_text(encoding="utf-8").splitlines(keepends=True)
    (sb / "ratings_train.txt").write_text("".join(nsmc[:301]), encoding="utf-8")
    (sb / "ratings_test.txt").write_text("".join(nsmc[:1] + nsmc[301:]), encoding="utf-8")
    _write_config(REPO / "configs" / "base.yaml", sb / "configs" / "base.yaml", source=dump,
                  nsmc_train="ratings_train.txt", nsmc_test="ratings_test.txt")

    form = readme_command("koroberta corpus build DUMP OUT")
    cmd = instantiate(form, {"DUMP": dump, "OUT": "runs/base/corpus"})
    res[form] = sh(cmd, sb)
    cmd = readme_command("koroberta run configs/base.yaml --until preprocess")
    res[cmd] = sh(cmd, sb)
    form = readme_command("koroberta run CONFIG.yaml [--until STAGE] [--force STAGE ...]")
    cmd = instantiate(form, {"CONFIG.yaml": "configs/base.yaml", "STAGE": "spm"},
                      keep=("--until STAGE", "--force STAGE ..."))
    res[form] = sh(cmd, sb)
    # the train stage (on the GPUs in a real run; here the CPU-scaled config, no paths: WORKDIR/data-bin etc.)
    form = readme_command("koroberta train CONFIG.yaml [DATA_BIN SAVE_DIR] [--dry-run]")
    res[form] = sh(instantiate(form, {"CONFIG.yaml": "configs/base.yaml"}), sb)
    # then `koroberta run configs/base.yaml` again: convert and fine-tune, training complete
    cmd = readme_command("koroberta run configs/base.yaml")
    assert cmd == instantiate(readme_command("koroberta run CONFIG"), {"CONFIG": "configs/base.yaml"})
    res[cmd] = res["koroberta run CONFIG"] = sh(cmd, sb)

    form = readme_command("koroberta -v run ...")  # everything on the terminal (here every stage is complete)
    res[form] = sh(instantiate(form, {"...": "configs/base.yaml --until spm"}), sb)

    form = readme_command("koroberta train report SAVE_DIR")
    res[form] = sh(instantiate(form, {"SAVE_DIR": "runs/base/checkpoints"}), sb)
    form = readme_command("koroberta spm train TRAIN_TEXT OUT")
    cmd = instantiate(form, {"TRAIN_TEXT": "runs/base/corpus/split/train.txt", "OUT": "runs/spm-cli"})
    res[form] = sh(cmd + " --vocab-size 2000 --no-hard-vocab-limit --threads 1", sb)
    form = readme_command("koroberta preprocess run SPLIT_DIR VOCAB_DIR OUT")
    res[form] = sh(instantiate(form, {"SPLIT_DIR": "runs/base/corpus/split", "VOCAB_DIR": "runs/spm-cli",
                                      "OUT": "runs/data-bin-cli"}), sb)
    form = readme_command("koroberta convert CHECKPOINT VOCAB_DIR OUT --parity-text VALID_TXT")
    res[form] = sh(instantiate(form, {"CHECKPOINT": "runs/base/checkpoints/checkpoint_last.pt", "OUT": "runs/hf-cli",
                                      "VOCAB_DIR": "runs/base/spm",
                                      "VALID_TXT": "runs/base/corpus/split/valid.txt"}), sb)
    form = readme_command("koroberta finetune nsmc MODEL_DIR ratings_train.txt OUT [--test-tsv ratings_test.txt]")
    res[form] = sh(instantiate(form, {"MODEL_DIR": "runs/hf-cli", "OUT": "runs/nsmc-cli"},
                               keep=("--test-tsv ratings_test.txt",)), sb)

    form = readme_command("koroberta eval TASK MODEL_DIR OUT --train FILE [--dev FILE] [--test FILE] "
                          "[--seeds 3] [--model-card]")
    ev = FIXTURES / "eval"
    res[form] = sh(instantiate(form, {"TASK": "kornli", "MODEL_DIR": "runs/hf-cli", "OUT": "runs/eval-kornli",
                                      "FILE": [str(ev / "kornli-train.tsv"), str(ev / "kornli-dev.tsv")]},
                               keep=("--dev FILE", "--seeds 3", "--model-card")), sb)

    # --extend (max_update raised on purpose), then --restart (lr changed: another run)
    shutil.copytree(sb / "runs/base/checkpoints", sb / "runs/ckpt-more")
    form = readme_command("koroberta train CONFIG.yaml DATA_BIN SAVE_DIR --extend | --restart")
    base = yaml.safe_load((sb / "configs/base.yaml").read_text(encoding="utf-8"))
    longer = {**base, "train": {**base["train"], "max_update": 14}}
    (sb / "configs/longer.yaml").write_text(yaml.safe_dump(longer, allow_unicode=True), encoding="utf-8")
    paths = {"DATA_BIN": "runs/base/data-bin", "SAVE_DIR": "runs/ckpt-more"}
    res[form + " (extend)"] = sh(instantiate(form, {"CONFIG.yaml": "configs/longer.yaml", **paths},
                                             pick=("--extend",)), sb)
    res["updates after --extend"] = _updates(sb / "runs/ckpt-more/checkpoint_last.pt")
    other = {**longer, "train": {**longer["train"], "lr": 0.001}}
    (sb / "configs/other.yaml").write_text(yaml.safe_dump(other, allow_unicode=True), encoding="utf-8")
    res[form + " (restart)"] = sh(instantiate(form, {"CONFIG.yaml": "configs/other.yaml", **paths},
                                              pick=("--restart",)), sb)

    # the corpus array's setup lines (the submissions themselves: tests/cluster): they must name what exists here
    lines = [readme_command("mkdir -p logs"),
             readme_command("export CONFIG=configs/base.yaml SOURCE=$(ls downloads/kowiki-*-pages-articles.xml.bz2 | "
                            "tail -n 1) OUT=runs/base/corpus-array N=16")]
    res["corpus array setup"] = sh(" && ".join(lines) + ' && test -d logs && ls -l "$CONFIG" "$SOURCE" && '
                                   'echo "N=$N OUT=$OUT"', sb, ok=False)

    # the corpus stage script with its env-var knobs, as written (the dump saved under the README's name)
    shutil.copy(sb / dump, sb / "dump.xml.bz2")
    cmd = readme_command("SOURCE=dump.xml.bz2 OUT=runs/corpus WORKERS=16 scripts/01_corpus.sh")
    res[cmd] = sh(cmd, sb)
    res["sandbox"] = sb
    res["dump"] = dump
    return res


@pytest.mark.slow
def test_download_then_build_then_run_until_preprocess(journey):
    sb, dump = journey["sandbox"], journey["dump"]
    assert re.fullmatch(r"downloads/kowiki-\d{8}-pages-articles\.xml\.bz2", dump), dump
    assert (sb / dump).read_bytes() == (FIXTURES / "kowiki-tiny.xml.bz2").read_bytes()
    again = journey["koroberta corpus download downloads/ --date latest"]
    assert again.stdout.strip().splitlines()[-1] == dump
    assert (sb / "runs/base/corpus/split/_COMPLETE").is_file() or (sb / "runs/base/corpus/split/manifest.json").is_file()
    r = journey["koroberta run configs/base.yaml --until preprocess"]
    for stage in ("corpus", "spm", "preprocess"):
        assert re.search(rf"^\s+{stage}\s", r.stdout, flags=re.M), r.stdout
    assert not re.search(r"^\s+train\s", r.stdout, flags=re.M), r.stdout
    assert (sb / "runs/base/data-bin/train.bin").is_file()
    verbose = journey["koroberta -v run ..."]  # the global flag before the subcommand parses; what -v adds is not
    assert "koroberta run 'koroberta-base'" in verbose.stdout, verbose.stdout  # checked here (nothing ran)
    forced = journey["koroberta run CONFIG.yaml [--until STAGE] [--force STAGE ...]"]
    assert "=== stage spm ===" in forced.stderr and "=== stage preprocess ===" not in forced.stderr, forced.stderr


@pytest.mark.slow
def test_train_then_run_converts_and_finetunes(journey):
    sb = journey["sandbox"]
    assert _updates(sb / "runs/base/checkpoints/checkpoint_last.pt") == 10
    r = journey["koroberta run configs/base.yaml"]
    assert "max |logit diff|" in r.stdout and "NSMC accuracy" in r.stdout, r.stdout
    assert (sb / "runs/base/hf/model.safetensors").is_file()
    assert (sb / "runs/base/checkpoints/train.log").read_text().count("# koroberta train:") == 1  # not re-entered
    rep = journey["koroberta train report SAVE_DIR"]
    assert "updates 10" in rep.stdout and list((sb / "runs/base/checkpoints/report").glob("*.png")), rep.stdout


@pytest.mark.slow
def test_stage_commands_on_the_run_outputs(journey):
    sb = journey["sandbox"]
    assert (sb / "runs/spm-cli/spm.model").is_file() and (sb / "runs/spm-cli/dict.txt").is_file()
    assert (sb / "runs/data-bin-cli/train.bin").is_file() and (sb / "runs/data-bin-cli/valid.idx").is_file()
    conv = journey["koroberta convert CHECKPOINT VOCAB_DIR OUT --parity-text VALID_TXT"]
    assert (sb / "runs/hf-cli/model.safetensors").is_file() and (sb / "runs/hf-cli/tokenizer.json").is_file()
    parity = json.loads(conv.stdout.strip().splitlines()[-1])
    assert parity["checked"] and parity["token_id_lines"] > 100 and parity["token_id_mismatches"] == 0, parity
    assert parity["max_abs_logit_diff"] <= parity["atol"], parity
    metrics = json.loads((sb / "runs/nsmc-cli/metrics.json").read_text())
    assert "accuracy" in json.dumps(metrics)
    assert (sb / "runs/corpus/split/train.txt").is_file()
    assert (sb / "runs/corpus/split/train.txt").read_bytes() == (sb / "runs/base/corpus/split/train.txt").read_bytes()


@pytest.mark.slow
def test_corpus_array_setup_lines_name_what_exists(journey):
    """`export CONFIG=... SOURCE=...`: after the README's download, SOURCE must be the file it wrote (the array jobs
    fail on a path that does not exist)."""
    r = journey["corpus array setup"]
    assert r.returncode == 0, f"the README's corpus-array setup lines name missing files:\n{r.stdout}\n{r.stderr}"
    assert "N=16 OUT=runs/base/corpus-array" in r.stdout


@pytest.mark.slow
def test_eval_form(journey):
    sb = journey["sandbox"]
    m = json.loads((sb / "runs/eval-kornli/metrics.json").read_text())
    assert m["task"] == "kornli" and len(m["seeds"]) == 3 and len(m["runs"]) == 3, m
    assert m["data"]["dev"]["file"] == "kornli-dev.tsv" and "accuracy" in m["summary"]["dev"], m
    assert "kornli" in (sb / "runs/hf-cli/README.md").read_text().lower()


@pytest.mark.slow
def test_extend_and_restart(journey):
    sb = journey["sandbox"]
    assert journey["updates after --extend"] == 14
    assert (sb / "runs/ckpt-more/superseded-1/checkpoint_last.pt").is_file()
    assert _updates(sb / "runs/ckpt-more/checkpoint_last.pt") == 14


# -- GPU-only: preflight with --dry-run ---------------------------------------------------------------------------------
def test_continue_from_an_existing_model(tmp_path, kowiki_line_list):
    """README "Continue from an existing model": `koroberta run configs/continue.yaml` (CPU-scaled, on a local tiny
    WordPiece RoBERTa in the klue layout and NSMC-format reviews), then the stage commands on its outputs: import-hf
    alone gives the same checkpoint, preprocess with the import's directory the same data-bin, convert the same
    export."""
    sys.path.insert(0, str(REPO / "tests"))
    import hf_models as H
    from tokenizers import Tokenizer

    sb = sandbox(tmp_path / "checkout")
    hf = sb / "models" / "klue-roberta-base"  # the path configs/continue.yaml names
    H.wordpiece_tokenizer(kowiki_line_list[:1200], tmp_path / "tok")
    n = Tokenizer.from_file(str(tmp_path / "tok" / "tokenizer.json")).get_vocab_size()
    H.save_model(H.random_model("roberta", n, pad_to=8), tmp_path / "tok", hf)
    (sb / "data" / "reviews").mkdir(parents=True)
    shutil.copyfile(FIXTURES / "nsmc-tiny.tsv", sb / "data" / "reviews" / "reviews.tsv")
    (sb / "data" / "demo").mkdir(parents=True)
    shutil.copyfile(REPO / "data" / "demo" / "nsmc-demo.tsv", sb / "data" / "demo" / "nsmc-demo.tsv")
    cfg = yaml.safe_load((REPO / "configs" / "continue.yaml").read_text(encoding="utf-8"))
    cfg["corpus"].update(valid_fraction=0.3, test_fraction=0.1)
    # the model's sizes are the import's: only the schedule and the machine are scaled
    cfg["train"] = {**cfg["train"], **{k: v for k, v in SCALED["train"].items() if not k.startswith("encoder_")
                                       and k != "max_positions"}, "max_update": 20, "lr": 0.001,
                    "tokens_per_sample": 32}  # fairseq's valid batches are multiples of 8 blocks: >= 8 of them
    cfg["convert"].update(SCALED["convert"])
    (sb / "configs" / "continue.yaml").write_text(yaml.safe_dump(cfg, allow_unicode=True, sort_keys=False),
                                                  encoding="utf-8")
    run = readme_command("koroberta run configs/continue.yaml")
    r = sh(run, sb)
    wd = sb / "runs" / "continue"
    assert "=== stage importhf ===" in r.stderr and "=== stage spm ===" not in r.stderr, r.stderr[-2000:]
    summary = json.loads((wd / "summary.json").read_text())
    par = summary["stages"]["convert"]["parity"]
    assert par["token_ids_against"].startswith("data-bin valid") and par["token_id_mismatches"] == 0
    assert par["max_abs_logit_diff"] <= 1e-5 and par["token_id_lines"] > 10
    assert (wd / "hf" / "tokenizer.json").read_bytes() == (hf / "tokenizer.json").read_bytes()
    t = summary["stages"]["train"]
    assert t["updates"] == 20 and t["final_train_loss"] < t["first_train_loss"]
    from koroberta.pipeline import run_fill_mask  # the export as another project loads it: pipeline("fill-mask")

    assert len(run_fill_mask(wd / "hf", ["대한민국의 수도는 [MASK]이다."])[0]["predictions"]) == 5
    valid = wd / "corpus" / "split" / "valid.txt"

    form = readme_command("koroberta import-hf HF_DIR OUT [--parity-text VALID_TXT]")
    sh(instantiate(form, {"HF_DIR": str(hf), "OUT": "imp", "VALID_TXT": str(valid)}, keep=("--parity-text VALID_TXT",)),
       sb)
    readme_command("koroberta import-hf HF_DIR OUT")
    assert (sb / "imp" / "checkpoint.pt").read_bytes() == (wd / "import-hf" / "checkpoint.pt").read_bytes()
    assert (sb / "imp" / "dict.txt").read_bytes() == (wd / "import-hf" / "dict.txt").read_bytes()
    form = readme_command("koroberta preprocess run SPLIT_DIR IMPORT_DIR OUT")
    sh(instantiate(form, {"SPLIT_DIR": str(wd / "corpus" / "split"), "IMPORT_DIR": "imp", "OUT": "db"}), sb)
    for f in ("train.bin", "train.idx", "valid.bin", "dict.txt"):
        assert (sb / "db" / f).read_bytes() == (wd / "data-bin" / f).read_bytes(), f
    form = readme_command("koroberta convert CHECKPOINT IMPORT_DIR OUT")
    sh(instantiate(form, {"CHECKPOINT": str(wd / "checkpoints" / "checkpoint_last.pt"), "IMPORT_DIR": "imp",
                          "OUT": "hf2"}), sb)
    assert (sb / "hf2" / "model.safetensors").read_bytes() == (wd / "hf" / "model.safetensors").read_bytes()


@pytest.fixture(scope="module")
def gpu_dry_runs(tmp_path_factory, tiny_databin) -> dict:
    """The README's GPU commands on the real configs/base.yaml, in a sandbox whose runs/base/data-bin is the tiny
    fixture data-bin: each as written plus --dry-run (no CUDA here; preflight plans the GPU job)."""
    sb = sandbox(tmp_path_factory.mktemp("gpu") / "checkout")
    (sb / "runs" / "base").mkdir(parents=True)
    shutil.copytree(tiny_databin, sb / "runs" / "base" / "data-bin")
    res = {}
    cmd = readme_command("koroberta train configs/base.yaml --ngpus 1 --update-freq 128")
    res[cmd] = sh(cmd + " --dry-run", sb)
    form = readme_command("koroberta train CONFIG.yaml [DATA_BIN SAVE_DIR] [--dry-run]")
    res[form] = sh(instantiate(form, {"CONFIG.yaml": "configs/base.yaml", "DATA_BIN": "runs/base/data-bin",
                                      "SAVE_DIR": "runs/base/checkpoints"}, keep=("DATA_BIN SAVE_DIR", "--dry-run")),
                   sb)
    cmd = readme_command("NGPU=8 scripts/pretrain_torchrun.sh configs/base.yaml runs/base/data-bin "
                         "runs/base/checkpoints")
    res[cmd] = sh(cmd + " --dry-run", sb)
    # the multi-node submission: its batch script, inside the allocation it asks for
    cmd = readme_command("sbatch --nodes=4 scripts/pretrain.slurm configs/base.yaml runs/base/data-bin "
                         "runs/base/checkpoints --update-freq 4")
    res[cmd] = _pretrain_slurm_in_allocation(cmd, sb)
    res["sandbox"] = sb
    return res


def _pretrain_slurm_in_allocation(cmd: str, sb: Path) -> subprocess.CompletedProcess:
    """Run the batch script of ``sbatch [opts] scripts/pretrain.slurm ARGS`` the way sbatch would on the first node of
    the allocation it requests (--nodes from the command, GPUs per node from the script's #SBATCH directive),
    plus --dry-run. ``scontrol`` answers for that allocation (node names, NodeAddr 127.0.0.1).
    DATA_BIN/SAVE_DIR are the sandbox's data-bin and checkpoint paths. Real submission: tests/cluster."""
    argv = shlex.split(cmd)
    i = argv.index("scripts/pretrain.slurm")
    opts = dict(a[2:].split("=", 1) for a in argv[1:i] if a.startswith("--") and "=" in a)
    directives = dict(re.findall(r"^#SBATCH --([\w-]+)=(\S+)", (sb / "scripts/pretrain.slurm").read_text(), re.M))
    nodes = int(opts.get("nodes", directives.get("nodes", "1")))
    gpus = opts.get("gpus-per-node", directives.get("gpus-per-node", "0"))
    args = argv[i + 1:]
    stub = sb / "slurm-stub"
    stub.mkdir(exist_ok=True)
    names = " ".join(f"gpu{k:02d}" for k in range(nodes))
    (stub / "scontrol").write_text(
        "#!/bin/sh\n"
        f'case "$2" in hostnames) for n in {names}; do echo $n; done;; '
        'node) echo "NodeName=$4 Arch=x86_64 NodeAddr=127.0.0.1 NodeHostName=$4";; *) exit 1;; esac\n')
    (stub / "scontrol").chmod(0o755)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = _env(SLURM_JOB_ID="4242", SLURM_JOB_NODELIST=f"gpu[00-{nodes - 1:02d}]", SLURM_NNODES=str(nodes),
               SLURM_GPUS_PER_NODE=gpus, SLURM_SUBMIT_DIR=str(sb), MASTER_PORT=str(port))
    env["PATH"] = f"{stub}{os.pathsep}{env['PATH']}"
    return sh(shlex.join(["bash", "scripts/pretrain.slurm", *args, "--dry-run"]), sb, env=env, ok=False)


@pytest.mark.slow
def test_gpu_commands_preflight(gpu_dry_runs):
    one = gpu_dry_runs["koroberta train configs/base.yaml --ngpus 1 --update-freq 128"]
    assert "effective batch: 2,048 sequences x 512 tokens" in one.stdout and "--fp16" in one.stdout, one.stdout
    plain = gpu_dry_runs["koroberta train CONFIG.yaml [DATA_BIN SAVE_DIR] [--dry-run]"]
    assert "effective batch: 2,048 sequences" in plain.stdout and "--nproc-per-node 8" in plain.stdout
    node = gpu_dry_runs["NGPU=8 scripts/pretrain_torchrun.sh configs/base.yaml runs/base/data-bin runs/base/checkpoints"]
    readme_command("torchrun --standalone")  # one process per GPU
    assert "torch.distributed.run --standalone --nnodes 1 --nproc-per-node 8" in node.stdout, node.stdout
    assert "effective batch: 2,048 sequences" in node.stdout
    slurm = [k for k in gpu_dry_runs if k.startswith("sbatch ")]
    assert slurm, "README shows no `sbatch ... scripts/pretrain.slurm` command"
    for k in slurm:
        r = gpu_dry_runs[k]
        assert r.returncode == 0, f"`{k}` fails preflight in the allocation it asks for:\n{r.stdout[-2000:]}\n" \
                                  f"{r.stderr[-2000:]}"
        nodes = re.search(r"--nodes=(\d+)", k).group(1)
        readme_command("srun")  # one task per node, each a torchrun agent
        assert f"srun --nodes {nodes} --ntasks-per-node 1" in r.stdout, r.stdout
        assert "effective batch: 2,048 sequences" in r.stdout, r.stdout


# -- cheap ones --------------------------------------------------------------------------------------------------------
def test_stage_help():
    """`koroberta <stage> --help` for every subcommand koroberta registers (as the README says, each lists its
    options), and the subcommands the README names: `koroberta run`, `koroberta convert`, `koroberta corpus
    backends`, `koroberta spm import-legacy`."""
    from koroberta.cli import build_parser

    form = readme_command("koroberta <stage> --help")
    parser = build_parser()
    stages = sorted(next(a for a in parser._actions if a.dest == "command").choices)
    assert {"corpus", "spm", "preprocess", "train", "convert", "finetune", "run"} <= set(stages)
    named = [readme_command(c) for c in ("koroberta run", "koroberta convert", "koroberta corpus backends",
                                         "koroberta spm import-legacy", "koroberta corpus build", "koroberta eval",
                                         "koroberta finetune nsmc", "koroberta train report", "koroberta")]
    cmds = [instantiate(form, {"<stage>": s}) for s in stages] + [c + " --help" for c in named]
    script = " && ".join(f"{c} >/dev/null && echo ok: {shlex.quote(c)}" for c in cmds)
    r = sh(script, REPO)
    assert r.stdout.count("ok: ") == len(cmds), r.stdout + r.stderr


def test_command_line_conventions():
    """The README's "Command-line conventions", on the parser every `koroberta` command is built from: `--workers`
    defaults to 0 (= the CPUs this process may use) wherever it has a default (`run`'s overrides the YAML's
    `workers:`, itself 0 by default), and `--force`/`--overwrite` are plain flags (`run --force STAGE ...` picks among
    its outputs). The positional paths, and the old option spellings they replaced: tests/test_cli.py."""
    import argparse

    from koroberta.cli import build_parser

    readme_command("koroberta STAGE [STEP] INPUT... OUT [--config FILE.yaml] [--<field> VALUE ...]")

    def leaves(parser, path):
        subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if not subs:
            yield " ".join(path), parser
        for name, sp in (subs[0].choices.items() if subs else ()):
            yield from leaves(sp, [*path, name])

    commands = dict(leaves(build_parser(), []))
    assert {"corpus sentences", "corpus split", "spm train", "convert", "preprocess run"} <= set(commands)
    for name, parser in commands.items():
        opts = {s: a for a in parser._actions for s in a.option_strings}
        if "--workers" in opts:
            assert opts["--workers"].default in (0, None), f"{name}: --workers defaults to {opts['--workers'].default}"
        for flag in ("--force", "--overwrite"):
            assert flag not in opts or name == "run" or isinstance(opts[flag], argparse._StoreTrueAction), \
                f"{name}: {flag}"


def test_config_show_command():
    """`koroberta config show` as written, in the checkout: the resolved demo config with the override, marked, and
    the stage it would rerun named."""
    r = sh(readme_command("koroberta config show configs/demo.yaml --set finetune.epochs=1"), REPO, timeout=300)
    assert "# the overrides change the identity of: finetune " in r.stdout, r.stdout[:2000]
    assert re.search(r"^  epochs: 1 +# identity$", r.stdout, flags=re.M), r.stdout


def test_plan_command(tmp_path):
    """`koroberta run CONFIG.yaml --plan` on the demo config: one line per stage and a total, nothing written."""
    cmd = instantiate(readme_command("koroberta run CONFIG.yaml --plan"), {"CONFIG.yaml": "configs/demo.yaml"})
    r = sh(cmd + f" --set workdir={tmp_path / 'wd'}", REPO, timeout=300)
    for stage in ("corpus", "spm", "preprocess", "train", "convert", "finetune"):
        assert re.search(rf"\b{stage}\b.*(needs about|complete)", r.stdout + r.stderr), (stage, r.stderr[-2000:])
    assert not (tmp_path / "wd").exists()


def test_multistream_download_command(tmp_path):
    """`koroberta corpus download ... --multistream` against a local replica serving the tiny dump rewritten as a
    multistream dump with its index: both land in downloads/, verified, and the dump's path is printed."""
    import hashlib

    from koroberta.corpus.multistream import convert_dump, index_for

    dl = _load("koroberta_test_download", REPO / "tests" / "corpus" / "test_download.py")
    files = dl.layout()
    names = {"dump": f"{dl.WIKI}-{dl.DONE}-pages-articles-multistream.xml.bz2",
             "index": f"{dl.WIKI}-{dl.DONE}-pages-articles-multistream-index.txt.bz2"}
    made = tmp_path / "made" / names["dump"]
    made.parent.mkdir()
    convert_dump(FIXTURES / "kowiki-tiny.xml.bz2", made)
    body = {"dump": made.read_bytes(), "index": index_for(made).read_bytes()}
    status = f"/{dl.WIKI}/{dl.DONE}/dumpstatus.json"
    doc = json.loads(files[status])
    doc["jobs"]["articlesmultistreamdump"] = {"status": "done", "files": {
        names[k]: {"size": len(b), "sha1": hashlib.sha1(b).hexdigest(), "url": f"/{dl.WIKI}/{dl.DONE}/{names[k]}"}
        for k, b in body.items()}}
    files[status] = json.dumps(doc).encode()
    for k, b in body.items():
        files[f"/{dl.WIKI}/{dl.DONE}/{names[k]}"] = b
    sb = sandbox(tmp_path / "checkout", configs=False)
    server = dl.DumpServer(files)
    try:
        cmd = readme_command("koroberta corpus download downloads/ --date latest --multistream")
        r = sh(f"{cmd} --base-url {server.url} --checksum-base-url {server.url}", sb)
    finally:
        server.stop()
    got = sb / "downloads" / names["dump"]
    assert (sb / r.stdout.strip().splitlines()[-1]).resolve() == got.resolve()
    assert got.read_bytes() == body["dump"] and index_for(got).read_bytes() == body["index"]


def test_activate_then_koroberta():
    """`source .venv/bin/activate`: what every README `koroberta ...` line assumes (sh() runs each after it)."""
    activate = readme_command("source .venv/bin/activate")
    assert f"{activate} && " in inspect.getsource(sh)
    r = subprocess.run(["bash", "-c", f"{activate} && command -v koroberta && koroberta --version"], cwd=REPO,
                       env=_env(), capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[0] == str(VENV / "bin" / "koroberta") and "koroberta " in r.stdout


def test_mentioned_names():
    """Inline code that names a command or script rather than being a line to run as is."""
    setup = (REPO / "scripts/setup_env.sh").read_text()
    slurm_script = (REPO / "scripts/pretrain.slurm").read_text()
    cluster_helpers = (REPO / "tests/cluster/slurm_jobs.py").read_text()
    r = subprocess.run(["make", "-n"], cwd=REPO, capture_output=True, text=True)  # `make`: the default goal
    assert r.returncode == 0 and "scripts/setup_env.sh" in r.stdout, r.stdout + r.stderr
    checks = {
        "make": lambda: "bash scripts/setup_env.sh" in r.stdout,
        "scripts/setup_env.sh": lambda: (REPO / "scripts/setup_env.sh").is_file(),
        "pip install -e .[dev]": lambda: 'pip install' in setup and '-e ".[$EXTRAS]"' in setup
        and "EXTRAS=${EXTRAS:-dev}" in setup,
        # the counter-example: setup installs the pinned TORCH_SPEC, never a bare `torch`
        "pip install torch": lambda: 'pip install -q "$TORCH_SPEC"' in setup
        and not re.search(r"pip install[^\n]*\storch(\s|$)", setup),
        "scripts/01_corpus.sh": lambda: all(os.access(REPO / "scripts" / f"0{k}_{n}.sh", os.X_OK) for k, n in
                                            enumerate(("corpus", "spm", "preprocess", "train", "convert",
                                                       "finetune"), 1)),
        "scripts/corpus_array.slurm": lambda: (REPO / "scripts/corpus_array.slurm").is_file(),
        "scripts/pretrain_torchrun.sh": lambda: os.access(REPO / "scripts/pretrain_torchrun.sh", os.X_OK),
        "scripts/pretrain.slurm": lambda: (REPO / "scripts/pretrain.slurm").is_file(),
        "sbatch": lambda: 'run(["sbatch", "--parsable"' in cluster_helpers,
        "squeue": lambda: "DependencyNeverSatisfied" in (REPO / "tests/cluster/test_corpus_array.py").read_text(),
        "scontrol show node": lambda: 'scontrol show node -o "$first"' in slurm_script,
        "sbatch --signal=B:USR1@SECONDS": lambda: "trap on_usr1 USR1" in slurm_script
        and "--signal=USR1" in (REPO / "tests/cluster/test_pretrain.py").read_text(),
        ".ci/run": lambda: os.access(REPO / ".ci/run", os.X_OK),
        "scripts/dev/local_slurm.sh": lambda: os.access(REPO / "scripts/dev/local_slurm.sh", os.X_OK),
    }
    for name, check in checks.items():
        readme_command(name)
        assert check(), name


def test_by_hand_cluster_lines():
    """The README's by-hand alternative to `make test-cluster` (bring a cluster up, export SLURM_CONF, run the cluster
    tests, bring it down) is NOT executed here: it needs root, apt and daemons. What is checked: local_slurm.sh takes
    `up DIR` / `down DIR`, `up` prints the export line the README shows, and `run` (what make test-cluster uses)
    goes through the same cmd_up/cmd_down."""
    script = (REPO / "scripts/dev/local_slurm.sh").read_text()
    for line in ("scripts/dev/local_slurm.sh up /tmp/slurm-dev", "export SLURM_CONF=/tmp/slurm-dev/slurm.conf",
                 "scripts/dev/local_slurm.sh down /tmp/slurm-dev"):
        readme_command(line)
    assert re.search(r"^\s+up\) shift; cmd_up \"\$@\"", script, flags=re.M)
    assert re.search(r"^\s+down\) shift; cmd_down \"\$@\"", script, flags=re.M)
    assert re.search(r'echo "export SLURM_CONF=\$\{?\w+\}?/slurm.conf"', script), "up prints no export line"
    run = script[script.index("cmd_run() {"):]
    assert "cmd_up " in run and "cmd_down " in run


def _venv_is_current() -> str | None:
    """None when scripts/setup_env.sh would do nothing (its stamp matches), else why not."""
    want = hashlib.sha256(b"".join((REPO / p).read_bytes() for p in ("pyproject.toml", "requirements/constraints.txt",
                                                                   "scripts/setup_env.sh"))).hexdigest()[:16]
    want = f"{want} {os.environ.get('TORCH_SPEC', 'torch==2.13.0')} {os.environ.get('EXTRAS', 'dev')}"
    stamp = VENV / ".koroberta-env"
    have = stamp.read_text().strip() if stamp.is_file() else "(none)"
    return None if have == want else f".venv is not current (stamp {have!r}, want {want!r}): run `make setup` first"


def test_setup_env_command():
    """The GPU-machine setup line, as written, on the machine's current .venv: exit 0 and nothing to install (the
    stamp covers TORCH_SPEC; PIP_EXTRA_INDEX_URL only matters to a first install). Refuses to run on an outdated
    .venv: that would reinstall into it in the middle of a test session (`make test` runs setup first)."""
    problem = _venv_is_current()
    assert problem is None, problem
    cmd = readme_command("TORCH_SPEC=torch==2.13.0 PIP_EXTRA_INDEX_URL=https://download.pytorch.org/whl/cu128 "
                         "bash scripts/setup_env.sh")
    r = sh(cmd, REPO, timeout=300)
    assert "[setup] installing" not in r.stderr, r.stderr


# ======================================================================================================================
# make demo, and the python snippets on its export
# ======================================================================================================================
@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    """`make demo` as written, in a copy of the checkout (git's tracked + untracked-not-ignored files, .venv linked).

    A copy, not the checkout: an existing runs/demo would make every stage "complete" (the completion marker keys
    on config + input contents, not on the code), so a regression could hide behind it; and the test must not
    overwrite a user's runs/demo. ~5.5 min on 2 idle cores.
    """
    problem = _venv_is_current()
    assert problem is None, problem  # else the Makefile's setup step would reinstall the shared .venv
    makefile = (REPO / "Makefile").read_text()
    recipe = re.search(r"^demo:.*\n((?:\t.*\n)+)", makefile, flags=re.M).group(1)
    assert recipe.strip().endswith(readme_command("koroberta run configs/demo.yaml")), recipe
    copy = tmp_path_factory.mktemp("demo") / "koroberta"
    git = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                         capture_output=True)
    if git.returncode == 0:
        for rel in filter(None, git.stdout.decode().split("\0")):
            src = REPO / rel
            if src.is_file():
                (copy / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, copy / rel)
    else:  # not a git checkout (an unpacked archive): everything but the venv and outputs
        shutil.copytree(REPO, copy, ignore=shutil.ignore_patterns(".git", ".venv", "runs", "__pycache__",
                                                                  "*.egg-info", ".pytest_cache", "build", "dist"))
    (copy / ".venv").symlink_to(VENV)
    assert not (copy / "runs").exists()
    cmd = readme_command("make demo")
    r = subprocess.run(["bash", "-c", cmd], cwd=copy, env=_env(), capture_output=True, text=True, timeout=3600)
    assert r.returncode == 0, f"`make demo` exited {r.returncode}:\n{r.stdout[-3000:]}\n{r.stderr[-5000:]}"
    return copy, r


@pytest.mark.slow
def test_make_demo(demo):
    copy, r = demo
    out = r.stdout
    assert "koroberta run 'koroberta-demo'" in out, out[-3000:]
    summary = out[out.index("koroberta run 'koroberta-demo'"):]
    for stage in ("corpus", "spm", "preprocess", "train", "convert", "fill-mask", "finetune", "model"):
        assert re.search(rf"^\s+{stage}\s", summary, flags=re.M), summary
    first, last = map(float, re.search(r"train loss ([\d.]+) -> ([\d.]+)", summary).groups())
    assert last < first - 1.0, summary  # the loss falls
    assert re.search(r"max \|logit diff\| HF vs fairseq [\d.e-]+ over \d+ sentences; token ids: 0 mismatches",
                     summary), summary
    assert re.search(r"NSMC accuracy 0\.\d+", summary), summary
    # issue 25: the demo's model learns beyond token frequencies, by the margins the demo config was chosen for
    # (masked-token accuracy >= 1.5x the unigram baseline's, >= 0.5 bit lower loss): a regression in the recipe,
    # the export or the check fails here
    lc = json.loads((copy / "runs/demo/learning_check.json").read_text())["result"]
    assert lc["accuracy"] >= 1.5 * lc["unigram_accuracy"] and lc["loss_bits"] <= lc["unigram_loss_bits"] - 0.5, lc
    assert re.search(rf"masked-token accuracy {lc['accuracy']:.3f} vs {lc['unigram_accuracy']:.3f} .*: learned "
                     r"beyond token frequencies", summary), summary
    for p in ("runs/demo/hf/model.safetensors", "runs/demo/checkpoints/checkpoint_last.pt",
              "runs/demo/finetune-nsmc/metrics.json"):
        assert (copy / p).is_file(), p


def test_make_clean_demo(tmp_path):
    """`make clean-demo` removes runs/demo (an old recipe's checkpoints) and nothing beside it."""
    sandbox(tmp_path, configs=False)
    shutil.copyfile(REPO / "Makefile", tmp_path / "Makefile")
    (tmp_path / "runs" / "demo" / "checkpoints").mkdir(parents=True)
    (tmp_path / "runs" / "demo" / "checkpoints" / "checkpoint_last.pt").write_bytes(b"old")
    (tmp_path / "runs" / "mine").mkdir()
    sh(readme_command("make clean-demo"), tmp_path, timeout=60)
    assert not (tmp_path / "runs" / "demo").exists() and (tmp_path / "runs" / "mine").is_dir()


@pytest.mark.slow
def test_eval_on_the_demo_export(demo):
    copy, _ = demo
    cmd = readme_command("koroberta eval nsmc runs/demo/hf runs/demo/eval-nsmc --train data/demo/nsmc-demo.tsv "
                         "--seeds 2 --epochs 1 --model-card")
    r = sh(cmd, copy, timeout=1800)
    m = json.loads((copy / "runs/demo/eval-nsmc/metrics.json").read_text())
    assert m["task"] == "nsmc" and len(m["runs"]) == 2 and m["settings"]["epochs"] == 1, m
    assert m["summary"]["dev"]["accuracy"]["mean"] is not None, m["summary"]
    assert "nsmc" in (copy / "runs/demo/hf/README.md").read_text().lower(), r.stdout[-2000:]


@pytest.mark.slow
def test_run_with_set_after_demo(demo):
    """`koroberta run configs/demo.yaml --set finetune.epochs=1` after `make demo`: the override changes only the
    finetune identity, so every other stage is skipped (its completion markers untouched) and finetune reruns."""
    copy, _ = demo
    runs = copy / "runs" / "demo"
    before = {p: p.stat().st_mtime_ns for p in runs.rglob("_COMPLETE")}
    finetune = runs / "finetune-nsmc" / "_COMPLETE"
    assert finetune in before and len(before) > 1, sorted(before)
    sh(readme_command("koroberta run configs/demo.yaml --set finetune.epochs=1"), copy, timeout=1800)
    changed = sorted(str(p.relative_to(runs)) for p, t in before.items() if p.stat().st_mtime_ns != t)
    assert changed == ["finetune-nsmc/_COMPLETE"], changed
    assert json.loads((runs / "finetune-nsmc" / "manifest.json").read_text())["config"]["epochs"] == 1


RUNNER = '''
import ast, json, sys
src = open(sys.argv[1], encoding="utf-8").read()
tree = ast.parse(src)
last = tree.body[-1] if tree.body and isinstance(tree.body[-1], ast.Expr) else None
ns = {"__name__": "__main__"}
exec(compile(ast.Module(body=tree.body[:-1] if last else tree.body, type_ignores=[]), "README.md", "exec"), ns)
value = eval(compile(ast.Expression(last.value), "README.md", "eval"), ns) if last else None
if hasattr(value, "tolist"):
    value = value.tolist()
print("SNIPPET-RESULT " + json.dumps({"value": value, "names": sorted(k for k in ns if not k.startswith("__"))},
                                     default=repr, ensure_ascii=False))
'''


def _snippet_ids() -> list[str]:
    return [f"README.md:{s.line}" for s in readme().snippets]


@pytest.mark.slow
@pytest.mark.parametrize("index", range(len(readme().snippets)), ids=_snippet_ids())
def test_python_snippet(demo, index):
    """Each ```python block of the README, as written, in the demo copy (its paths are runs/demo/...), with the
    environment its first comment line asks for (``# TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1 python ...``)."""
    copy, _ = demo
    snippet = readme().snippets[index]
    first = snippet.code.splitlines()[0]
    m = re.match(r"^#\s*((?:[A-Za-z_]\w*=\S+\s+)*)python\b", first)
    prefix = m.group(1).strip() if m else ""
    (copy / f"snippet{index}.py").write_text(snippet.code, encoding="utf-8")
    (copy / "run_snippet.py").write_text(RUNNER, encoding="utf-8")
    r = sh(f"{prefix} python run_snippet.py snippet{index}.py".strip(), copy, timeout=900)
    res = json.loads(r.stdout.split("SNIPPET-RESULT ", 1)[1])
    value = res["value"]
    if "pipeline(\"fill-mask\"" in snippet.code:
        assert {"tok", "model"} <= set(res["names"])
        assert isinstance(value, list) and len(value) == 5 and all("token_str" in p for p in value), value
    if "RobertaModel.from_pretrained" in snippet.code:
        assert "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1" in prefix, first  # torch >= 2.6 refuses fairseq checkpoints
        # "the same ids as the HF tokenizer"
        sentence = re.search(r'roberta\.encode\("([^"]+)"\)', snippet.code).group(1)
        (copy / "hf_ids.py").write_text(
            "import json, sys\nfrom transformers import AutoTokenizer\n"
            "print(json.dumps(AutoTokenizer.from_pretrained('runs/demo/hf')(sys.argv[1])['input_ids']))\n")
        hf = sh(f"python hf_ids.py {shlex.quote(sentence)}", copy, timeout=600)
        assert value == json.loads(hf.stdout.strip().splitlines()[-1]), (value, hf.stdout)
    if "load_dataset(" in snippet.code:  # the corpus as a HF dataset: a document's first sentences
        assert isinstance(value, list) and value and all(isinstance(x, str) and x for x in value), value
    assert value is not None
