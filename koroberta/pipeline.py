"""``koroberta run CONFIG.yaml``: every stage, chained, each skipped when its output is complete.

Data flow (directories under ``workdir``)::

    source (.xml.bz2 dump | WikiExtractor dir | text)
      └─ corpus/      extract -> clean -> kss sentence split -> train/valid/test by document
           └─ corpus/split/{train,valid,test}.txt          one sentence per line, blank line between documents
    spm/{spm.model, dict.txt}                              ids: fairseq = spm + 1, HF = fairseq (koroberta.layout)
    data-bin/{train,valid,test}.{bin,idx}, dict.txt        fairseq mmap, what fairseq-preprocess --srcdict makes
                                                           (preprocess.shards N: shard0/ .. shard{N-1}/, valid in 0)
    checkpoints/checkpoint_last.pt                         fairseq-train masked_lm, resumable
    hf/{config.json, model.safetensors, tokenizer.json}    RobertaForMaskedLM, parity-checked against fairseq
    finetune-nsmc/{metrics.json, model/}                   sentence classification from the export
    logs/<stage>.log                                       everything the libraries logged while the stage ran
    learning_check.json                                    the learning check of hf/ (kept while hf/ and data stay)
    summary.json                                           the closing summary (also printed)

``run`` walks :data:`STEPS`: each is ``koroberta.<stage>.stage.run(cfg, inputs, out) -> manifest`` (the contract in
:mod:`koroberta.stage`). A stage returns at once when its output directory is complete for the same identity
fields and the same input *contents*, so ``run`` after a crash redoes only what is missing, a run-time change
(workers, launcher, intervals) reruns nothing, and an identity change reruns that stage and whatever downstream
reads bytes that changed -- nothing upstream.

Relative paths in the YAML are relative to the current directory (``make demo`` runs from the repo root).
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import json
import logging
import shutil
import time
from pathlib import Path
from typing import Any, Callable, Optional

from koroberta.artifacts import fingerprint, read_json, write_json
from koroberta.config import Config, available_cpus, load_yaml, option
from koroberta.convert.config import ConvertConfig
from koroberta.corpus.build import check_source
from koroberta.corpus.config import CorpusConfig
from koroberta.errors import ConfigError, DependencyError, InputError
from koroberta.finetune.config import FinetuneConfig
from koroberta.importhf.config import ImportHFConfig
from koroberta.preprocess.config import PreprocessConfig
from koroberta.spm.config import SpmConfig
from koroberta.stage import RunOptions
from koroberta.train.config import TrainConfig, TrainOptions

log = logging.getLogger("koroberta.run")

STAGES = ("corpus", "spm", "importhf", "preprocess", "train", "convert", "finetune")  # spm or importhf runs
IMPORT_DIR = "import-hf"  # workdir/import-hf: the importhf stage's output (checkpoint.pt, dict.txt, tokenizer/)


@dataclasses.dataclass
class PipelineConfig(Config):
    """The whole run. Top-level keys of the YAML plus one mapping per stage section."""

    SECTION = "run"
    # the stage sections carry their own identity; the top-level keys only name paths (whose *contents* are
    # fingerprinted as stage inputs) and run-time knobs (workers: outputs are byte-identical for any count)
    IDENTITY = ("corpus", "spm", "importhf", "preprocess", "train", "convert", "finetune")
    # `sources:` likewise: its paths are inputs, and its identity parts (name, weight, profile, documents) are copied
    # into corpus.sources by validate(), where the corpus stage's identity holds them
    RUNTIME = ("name", "workdir", "source", "sources", "decontaminate", "workers", "nsmc_train", "nsmc_test",
               "fill_mask", "init_from_hf")

    name: str = option("koroberta", help="run name (model card, summary)")
    workdir: str = option("runs/koroberta", help="all stage outputs go under this directory")
    source: str = option("", help="kowiki .xml.bz2/.xml dump, WikiExtractor output, or plain text (blank line = new document)")
    sources: list[dict] = option(
        default_factory=list, cli=False,
        help="instead of `source:`, several sources in priority order (the first of two duplicates is kept), each "
             "{name, path, weight (default 1: train documents written weight times), profile (wiki | web | none; "
             "default wiki for dumps and WikiExtractor output, web otherwise), documents (blank | line, plain text)}")
    decontaminate: list[str] = option(
        default_factory=list, cli=False,
        help="evaluation files (NSMC TSV, KLUE JSON, or one text per line) whose texts no training document may "
             "contain (with `sources:`)")
    workers: int = option(0, help="worker processes for corpus/preprocess (0 = the CPUs this process may use: its "
                                  "affinity mask, capped by SLURM_CPUS_PER_TASK)")
    nsmc_train: Optional[str] = option(None, help="NSMC-format TSV for the finetune stage (None: skip it)")
    nsmc_test: Optional[str] = option(None, help="optional held-out NSMC-format TSV to report test accuracy on")
    fill_mask: list[str] = option(default_factory=list, cli=False,
                                  help="Korean sentences with <mask> to run through pipeline('fill-mask')")
    init_from_hf: Optional[str] = option(
        None, help="continue pretraining a local Hugging Face RoBERTa masked LM (e.g. a klue/roberta-base directory): "
                   "the importhf stage replaces spm, its tokenizer encodes the corpus, training starts from its "
                   "weights (train.init_from) with the sizes of its config.json, and the export ships its tokenizer")
    corpus: CorpusConfig = option(default_factory=CorpusConfig, cli=False)
    spm: SpmConfig = option(default_factory=SpmConfig, cli=False)
    importhf: ImportHFConfig = option(default_factory=ImportHFConfig, cli=False)
    preprocess: PreprocessConfig = option(default_factory=PreprocessConfig, cli=False)
    train: TrainConfig = option(default_factory=TrainConfig, cli=False)
    convert: ConvertConfig = option(default_factory=ConvertConfig, cli=False)
    finetune: FinetuneConfig = option(default_factory=FinetuneConfig, cli=False)

    def validate(self) -> None:
        self.require(bool(self.source) or bool(self.sources),
                     "`source:` is required (a kowiki dump, WikiExtractor output or text file), or `sources:` for "
                     "several", fields=("source",))
        self.require(not (self.source and self.sources), "give either `source:` or `sources:`, not both",
                     fields=("source", "sources"))
        self.require(self.workers >= 0, "workers must be >= 0")
        if self.sources:
            self.corpus.sources = resolve_run_sources(self.sources, self.corpus.min_chars)
            self.corpus.validate()  # the corpus checks that need corpus.sources (corpus.documents with `sources:`)
            self._pii_symbols()
        else:
            self.require(not self.corpus.sources, "corpus.sources is filled from the top-level `sources:` list; "
                                                  "move the sources there", fields=("corpus",))
            self.require(not self.decontaminate, "`decontaminate:` needs the top-level `sources:` (list the single "
                                                 "source there)", fields=("decontaminate",))
        if self.init_from_hf:
            self._continue_from_hf()

    def _continue_from_hf(self) -> None:
        """``init_from_hf``: training starts from the import's checkpoint, with the HF model's sizes (read from its
        config.json: a size the YAML gives otherwise is an error, not silently replaced), and the corpus drops the
        HF tokenizer's special strings (``[MASK]`` in text would become the mask id). A directory that is not
        there yet is left to the run, which refuses it in one line before any work."""
        self.require(self.train.init_from is None, "train.init_from is set by init_from_hf (the import's "
                                                   "checkpoint); give one of them", fields=("train", "init_from_hf"))
        self.train.init_from = str(Path(self.workdir) / IMPORT_DIR / "checkpoint.pt")
        hf = Path(self.init_from_hf)
        if (hf / "config.json").is_file():
            defaults = {f.name: f.default for f in dataclasses.fields(TrainConfig)}
            for key, value in hf_train_shape(hf).items():
                have = getattr(self.train, key)
                self.require(have in (None, defaults[key], value),
                             f"train.{key}={have} but the model in {hf} has {value}; leave it out (init_from_hf "
                             "takes the model's sizes)", fields=("train",))
                setattr(self.train, key, value)
            self.train.validate()  # the model's sizes against the rest (tokens_per_sample <= max_positions ...)
        if not self.corpus.special_literals:
            self.corpus.special_literals = hf_special_literals(hf)

    def _pii_symbols(self) -> None:
        """``spm.user_symbols: null`` with a source whose profile replaces PII: the placeholders become spm
        user-defined symbols, so each stays one piece with one id (spm, fairseq and the HF vocabulary alike)
        instead of being cut into ``<`` + ``전화`` + ``번호`` + ``>`` and mixed with text that spells the same."""
        if self.spm.user_symbols is not None or not any((s["profile"] or {}).get("pii") for s in self.corpus.sources):
            return
        from koroberta.corpus.pii import PLACEHOLDERS

        self.require(self.spm.model_type == "unigram",
                     "a source's profile replaces PII with placeholder tokens, which need spm.model_type: unigram "
                     "to stay one piece each (or set spm.user_symbols: [] to let them be cut like any text)",
                     fields=("spm",))
        self.spm.user_symbols = list(PLACEHOLDERS.values())

    def source_paths(self) -> dict[str, Path]:
        """name -> path of each source of `sources:` (priority order)."""
        return {item["name"]: Path(item["path"]) for item in self.sources}

    @property
    def n_workers(self) -> int:
        return self.workers or available_cpus()

    @classmethod
    def load(cls, path: str | Path, overrides: tuple[Any, ...] | list[Any] = (),
             **shorthands: Any) -> "PipelineConfig":
        """The config file ``path`` with ``overrides`` (``--set`` items: ``"train.lr=3e-4"``, or
        :class:`~koroberta.config.Override`) applied to its mapping before validation, so an override is checked
        exactly as the file is and its errors name it (:func:`~koroberta.config.resolve_config`). ``shorthands``
        (``workdir=``, ``workers=``, ``source=``: ``koroberta run``'s ``--workdir`` ...; None = not given) are
        top-level overrides applied before ``overrides``, so a ``--set`` of the same key wins."""
        from koroberta.config import Override, resolve_config

        given = [Override((k,), v, f"--{k.replace('_', '-')} {v}") for k, v in shorthands.items() if v is not None]
        return resolve_config(cls, load_yaml(path), [*given, *overrides], file=path)

    def stage_identities(self) -> dict[str, str]:
        """sha256 of each stage section's identity: what that stage's completion keys on, so a change that moves
        one of these reruns that stage (and later stages only where the bytes they read change)."""
        from koroberta.artifacts import sha256_json

        return {f.name: sha256_json(getattr(self, f.name).identity()) for f in dataclasses.fields(self)
                if isinstance(getattr(self, f.name), Config)}


def hf_train_shape(hf_dir: Path) -> dict[str, Any]:
    """The train fields that fix the parameter shapes, as the HF model in ``hf_dir`` has them."""
    c = read_json(hf_dir / "config.json")
    if not isinstance(c, dict) or not isinstance(c.get("num_hidden_layers"), int):
        return {}  # not a model config: the importhf stage says what is wrong with it, naming the file
    pre = c.get("model_type") == "roberta-prelayernorm"
    out = {"arch": "roberta_prenorm" if pre else "roberta_base", "encoder_layers": c["num_hidden_layers"],
           "encoder_embed_dim": c.get("hidden_size"), "encoder_ffn_embed_dim": c.get("intermediate_size"),
           "encoder_attention_heads": c.get("num_attention_heads"),
           "max_positions": int(c.get("max_position_embeddings", 514)) - 2}
    if pre:
        out["layernorm_embedding"] = True  # HF's pre-LN model always normalises the embeddings
    return out


def hf_special_literals(hf_dir: Path) -> list[str]:
    """The special strings of the HF tokenizer in ``hf_dir`` (tokenizer.json; empty when there is none yet: the
    importhf stage refuses such a directory)."""
    from koroberta.errors import KorobertaError
    from koroberta.hfvocab import load_tokenizer, special_strings

    if not (hf_dir / "tokenizer.json").is_file():
        return []
    try:
        return special_strings(load_tokenizer(hf_dir / "tokenizer.json"))
    except KorobertaError:
        return []


def resolve_run_sources(items: Any, min_chars: int) -> list[dict]:
    """corpus.sources from the top-level ``sources:`` (:func:`koroberta.corpus.config.resolve_sources`), each
    source's kind detected from its path when it exists (it picks the default profile); a path not there yet leaves
    the profile unresolved, and the run refuses the missing path before any work."""
    from koroberta.corpus.config import resolve_sources
    from koroberta.corpus.sources import detect_format
    from koroberta.errors import KorobertaError

    kinds: dict[str, Optional[str]] = {}
    for item in items if isinstance(items, list) else ():
        if isinstance(item, dict) and isinstance(item.get("path"), str) and item["path"] not in kinds:
            try:
                kinds[item["path"]] = detect_format(Path(item["path"])) if Path(item["path"]).exists() else None
            except (KorobertaError, OSError):
                kinds[item["path"]] = None  # the extract step reports what is wrong with it, naming the file
    return resolve_sources(items, min_chars=min_chars, kinds=kinds)


@dataclasses.dataclass(frozen=True)
class Step:
    """One stage of ``koroberta run``: which stage, its output directory under ``workdir``, and where its inputs
    come from (the outputs of earlier steps, or paths of the run config)."""

    stage: str
    out: str
    inputs: Callable[[PipelineConfig, Path], dict[str, Optional[Path]]]
    enabled: Callable[[PipelineConfig], bool] = lambda cfg: True
    #: Python packages the stage imports: checked for every step of a run before the first one starts, so a missing
    #: fairseq fails in the first second, not after the corpus and vocabulary took an hour
    requires: tuple[str, ...] = ()


def _opt(p: Optional[str]) -> Optional[Path]:
    return Path(p) if p else None


def _corpus_inputs(c: PipelineConfig) -> dict[str, Optional[Path]]:
    """The corpus stage's inputs: ``source``, or one ``source.<name>`` per source of ``sources:`` and one
    ``decontaminate.<i>`` per evaluation file (their contents key the stage's completion)."""
    if not c.sources:
        return {"source": Path(c.source)}
    out: dict[str, Optional[Path]] = {f"source.{n}": p for n, p in c.source_paths().items()}
    out.update({f"decontaminate.{i}": Path(p) for i, p in enumerate(c.decontaminate)})
    return out


def _vocab(c: PipelineConfig, wd: Path) -> Path:
    """The vocab dir later stages read: the spm stage's, or the import's (fairseq id = HF id)."""
    return wd / (IMPORT_DIR if c.init_from_hf else "spm")


#: the pipeline: every step runs ``koroberta.<stage>.stage.run(cfg.<stage>, inputs, workdir/out)``
STEPS: tuple[Step, ...] = (
    Step("corpus", "corpus", lambda c, wd: _corpus_inputs(c), requires=("kss", "pyarrow")),
    Step("spm", "spm", lambda c, wd: {"train_text": wd / "corpus" / "split" / "train.txt"},
         enabled=lambda c: not c.init_from_hf, requires=("sentencepiece",)),
    Step("importhf", IMPORT_DIR, lambda c, wd: {"hf_dir": _opt(c.init_from_hf)}, enabled=lambda c: bool(c.init_from_hf),
         requires=("torch", "fairseq", "transformers", "tokenizers", "safetensors")),
    Step("preprocess", "data-bin", lambda c, wd: {"split_dir": wd / "corpus" / "split", "vocab_dir": _vocab(c, wd)},
         requires=("sentencepiece", "numpy")),
    Step("train", "checkpoints", lambda c, wd: {"data_bin": wd / "data-bin", "spm_model": None if c.init_from_hf
                                                else wd / "spm" / "spm.model"},
         requires=("torch", "fairseq")),
    Step("convert", "hf", lambda c, wd: {"checkpoint": wd / "checkpoints" / "checkpoint_last.pt",
                                        "vocab_dir": _vocab(c, wd),
                                        "parity_text": wd / "corpus" / "split" / "valid.txt"},
         requires=("torch", "fairseq", "transformers", "tokenizers", "safetensors")),
    Step("finetune", "finetune-nsmc", lambda c, wd: {"model_dir": wd / "hf", "train_tsv": _opt(c.nsmc_train),
                                                    "test_tsv": _opt(c.nsmc_test)},
         enabled=lambda c: bool(c.nsmc_train), requires=("torch", "transformers")),
)


def check_requirements(steps: tuple[Step, ...] | list[Step]) -> None:
    """Refuse a run whose steps need a package that is not installed, naming the stage, before any step starts.
    ``find_spec`` looks the package up without importing it (importing torch and fairseq takes seconds)."""
    import importlib.util

    missing = {}
    for step in steps:
        for pkg in step.requires:
            if importlib.util.find_spec(pkg) is None:
                missing.setdefault(pkg, []).append(step.stage)
    if missing:
        what = "; ".join(f"{pkg} (for {', '.join(stages)})" for pkg, stages in missing.items())
        raise DependencyError(f"not installed: {what}",
                              fix="run `make setup` (or scripts/setup_env.sh) to install the pinned dependencies")
assert tuple(s.stage for s in STEPS) == STAGES


def check_run(cfg: PipelineConfig, until: str) -> list[Step]:
    """The steps up to ``until`` that the config enables, after the checks of the run's own inputs (the sources,
    init_from_hf) that need no stage: each problem one line, before any directory is made."""
    if until not in STAGES:
        raise ConfigError(f"--until {until!r} is not a stage", fix=f"use one of {', '.join(STAGES)}")
    if cfg.sources:
        from koroberta.corpus.build import check_sources

        check_sources(cfg.corpus, cfg.source_paths(), cfg.decontaminate)  # each path, each evaluation file: one line
    else:
        source = Path(cfg.source)
        check_source(source)  # a pipe, socket, device or symlink loop: say which, before any directory is made
        if not source.exists():
            raise InputError("source not found", path=source,
                             fix="point `source:` at a kowiki dump (`koroberta corpus download` fetches one) or a "
                                 "text file")
    if cfg.init_from_hf and not Path(cfg.init_from_hf).is_dir():
        raise InputError("init_from_hf: Hugging Face model directory not found", path=cfg.init_from_hf,
                         fix="point init_from_hf at a local model directory (config.json, model.safetensors, "
                             "tokenizer files): nothing is downloaded")
    return [s for s in STEPS[: STAGES.index(until) + 1] if s.enabled(cfg)]


def run_pipeline(cfg: PipelineConfig, *, until: str = "finetune", force: tuple[str, ...] = (),
                 restart: bool = False, extend: bool = False) -> dict[str, Any]:
    """Walk :data:`STEPS` up to ``until`` (inclusive); each step skips itself when its output is complete for its
    identity and input contents. Returns the summary dict (also ``workdir/summary.json``)."""
    steps = check_run(cfg, until)
    check_requirements(steps)
    # before any directory: a source the probe refuses is one line. --restart retrains a complete run
    plan = plan_pipeline(cfg, until=until, force=(*force, "train") if restart else force)
    wd = Path(cfg.workdir)
    wd.mkdir(parents=True, exist_ok=True)
    for line in plan.lines:
        log.info("%s", line)
    for w in plan.warnings:
        log.warning("%s", w)
    summary: dict[str, Any] = {"name": cfg.name, "workdir": str(wd), "stages": {}}
    timings: dict[str, float] = {}
    opts = RunOptions(workers=cfg.n_workers)
    stage_opts = {"train": TrainOptions(workers=cfg.n_workers, restart=restart, extend=extend)}
    logs = StageLogs(wd / "logs")
    try:
        for step in steps:
            logs.switch(step.stage)
            log.info("=== stage %s === (full log: %s)", step.stage, logs.path(step.stage))
            t = time.perf_counter()
            run = importlib.import_module(f"koroberta.{step.stage}.stage").run
            manifest = run(getattr(cfg, step.stage), step.inputs(cfg, wd), wd / step.out,
                           force=step.stage in force, opts=stage_opts.get(step.stage, opts))
            timings[step.stage] = time.perf_counter() - t
            summary["stages"][step.stage] = manifest.get("stats", {})
            if step.stage == "convert":
                summary.update(_check_export(cfg, wd))
    finally:
        logs.switch(None)
    summary["seconds"] = {k: round(v, 1) for k, v in timings.items()}
    write_json(wd / "summary.json", summary)
    return summary


@dataclasses.dataclass
class Plan:
    """What ``koroberta run`` will do: a line per stage (whether it runs, and what it needs), a total line, and the
    warnings (less free disk than the run writes, less memory than a stage needs)."""

    lines: list[str]
    warnings: list[str]


def plan_pipeline(cfg: PipelineConfig, *, until: str = "finetune", force: tuple[str, ...] = ()) -> Plan:
    """The plan of ``run_pipeline(cfg, until=..., force=...)``, computed without running or writing anything.

    A stage is complete when its output holds this config's identity and its inputs are unchanged
    (:func:`koroberta.resources.output_complete`: inputs larger than 1 GiB are not hashed for the plan; the stage
    checks them by content when it runs). Where a stage runs, what it needs comes from its inputs on disk when the
    stage before it is complete, else from that stage's estimate (the corpus's characters -> sentences -> tokens)."""
    from koroberta import resources as R
    from koroberta.artifacts import read_manifest, sha256_json

    wd = Path(cfg.workdir)
    steps = [s for s in STEPS[: STAGES.index(until) + 1] if s.enabled(cfg)]
    lines: list[str] = []
    warnings: list[str] = []
    running: list[tuple[str, R.Needs]] = []
    upstream_runs = False
    text = train = None
    rows = params = tokens = nlines = None

    def complete(stage: str, ok: bool) -> bool:
        return stage not in force and not upstream_runs and ok

    for step in steps:
        out = wd / step.out
        name = step.stage
        needs: R.Needs | None = None
        if name == "corpus":
            done = complete(name, R.corpus_complete(cfg.corpus, out))
            if done:
                text = R.split_text(out / "split")
                train = R.split_text(out / "split", ("train",))
            if not done or text is None or train is None:
                sources = cfg.source_paths() if cfg.sources else {"source": Path(cfg.source)}
                est = R.corpus_needs(cfg.corpus, sources, cfg.n_workers)
                needs, text, train = (None if done else est.needs), est.split, est.train
        elif name == "spm":
            rows = R.vocab_rows(cfg.spm)
            done = complete(name, R.output_complete(out, "spm", sha256_json(cfg.spm.identity())))
            if done:
                rows = int((read_manifest(out) or {}).get("stats", {}).get("final_vocab_size") or rows)
            else:
                assert train is not None
                needs = R.spm_needs(cfg.spm, train.sentences, estimated=train.estimated)
        elif name == "importhf":
            hf = Path(cfg.init_from_hf or "")
            # reads the model directory only: whether the corpus runs does not matter to it
            done = name not in force and R.output_complete(out, "import-hf", sha256_json(cfg.importhf.identity()))
            conf = read_json(hf / "config.json") if (hf / "config.json").is_file() else {}
            rows = int(conf.get("vocab_size") or 0) if isinstance(conf, dict) else 0
            if not done:
                needs = R.importhf_needs(hf)
        elif name == "preprocess":
            done = complete(name, R.output_complete(out, "preprocess", sha256_json(cfg.preprocess.identity())))
            assert text is not None and train is not None and rows is not None
            if done:
                st = (read_manifest(out) or {}).get("stats", {})
                tokens, nlines = st.get("tokens", {}).get("train"), st.get("lines", {}).get("train")
            else:
                needs = R.preprocess_needs(cfg.preprocess, text, train, rows=rows,
                                           vocab_bytes=R.spm_files_bytes(rows), workers=cfg.n_workers)
                tokens = nlines = None
        elif name == "train":
            from koroberta.databin import data_fingerprint
            from koroberta.train.launch import is_trained

            assert train is not None and rows is not None
            params = R.model_params(cfg.train, rows)
            done = complete(name, (wd / "data-bin").is_dir() and read_manifest(wd / "data-bin") is not None
                            and is_trained(out, cfg.train, data_fingerprint(wd / "data-bin")))
            if not done:
                exact = tokens is not None and nlines is not None
                needs = R.train_needs(cfg.train, rows=rows, train_lines=int(nlines if exact else train.lines),
                                      train_tokens=int(tokens if exact else train.tokens),
                                      shards=cfg.preprocess.shards, estimated=not exact)
        elif name == "convert":
            assert rows is not None and params is not None
            from koroberta.train.preflight import CHECKPOINT_BYTES_PER_PARAM

            done = complete(name, R.output_complete(out, "convert", sha256_json(cfg.convert.identity())))
            if not done:
                needs = R.convert_needs(cfg.convert, params=params, rows=rows, estimated=True,
                                        checkpoint_bytes=params * CHECKPOINT_BYTES_PER_PARAM)
        else:  # finetune
            assert rows is not None and params is not None
            done = complete(name, R.output_complete(out, "finetune", sha256_json(cfg.finetune.identity())))
            if not done:
                needs = R.finetune_needs(cfg.finetune, params=params, estimated=True,
                                         tokenizer_bytes=R.tokenizer_files_bytes(rows))
        if needs is None:
            kept = sum(p.stat().st_size for p in out.rglob("*") if p.is_file()) if out.is_dir() else 0
            lines.append(f"plan: {name:<10} complete: skipped ({R.fmt_bytes(kept)} in {out})")
            continue
        upstream_runs = True
        running.append((name, needs))
        lines.append(f"plan: {name:<10} runs: {needs.describe()} ({needs.basis})")
        # memory per stage; disk for the whole run, below (stages that each fit may not fit one after another)
        warnings.extend(R.warnings_for(name, dataclasses.replace(needs, disk=0), out))
    # stages run one after another: at stage i the disk holds what the stages before it kept, and its own peak
    held, peak = 0, 0
    for _, n in running:
        peak = max(peak, held + n.disk)
        held += n.kept
    where = R.existing_ancestor(wd)
    free = shutil.disk_usage(where).free
    top = max(running, key=lambda x: x[1].memory, default=None)
    lines.append(f"plan: {'total':<10} about {R.fmt_bytes(peak)} more disk at peak, {R.fmt_bytes(held)} kept when the "
                 f"run ends; {R.fmt_bytes(free)} free on the filesystem of {where}"
                 + (f"; memory peak {R.fmt_bytes(top[1].memory)} ({top[0]})" if top else ""))
    if peak > free:
        warnings.append(f"run: {R.fmt_bytes(free)} free on the filesystem of {where}, less than the ~"
                        f"{R.fmt_bytes(peak)} the run writes at its peak (an estimate); free space or choose another "
                        "workdir")
    return Plan(lines, warnings)


def _check_export(cfg: PipelineConfig, wd: Path) -> dict[str, Any]:
    """What the closing summary shows about the export: the learning check and the fill-mask proposals."""
    out: dict[str, Any] = {"learning_check": learning_check(wd, cfg.train.tokens_per_sample)}
    if cfg.fill_mask:
        out["fill_mask"] = run_fill_mask(wd / "hf", cfg.fill_mask)
    return out


LEARNING_CHECK = "learning_check.json"


def learning_check(wd: Path, max_length: int) -> dict[str, Any]:
    """The learning check of ``wd/hf`` (:func:`koroberta.eval.mlm.masked_lm_check` on the valid split), computed
    once per export: ``wd/learning_check.json`` keeps it with the contents it was computed from (the export's and
    the data-bin's output hashes, the valid text's sha256, the length), so a rerun with nothing changed does not
    reload the model and score 1,000 lines again."""
    from koroberta.eval.mlm import masked_lm_check

    valid, data_bin = wd / "corpus" / "split" / "valid.txt", wd / "data-bin"
    from koroberta.databin import data_fingerprint

    # the data-bin by its dict/.bin/.idx only (what the unigram baseline reads), as training fingerprints it
    key = {"model": fingerprint(wd / "hf"), "text": fingerprint(valid), "data_bin": data_fingerprint(data_bin),
           "max_length": max_length}
    cache = wd / LEARNING_CHECK
    if cache.is_file():
        try:
            kept = read_json(cache)
        except ValueError:
            kept = {}
        if isinstance(kept, dict) and kept.get("key") == key and isinstance(kept.get("result"), dict):
            log.info("=== learning check: unchanged export and data, result kept in %s ===", cache)
            return kept["result"]
    log.info("=== learning check: masked-token accuracy on valid vs the unigram baseline ===")
    result = masked_lm_check(wd / "hf", valid, data_bin, max_length=max_length).to_dict()
    write_json(cache, {"key": key, "result": result})
    return result


class StageLogs:
    """While a stage runs, every log record of the process -- fairseq's and hydra's INFO lines and Python warnings
    included, which the terminal does not show (koroberta.cli.setup_logging) -- is appended to
    ``WORKDIR/logs/<stage>.log``. (The train stage's fairseq child process writes its own checkpoints/train.log.)"""

    def __init__(self, directory: Path):
        self.directory = directory
        self.handler: logging.Handler | None = None

    def path(self, name: str) -> Path:
        return self.directory / f"{name}.log"

    def switch(self, name: str | None) -> None:
        root = logging.getLogger()
        if self.handler is not None:
            root.removeHandler(self.handler)
            self.handler.close()
            self.handler = None
        if name is not None:
            self.directory.mkdir(parents=True, exist_ok=True)
            self.handler = logging.FileHandler(self.path(name), encoding="utf-8")
            self.handler.setFormatter(logging.Formatter("%(asctime)s | %(levelname)s | %(name)s | %(message)s"))
            root.addHandler(self.handler)


def run_fill_mask(model_dir: Path, sentences: list[str], top_k: int = 5) -> list[dict[str, Any]]:
    """``pipeline("fill-mask")`` on the exported directory — the way another project will load it."""
    from koroberta.hfcompat import import_transformers

    fill = import_transformers().pipeline("fill-mask", model=str(model_dir), tokenizer=str(model_dir), device="cpu")
    out = []
    for s in sentences:
        if fill.tokenizer.mask_token not in s:
            raise ConfigError(f"fill_mask sentence has no {fill.tokenizer.mask_token}: {s!r}")
        preds = fill(s, top_k=top_k)
        out.append({"sentence": s, "predictions": [{"token": p["token_str"], "id": int(p["token"]),
                                                    "score": round(float(p["score"]), 4)} for p in preds]})
    return out


def format_summary(summary: dict[str, Any]) -> str:
    """The closing report of ``koroberta run``."""
    st = summary["stages"]
    lines = [f"koroberta run '{summary['name']}' — outputs under {summary['workdir']}"]

    def splits(d: Any) -> str:
        return ", ".join(f"{k} {v:,}" for k, v in d.items()) if isinstance(d, dict) else str(d)

    if c := st.get("corpus"):
        lines.append(f"  corpus     documents: {splits(c.get('documents'))}")
        lines.append(f"             sentences: {splits(c.get('sentences'))}")
    if s := st.get("spm"):
        lines.append(f"  spm        pieces {s.get('pieces', '?')}, fairseq/HF vocab {s.get('final_vocab_size', '?')} "
                     f"(fillers {s.get('fillers', '?')})")
    if i := st.get("importhf"):
        diff = (i.get("parity") or {}).get("max_abs_logit_diff")
        lines.append(f"  importhf   {i.get('arch', '?')} from {i.get('tokenizer_class', '?')} "
                     f"({i.get('tokenizer_tokens', '?')} tokens, {i.get('rows', '?')} rows, mask id "
                     f"{i.get('mask_id', '?')}); " + (f"max |logit diff| fairseq vs HF {diff}" if diff is not None
                                                      else "logits NOT checked (--no-parity)"))
    if p := st.get("preprocess"):
        lines.append(f"  preprocess tokens: {splits(p.get('tokens'))}; unk rate {p.get('unk_rate', '?')}")
        shares = [f"{n} {x['share']:.1%}" for n, x in (p.get("sources") or {}).items() if x.get("share") is not None]
        if shares:
            lines.append(f"             train tokens by source: {', '.join(shares)}")
    if t := st.get("train"):
        lines.append(f"  train      {t.get('updates', '?')} updates; train loss {t.get('first_train_loss', '?')} -> "
                     f"{t.get('final_train_loss', '?')}; valid loss {t.get('final_valid_loss', '?')}")
        if vs := t.get("valid_subsets"):
            lines.append("             valid loss by source: " + ", ".join(
                f"{n.removeprefix('valid_')} {v.get('final_loss', '?')}" for n, v in vs.items()))
    if c := st.get("convert"):
        par = c.get("parity", {})
        # each check that did not run is named as such (as in the model card), never shown as "? mismatches";
        # manifests of an older koroberta have only "checked" (= both ran)
        logits = (f"max |logit diff| HF vs fairseq {par.get('max_abs_logit_diff', '?')} over "
                  f"{par.get('logit_sentences', '?')} sentences" if par.get("logits_checked", par.get("checked"))
                  else "logits NOT checked (--no-parity)")
        ids = (f"token ids: {par.get('token_id_mismatches', '?')} mismatches in {par.get('token_id_lines', '?')} lines"
               if par.get("token_ids_checked", "token_id_lines" in par) else "token ids NOT checked (parity_lines 0)")
        where = ("; on the built-in sentences only (no parity text)" if par.get("text") == "builtin_sentences"
                 else "")
        lines.append(f"  convert    {logits}; {ids}{where}")
    lc = summary.get("learning_check")
    if lc:
        from koroberta.eval.mlm import MaskedLMCheck

        lines.append(f"  learned?   {MaskedLMCheck(**lc).describe()}")
    for fm in summary.get("fill_mask", []):
        preds = ", ".join(f"{p['token']!r} {p['score']:.2f}" for p in fm["predictions"])
        lines.append(f"  fill-mask  {fm['sentence']} -> {preds}")
    fms = summary.get("fill_mask", [])
    if lc and fms and all(p.get("id") in lc["frequent_ids"] for fm in fms for p in fm["predictions"]):
        lines.append("             (every proposal is one of the 20 most frequent training tokens -- particles and "
                     "punctuation: the model answers with frequencies here; judge it by the line above)")
    if f := st.get("finetune"):
        scored = f.get("summary") or {}
        split = "test" if "test" in scored else "dev"  # the held-out file when there is one
        n_seeds, examples = len(f.get("seeds") or ()), f.get("examples") or {}

        def figure(metric: str) -> str:
            s = scored.get(split, {}).get(metric) or {}
            if s.get("mean") is None:
                return "?"
            # one seed has no spread to show: its std is 0 by definition, not a measured 0
            return f"{s['mean']:.4f}" + (f" ± {s['std']:.4f}" if n_seeds > 1 and s.get("std") is not None else "")

        def rows(k: str) -> str:
            return f"{examples[k]:,}" if isinstance(examples.get(k), int) else "?"

        seeds = f"mean ± std over {n_seeds} seeds" if n_seeds > 1 else "1 seed"
        lines.append(f"  finetune   {str(f.get('task', 'nsmc')).upper()} accuracy {figure('accuracy')}, "
                     f"F1 {figure('f1')} ({split}, {rows(split)} rows, {seeds}; trained on {rows('train')})")
    wd = Path(summary["workdir"])
    if "convert" in st:
        lines.append(f"  model      {wd / 'hf'}  (AutoModelForMaskedLM / AutoTokenizer .from_pretrained)")
    elif st:  # --until stopped before the export: say so rather than name a model that does not exist
        last = list(st)[-1]
        lines.append(f"  stopped    after {last} (--until); run again without --until to go on: complete stages "
                     "are skipped")
    lines.append(f"  timings    {json.dumps(summary.get('seconds', {}))}")
    return "\n".join(lines)


# -- CLI --------------------------------------------------------------------------------------------------------------
def _load_from_args(args: argparse.Namespace) -> PipelineConfig:
    """The config of ``run`` / ``config show``: the file, then ``--workdir/--workers/--source``, then each ``--set``
    in order."""
    return PipelineConfig.load(args.config, args.set or (), workdir=args.workdir, workers=args.workers,
                               source=args.source)


def _cmd_run(args: argparse.Namespace) -> int:
    from koroberta.train.launch import ExtraArgsRefused

    cfg = _load_from_args(args)
    if args.plan:  # what the run would do and need, from the login node: nothing is run or written
        check_run(cfg, args.until)
        plan = plan_pipeline(cfg, until=args.until, force=(*(args.force or ()), *(["train"] if args.restart else [])))
        print("\n".join(plan.lines + [f"warning: {w}" for w in plan.warnings]))
        return 0
    try:
        summary = run_pipeline(cfg, until=args.until, force=tuple(args.force or ()), restart=args.restart,
                               extend=args.extend)
    except ExtraArgsRefused as e:  # fairseq refuses train.extra_args: name the file they are in
        raise ConfigError(f"train.extra_args {cfg.train.extra_args}: {e.problem}", path=args.config,
                          fix=e.fix.replace("train.extra_args (or --extra-args)",
                                            f"the `train:` section's extra_args of {args.config}")) from None
    print(format_summary(summary))
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="run all stages from a config (skips stages that are already complete)",
                       description="Chain corpus -> spm -> preprocess -> train -> convert -> finetune from one YAML "
                                   "config (see configs/). A stage whose output is complete for the same config and "
                                   "inputs is skipped, so rerunning after a crash resumes.")
    _add_config_arguments(p)
    p.add_argument("--until", default="finetune", choices=STAGES, help="stop after this stage")
    p.add_argument("--force", nargs="+", choices=STAGES, help="rerun these stages even if complete")
    p.add_argument("--restart", action="store_true", help="train: move checkpoints of a different run aside and "
                                                          "train from update 0 (see `koroberta train --help`)")
    p.add_argument("--extend", action="store_true", help="train: continue the checkpoints to a raised max_update")
    p.add_argument("--plan", action="store_true",
                   help="print the plan -- each stage that would run (or is complete and skipped) with the memory and "
                        "disk it needs, and the run's total disk -- and exit without running or writing anything")
    p.set_defaults(func=_cmd_run)

    c = sub.add_parser("config", help="show the resolved config of a run (defaults filled in, --set applied)",
                       description="Inspect a `koroberta run` config.")
    csub = c.add_subparsers(dest="config_command", metavar="{show}", required=True)
    show = csub.add_parser("show", help="print the resolved config as YAML, each key marked identity or run-time",
                           description="Print the config `koroberta run CONFIG` would use -- the file, every default "
                                       "filled in, the overrides applied -- as YAML that `koroberta run` takes as "
                                       "it is. Each key is marked `# identity` (a change reruns its stage) or "
                                       "`# run-time` (a change reruns nothing); each stage section shows its "
                                       "identity hash, so comparing two outputs shows which stages a change reruns.")
    _add_config_arguments(show)
    show.add_argument("--json", action="store_true", help="print JSON instead: the config, each key's class and "
                                                         "each stage's identity sha256")
    show.set_defaults(func=_cmd_config_show)


def _add_config_arguments(p: argparse.ArgumentParser) -> None:
    """The config file and its overrides: the same for ``run`` and ``config show``, so one can stand in for the
    other on a command line."""
    p.add_argument("config", help="YAML config, e.g. configs/demo.yaml")
    p.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="override any key of the config, repeatable: train.lr=3e-4, corpus.valid_fraction=0.01, "
                        "workdir=runs/x, 'train.adam_betas=[0.9,0.98]'; the value is read as YAML and checked as the "
                        "file's is; a later --set of the same key wins (and wins over --workdir/--workers/--source)")
    p.add_argument("--workdir", help="override `workdir:` (= --set workdir=...)")
    p.add_argument("--workers", type=int, help="override `workers:` (= --set workers=...)")
    p.add_argument("--source", help="override `source:` (e.g. the path `koroberta corpus download` printed; "
                                    "= --set source=...)")


def format_resolved_config(cfg: PipelineConfig, *, path: str | Path, overrides: list[str] | tuple[str, ...] = (),
                           before: Optional[PipelineConfig] = None) -> str:
    """``koroberta config show``: ``cfg`` as YAML (:func:`koroberta.config.annotated_yaml`), every key's class as a
    trailing comment and a comment line with each stage's identity hash. ``before`` (the file without the
    overrides, when that alone is valid) adds which stages' identities the overrides change."""
    from koroberta.config import annotated_yaml

    hashes = cfg.stage_identities()
    given = " ".join(overrides)
    header = [f"koroberta config show {path}{' ' + given if given else ''}",
              "the resolved config: defaults filled in, overrides applied; `koroberta run` takes this file as it is",
              "`# identity`: a change reruns its stage; `# run-time`: a change reruns nothing"]
    if before is not None and overrides:
        old = before.stage_identities()
        changed = [s for s in hashes if hashes[s] != old.get(s)]
        header.append(f"the overrides change the identity of: {', '.join(changed)} (rerun; later stages too where "
                      f"the bytes they read change)" if changed else
                      "the overrides change no stage's identity: a completed run reruns nothing")
    return annotated_yaml(cfg, header=header, section_note=lambda name, _: (
        f"{name} stage identity {hashes[name][:12]}" if name in hashes else None))


def _cmd_config_show(args: argparse.Namespace) -> int:
    from koroberta.config import field_classes, parse_override

    cfg = _load_from_args(args)
    given = [f"--{k} {getattr(args, k)}" for k in ("workdir", "workers", "source") if getattr(args, k) is not None]
    given += [parse_override(item).shown for item in args.set or ()]
    if args.json:
        print(json.dumps({"config": cfg.to_dict(), "classes": field_classes(cfg),
                          "stage_identity_sha256": cfg.stage_identities()}, ensure_ascii=False, indent=2))
        return 0
    try:  # which stages the overrides would rerun: only when the file is a valid config without them
        before = PipelineConfig.load(args.config) if given else None
    except ConfigError:
        before = None
    print(format_resolved_config(cfg, path=args.config, overrides=given, before=before), end="")
    return 0
