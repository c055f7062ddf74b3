"""``run_eval``: fine-tune the HF export on one benchmark task once per seed and report mean ± std.

Every file is read and validated before any output exists. The output directory (``metrics.json`` + manifest +
completion marker) is written through :class:`~koroberta.artifacts.StageOutput`: a failed or killed run leaves no
complete-looking result, and a rerun with the same config and inputs is skipped. The harness measures the
checkpoint; with ``save_model`` it also keeps the first seed's fine-tuned model in ``model/`` (the pipeline's finetune
step, which ships it).
"""

from __future__ import annotations

import logging
import random
from pathlib import Path
from typing import Any

from koroberta.artifacts import (StageOutput, check_output_location, read_json, read_manifest, sha256_file,
                                 skip_if_complete, write_json)
from koroberta.errors import InputError, rust_write_errors
from koroberta.eval.config import EvalConfig
from koroberta.eval.loop import (TrainSettings, check_model_dir, fit, load_model, load_tokenizer, model_inputs,
                                 predict, resolve_device, resolve_precision)
from koroberta.eval.metrics import summarize
from koroberta.eval.readers import TaskData
from koroberta.eval.tasks import TASK_SPECS, Task, encode, score

log = logging.getLogger("koroberta.eval")
#: the figures averaged over seeds, per task kind (the rest of a run's metrics dict describes them)
METRICS = {"classification": ("accuracy", "f1"), "regression": ("pearson", "spearman", "f1"),
           "tokens": ("entity_f1", "char_f1", "entity_f1_micro")}


def settings_of(cfg: EvalConfig) -> TrainSettings:
    return TrainSettings(epochs=cfg.epochs, batch_size=cfg.batch_size, eval_batch_size=cfg.eval_batch_size, lr=cfg.lr,
                         warmup_ratio=cfg.warmup_ratio, weight_decay=cfg.weight_decay, grad_clip=cfg.grad_clip)


def _read(task: Task, cfg: EvalConfig, files: dict[str, Path | None]) -> tuple[dict[str, TaskData], dict[str, Any]]:
    """The train set and the evaluation sets (dev, optional test), with a description of where dev came from."""
    train = task.read(files["train"], cfg)
    sets: dict[str, TaskData] = {}
    if files["dev"] is not None:
        sets["dev"] = task.read(files["dev"], cfg)
        dev_source = "file"
    else:  # hold out a seeded share of train, the same for every seed of the run
        order = list(range(len(train)))
        random.Random(cfg.seed).shuffle(order)
        n_dev = max(1, round(len(order) * cfg.dev_fraction))
        if len(order) - n_dev < 1:
            raise InputError(f"only {len(order)} example(s): nothing left to train on after holding out a dev set",
                             path=files["train"], fix="pass --dev FILE, more training rows, or a smaller --dev-fraction")
        sets["dev"] = train.subset(sorted(order[:n_dev]))
        train = train.subset(sorted(order[n_dev:]))
        dev_source = f"{cfg.dev_fraction:g} of the train file held out (seed {cfg.seed})"
    if files["test"] is not None:
        sets["test"] = task.read(files["test"], cfg)
    if cfg.max_train_rows:
        train = train.subset(range(min(len(train), cfg.max_train_rows)))
    if cfg.max_eval_rows:
        sets = {k: v.subset(range(min(len(v), cfg.max_eval_rows))) for k, v in sets.items()}
    return {"train": train, **sets}, {"dev_source": dev_source}


def run_eval(cfg: EvalConfig, model_dir: str | Path, train: str | Path, out_dir: str | Path, *,
             dev: str | Path | None = None, test: str | Path | None = None, model_card: bool = False,
             force: bool = False, overwrite: bool = False, stage: str = "eval") -> dict[str, Any]:
    """Evaluate ``model_dir`` on ``cfg.task``; returns the manifest (``stats`` holds the mean/std summary).

    With ``model_card`` the results also go, as a table, into ``model_dir/README.md`` (replacing this task's
    earlier table). ``stage`` is the manifest's stage name: the directory's owner, which decides what may replace
    it (the pipeline's ``finetune-nsmc/`` stays the finetune stage's, see :func:`check_output_location`).
    """
    task = TASK_SPECS[cfg.task]
    mdir, out = Path(model_dir), Path(out_dir)
    check_model_dir(mdir)
    files = {"train": Path(train), "dev": Path(dev) if dev else None, "test": Path(test) if test else None}
    inputs = {**model_inputs(mdir), **files}
    check_output_location(out, stage, inputs, overwrite=overwrite)  # before any work: nothing to undo
    if skip_if_complete(out, stage, cfg, inputs, force=force, log=log):
        manifest = read_manifest(out) or {}
    else:
        manifest = _run(cfg, task, mdir, files, out, inputs, overwrite, stage)
    if model_card:
        from koroberta.eval.card import write_model_card

        write_model_card(mdir, read_json(out / "metrics.json"))
    return manifest


def _run(cfg: EvalConfig, task: Task, mdir: Path, files: dict[str, Path | None], out: Path,
         inputs: dict[str, Any], overwrite: bool, stage: str) -> dict[str, Any]:
    data, about = _read(task, cfg, files)  # before the heavy imports: bad input fails in a second

    import torch

    from koroberta.hfcompat import import_transformers

    tf = import_transformers()
    device = resolve_device(cfg.device)
    precision = resolve_precision(cfg.precision, device)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    tok = load_tokenizer(tf, mdir, need_fast=task.kind == "tokens")
    labels = task.labels(cfg)
    # RoBERTa position ids start at pad + 1 = 2, so a model takes max_position_embeddings - 2 tokens
    max_len = min(cfg.max_length, tf.AutoConfig.from_pretrained(str(mdir)).max_position_embeddings - 2)
    enc = {k: encode(task, tok, d, max_len) for k, d in data.items()}
    evals = [k for k in ("dev", "test") if k in data]
    s = settings_of(cfg)
    kind = task.kind
    common = {"kind": kind, "pad": tok.pad_token_id, "device": device, "precision": precision}

    saved = None
    # rust_write_errors: a full disk under safetensors/tokenizers' writers reaches StageOutput as an OSError
    with StageOutput(out, stage=stage, config=cfg, inputs=inputs, overwrite=overwrite) as st, rust_write_errors():
        from koroberta.resources import announce, finetune_needs, hf_params, model_files_bytes

        announce(log, stage, finetune_needs(cfg, params=hf_params(mdir)[0], tokenizer_bytes=model_files_bytes(mdir)),
                 out)  # the first line: once the output is taken
        runs = []
        for seed in cfg.seed_list:
            torch.manual_seed(seed)  # the head init and dropout draw from torch's RNG
            model = load_model(tf, mdir, "token" if kind == "tokens" else "sequence", len(labels) or 1, labels)
            run: dict[str, Any] = {"seed": seed}
            run.update(fit(model, enc["train"].ids, enc["train"].targets, settings=s, seed=seed,
                           tag=f"{stage} {task.name} seed {seed}: ", **common))
            for split in evals:
                pred = predict(model, enc[split].ids, batch_size=s.eval_batch_size, **common)
                run[split] = score(task, data[split], enc[split], pred, labels)
            log.info("%s %s seed %d: %s", stage, task.name, seed,
                     ", ".join(f"{sp} {task.main_metric} {run[sp][task.main_metric]}" for sp in evals))
            runs.append(run)
            if cfg.save_model and saved is None:  # one model to ship; the other seeds only measure the spread
                model.to("cpu").save_pretrained(str(st.tmp / "model"))
                tok.save_pretrained(str(st.tmp / "model"))
                saved = {"dir": "model", "seed": seed}
            del model
        summary = {sp: {m: summarize([r[sp][m] for r in runs]) for m in METRICS[kind]} for sp in evals}
        result = {
            "task": task.name, "title": task.title, "main_metric": task.main_metric, "seeds": cfg.seed_list,
            "device": device, "precision": precision,
            "data": {k: {"file": files[k].name, "sha256": sha256_file(files[k]), "examples": len(data[k])}
                     for k in ("train", "dev", "test") if files.get(k) is not None},
            "examples": {k: len(d) for k, d in data.items()},
            "truncated": {k: sum(len(i) >= max_len for i in e.ids) for k, e in enc.items()},
            **about,
            "settings": {"max_length": max_len, "epochs": s.epochs, "batch_size": s.batch_size, "lr": s.lr,
                         "warmup_ratio": s.warmup_ratio, "weight_decay": s.weight_decay, "grad_clip": s.grad_clip,
                         "max_train_rows": cfg.max_train_rows, "max_eval_rows": cfg.max_eval_rows},
            "labels": labels, "metrics": list(METRICS[kind]), "summary": summary, "runs": runs,
            **({"model": saved} if saved else {}),
        }
        write_json(st.tmp / "metrics.json", result)
        st.stats.update(task=task.name, main_metric=task.main_metric, seeds=cfg.seed_list, device=device,
                        precision=precision, examples=result["examples"], summary=summary)
    return st.manifest
