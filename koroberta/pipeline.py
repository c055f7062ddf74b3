"""``koroberta run CONFIG.yaml``: every stage, chained, each skipped when its output is complete.

Data flow (directories under ``workdir``)::

    source (.xml.bz2 dump | WikiExtractor dir | text)
      └─ corpus/      extract -> clean -> kss sentence split -> train/valid/test by document
           └─ corpus/split/{train,valid,test}.txt          one sentence per line, blank line between documents
    spm/{spm.model, dict.txt}                              ids: fairseq = spm + 1, HF = fairseq (koroberta.spm.layout)
    data-bin/{train,valid,test}.{bin,idx}, dict.txt        fairseq mmap, what fairseq-preprocess --srcdict makes
    checkpoints/checkpoint_last.pt                         fairseq-train masked_lm, resumable
    hf/{config.json, model.safetensors, tokenizer.json}    RobertaForMaskedLM, parity-checked against fairseq
    finetune-nsmc/{metrics.json, model/}                   sentence classification from the export

Each stage function is the same one its ``koroberta <stage>`` subcommand calls. It returns at once when its output
directory holds a complete marker for the same config and the same input fingerprints, so ``run`` after a crash
redoes only what is missing, and changing one section reruns that stage and everything downstream of it (their
input fingerprints change), nothing upstream.

Relative paths in the YAML are relative to the current directory (``make demo`` runs from the repo root).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import time
from pathlib import Path
from typing import Any, Optional

from koroberta.artifacts import read_manifest, write_json
from koroberta.config import Config, load_yaml, option
from koroberta.convert.config import ConvertConfig
from koroberta.corpus.config import CorpusConfig
from koroberta.errors import ConfigError, InputError
from koroberta.finetune.config import FinetuneConfig
from koroberta.preprocess.config import PreprocessConfig
from koroberta.spm.config import SpmConfig
from koroberta.train.config import TrainConfig

log = logging.getLogger("koroberta.run")

STAGES = ("corpus", "spm", "preprocess", "train", "convert", "finetune")


@dataclasses.dataclass
class PipelineConfig(Config):
    """The whole run. Top-level keys of the YAML plus one mapping per stage section."""

    SECTION = "run"

    name: str = option("koroberta", help="run name (model card, summary)")
    workdir: str = option("runs/koroberta", help="all stage outputs go under this directory")
    source: str = option("", help="kowiki .xml.bz2/.xml dump, WikiExtractor output, or plain text (blank line = new document)")
    workers: int = option(0, help="worker processes for corpus/preprocess (0 = all CPU cores)")
    nsmc_train: Optional[str] = option(None, help="NSMC-format TSV for the finetune stage (None: skip it)")
    nsmc_test: Optional[str] = option(None, help="optional held-out NSMC-format TSV to report test accuracy on")
    fill_mask: list[str] = option(default_factory=list, cli=False,
                                  help="Korean sentences with <mask> to run through pipeline('fill-mask')")
    corpus: CorpusConfig = option(default_factory=CorpusConfig, cli=False)
    spm: SpmConfig = option(default_factory=SpmConfig, cli=False)
    preprocess: PreprocessConfig = option(default_factory=PreprocessConfig, cli=False)
    train: TrainConfig = option(default_factory=TrainConfig, cli=False)
    convert: ConvertConfig = option(default_factory=ConvertConfig, cli=False)
    finetune: FinetuneConfig = option(default_factory=FinetuneConfig, cli=False)

    def validate(self) -> None:
        self.require(bool(self.source), "`source:` is required (a kowiki dump, WikiExtractor output or text file)")
        self.require(self.workers >= 0, "workers must be >= 0")

    @property
    def n_workers(self) -> int:
        return self.workers or (os.cpu_count() or 1)

    @classmethod
    def load(cls, path: str | Path, **overrides: Any) -> "PipelineConfig":
        data = load_yaml(path)
        data.update({k: v for k, v in overrides.items() if v is not None})
        try:
            return cls.from_dict(data, source=str(path))
        except ConfigError as e:
            raise ConfigError(f"{path}: {e}") from None


def _stage_stats(directory: Path) -> dict[str, Any]:
    m = read_manifest(directory)
    return (m or {}).get("stats", {})


def run_pipeline(cfg: PipelineConfig, *, until: str = "finetune", force: tuple[str, ...] = ()) -> dict[str, Any]:
    """Run the stages in order up to ``until`` (inclusive). Returns the summary dict (also ``workdir/summary.json``)."""
    from koroberta.convert import convert
    from koroberta.corpus import build_corpus
    from koroberta.finetune import finetune
    from koroberta.preprocess import preprocess
    from koroberta.spm import train_vocab
    from koroberta.train import train

    if until not in STAGES:
        raise ConfigError(f"--until {until!r} is not a stage", fix=f"use one of {', '.join(STAGES)}")
    last = STAGES.index(until)
    wd = Path(cfg.workdir)
    wd.mkdir(parents=True, exist_ok=True)
    source = Path(cfg.source)
    if not source.exists():
        raise InputError("source not found", path=source,
                         fix="point `source:` at a kowiki dump (`koroberta corpus download` fetches one) or a text file")
    summary: dict[str, Any] = {"name": cfg.name, "workdir": str(wd), "stages": {}}
    timings: dict[str, float] = {}

    def step(name: str):
        log.info("=== stage %s ===", name)
        return time.perf_counter()

    t = step("corpus")
    split_dir = build_corpus(cfg.corpus, source, wd / "corpus", workers=cfg.n_workers, force="corpus" in force)
    timings["corpus"] = time.perf_counter() - t
    summary["stages"]["corpus"] = _stage_stats(split_dir)
    if last >= 1:
        t = step("spm")
        vocab_dir = train_vocab(cfg.spm, split_dir / "train.txt", wd / "spm", force="spm" in force)
        timings["spm"] = time.perf_counter() - t
        summary["stages"]["spm"] = _stage_stats(vocab_dir)
    if last >= 2:
        t = step("preprocess")
        data_bin = preprocess(cfg.preprocess, split_dir, vocab_dir, wd / "data-bin", workers=cfg.n_workers,
                              force="preprocess" in force)
        timings["preprocess"] = time.perf_counter() - t
        summary["stages"]["preprocess"] = _stage_stats(data_bin)
    if last >= 3:
        t = step("train")
        checkpoint = train(cfg.train, data_bin, wd / "checkpoints", force="train" in force,
                           spm_model=vocab_dir / "spm.model")
        timings["train"] = time.perf_counter() - t
        summary["stages"]["train"] = _stage_stats(wd / "checkpoints")
    if last >= 4:
        t = step("convert")
        manifest = convert(cfg.convert, checkpoint, vocab_dir, wd / "hf", parity_text=split_dir / "valid.txt",
                           force="convert" in force)
        timings["convert"] = time.perf_counter() - t
        summary["stages"]["convert"] = manifest.get("stats", {})
        if cfg.fill_mask:
            summary["fill_mask"] = run_fill_mask(wd / "hf", cfg.fill_mask)
    if last >= 5 and cfg.nsmc_train:
        t = step("finetune")
        manifest = finetune(cfg.finetune, wd / "hf", cfg.nsmc_train, wd / "finetune-nsmc",
                            test_tsv=cfg.nsmc_test, force="finetune" in force)
        timings["finetune"] = time.perf_counter() - t
        summary["stages"]["finetune"] = manifest.get("stats", {})
    summary["seconds"] = {k: round(v, 1) for k, v in timings.items()}
    write_json(wd / "summary.json", summary)
    return summary


def run_fill_mask(model_dir: Path, sentences: list[str], top_k: int = 5) -> list[dict[str, Any]]:
    """``pipeline("fill-mask")`` on the exported directory — the way another project will load it."""
    from koroberta.convert.hfcompat import import_transformers

    fill = import_transformers().pipeline("fill-mask", model=str(model_dir), tokenizer=str(model_dir), device="cpu")
    out = []
    for s in sentences:
        if fill.tokenizer.mask_token not in s:
            raise ConfigError(f"fill_mask sentence has no {fill.tokenizer.mask_token}: {s!r}")
        preds = fill(s, top_k=top_k)
        out.append({"sentence": s, "predictions": [{"token": p["token_str"], "score": round(float(p["score"]), 4)}
                                                   for p in preds]})
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
    if p := st.get("preprocess"):
        lines.append(f"  preprocess tokens: {splits(p.get('tokens'))}; unk rate {p.get('unk_rate', '?')}")
    if t := st.get("train"):
        lines.append(f"  train      {t.get('updates', '?')} updates; train loss {t.get('first_train_loss', '?')} -> "
                     f"{t.get('final_train_loss', '?')}; valid loss {t.get('final_valid_loss', '?')}")
    if c := st.get("convert"):
        par = c.get("parity", {})
        lines.append(f"  convert    max |logit diff| HF vs fairseq {par.get('max_abs_logit_diff', '?')} over "
                     f"{par.get('logit_sentences', '?')} sentences; token ids: {par.get('token_id_mismatches', '?')} "
                     f"mismatches in {par.get('token_id_lines', '?')} lines")
    for fm in summary.get("fill_mask", []):
        preds = ", ".join(f"{p['token']!r} {p['score']:.2f}" for p in fm["predictions"])
        lines.append(f"  fill-mask  {fm['sentence']} -> {preds}")
    if f := st.get("finetune"):
        lines.append(f"  finetune   NSMC accuracy {f.get('accuracy', '?')}, F1 {f.get('f1', '?')} "
                     f"({f.get('eval_split', 'dev')}; train {f.get('n_train', '?')}, dev {f.get('n_dev', '?')})")
    wd = Path(summary["workdir"])
    lines.append(f"  model      {wd / 'hf'}  (AutoModelForMaskedLM / AutoTokenizer .from_pretrained)")
    lines.append(f"  timings    {json.dumps(summary.get('seconds', {}))}")
    return "\n".join(lines)


# -- CLI --------------------------------------------------------------------------------------------------------------
def _cmd_run(args: argparse.Namespace) -> int:
    cfg = PipelineConfig.load(args.config, workdir=args.workdir, workers=args.workers)
    summary = run_pipeline(cfg, until=args.until, force=tuple(args.force or ()))
    print(format_summary(summary))
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="run all stages from a config (skips stages that are already complete)",
                       description="Chain corpus -> spm -> preprocess -> train -> convert -> finetune from one YAML "
                                   "config (see configs/). A stage whose output is complete for the same config and "
                                   "inputs is skipped, so rerunning after a crash resumes.")
    p.add_argument("config", help="YAML config, e.g. configs/demo.yaml")
    p.add_argument("--workdir", help="override `workdir:`")
    p.add_argument("--workers", type=int, help="override `workers:`")
    p.add_argument("--until", default="finetune", choices=STAGES, help="stop after this stage")
    p.add_argument("--force", nargs="+", choices=STAGES, help="rerun these stages even if complete")
    p.set_defaults(func=_cmd_run)
