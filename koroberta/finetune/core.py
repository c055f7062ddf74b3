"""Fine-tune the HF export for sentence classification and keep the fine-tuned model (``koroberta finetune``).

The training loop, batching, precision handling and metrics are the eval harness's (:mod:`koroberta.eval.loop`,
:mod:`koroberta.eval.metrics`); this stage adds what ``eval`` does not do: one seed, a saved ``model/`` directory.
"""

from __future__ import annotations

import logging
import random
import time
from pathlib import Path
from typing import Any

from koroberta.artifacts import StageOutput, check_output_location, read_manifest, skip_if_complete, write_json
from koroberta.errors import InputError, rust_write_errors
from koroberta.eval.loop import (TrainSettings, check_model_dir, fit, load_model, load_tokenizer, predict,
                                 resolve_device, resolve_precision)
from koroberta.eval.metrics import classification
from koroberta.finetune.config import FinetuneConfig
from koroberta.finetune.data import Rows, read_tsv

log = logging.getLogger("koroberta.finetune")
STAGE = "finetune"


def metrics(pred: list[int], gold: list[int], n_labels: int) -> dict[str, Any]:
    """Accuracy and F1: binary tasks report F1 of class 1 (NSMC convention), others macro-F1 (scikit-learn)."""
    return classification(pred, gold, n_labels)


def finetune(cfg: FinetuneConfig, model_dir: str | Path, train_tsv: str | Path, out_dir: str | Path, *,
             test_tsv: str | Path | None = None, force: bool = False, overwrite: bool = False) -> dict[str, Any]:
    """Fine-tune ``model_dir`` (an HF export) on ``train_tsv`` and evaluate; returns the manifest.

    The train TSV is split (seeded) into train/dev by ``cfg.dev_fraction``. Metrics are on ``test_tsv`` when
    given (``stats.eval_split == "test"``), else on the dev split. Writes ``model/`` (safetensors + tokenizer) and
    ``metrics.json`` under ``out_dir``.
    """
    mdir, out = Path(model_dir), Path(out_dir)
    inputs = {"model": mdir, "train_tsv": Path(train_tsv), "test_tsv": Path(test_tsv) if test_tsv else None}
    check_output_location(out, STAGE, inputs, overwrite=overwrite)  # before any work: nothing to undo
    if skip_if_complete(out, STAGE, cfg, inputs, force=force, log=log):
        return read_manifest(out) or {}
    # every input is checked before torch/transformers load and before any output exists
    check_model_dir(mdir)
    rows = read_tsv(train_tsv, cfg)
    test = read_tsv(test_tsv, cfg) if test_tsv else None
    order = list(range(len(rows.labels)))
    random.Random(cfg.seed).shuffle(order)
    n_dev = max(1, round(len(order) * cfg.dev_fraction))
    if len(order) - n_dev < 1:
        raise InputError(f"only {len(order)} rows: nothing left to train on after the dev split", path=train_tsv,
                         fix="pass more rows or a smaller --dev-fraction")
    dev_idx, train_idx = order[:n_dev], order[n_dev:]
    if cfg.max_train_rows:
        train_idx = train_idx[: cfg.max_train_rows]
    eval_rows = test if test is not None else Rows([rows.texts[i] for i in dev_idx], [rows.labels[i] for i in dev_idx])
    if cfg.max_eval_rows:
        eval_rows = Rows(eval_rows.texts[: cfg.max_eval_rows], eval_rows.labels[: cfg.max_eval_rows])

    import torch

    from koroberta.hfcompat import import_transformers

    tf = import_transformers()
    device = resolve_device(cfg.device)
    precision = resolve_precision("auto", device)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    tok = load_tokenizer(tf, mdir)
    torch.manual_seed(cfg.seed)  # the head init and dropout draw from torch's RNG
    model = load_model(tf, mdir, "sequence", len(cfg.labels), cfg.labels)
    pad = tok.pad_token_id
    # RoBERTa position ids start at pad + 1 = 2, so a model takes max_position_embeddings - 2 tokens
    max_len = min(cfg.max_length, model.config.max_position_embeddings - 2)
    tr_ids = tok([rows.texts[i] for i in train_idx], truncation=True, max_length=max_len)["input_ids"]
    tr_y = [rows.labels[i] for i in train_idx]
    ev_ids = tok(eval_rows.texts, truncation=True, max_length=max_len)["input_ids"]
    settings = TrainSettings(epochs=cfg.epochs, batch_size=cfg.batch_size, eval_batch_size=cfg.eval_batch_size,
                             lr=cfg.lr, warmup_ratio=cfg.warmup_ratio, weight_decay=cfg.weight_decay,
                             grad_clip=cfg.grad_clip)

    # rust_write_errors: a full disk under safetensors/tokenizers' writers reaches StageOutput as an OSError
    with StageOutput(out, stage=STAGE, config=cfg, inputs=inputs, overwrite=overwrite) as st, rust_write_errors():
        t0 = time.perf_counter()
        fitted = fit(model, tr_ids, tr_y, kind="classification", pad=pad, settings=settings, seed=cfg.seed,
                     device=device, precision=precision, tag="finetune: ")
        st.timing["train_s"] = round(time.perf_counter() - t0, 3)
        pred = predict(model, ev_ids, kind="classification", pad=pad, batch_size=cfg.eval_batch_size, device=device,
                       precision=precision)
        res = metrics(pred, eval_rows.labels, len(cfg.labels))
        model.to("cpu").save_pretrained(str(st.tmp / "model"))
        tok.save_pretrained(str(st.tmp / "model"))
        st.stats.update(res, task=cfg.task, eval_split="test" if test is not None else "dev",
                        n_train=len(tr_ids), n_dev=len(dev_idx), n_test=len(test.labels) if test is not None else 0,
                        n_eval=len(eval_rows.labels), device=device, precision=precision, max_length=max_len,
                        **fitted,
                        majority_baseline=round(max(eval_rows.labels.count(c) for c in range(len(cfg.labels)))
                                                / len(eval_rows.labels), 6))
        write_json(st.tmp / "metrics.json", st.stats)
    log.info("finetune: %s accuracy %.4f f1 %.4f", st.stats["eval_split"], res["accuracy"], res["f1"])
    return st.manifest
