"""Fine-tune the HF export for sentence classification with a plain, seeded torch loop.

A hand-written loop instead of ``transformers.Trainer``: Trainer needs ``accelerate`` (not in the environment), and
the plain loop is deterministic on CPU with a fixed seed. Batches are padded per batch (dynamic padding): NSMC
reviews average ~20 tokens, so padding to max_length would cost ~5x the compute.
"""

from __future__ import annotations

import logging
import math
import random
import shutil
import time
from pathlib import Path
from typing import Any

from koroberta.artifacts import StageOutput, is_complete, read_manifest, write_json
from koroberta.errors import DependencyError, InputError
from koroberta.finetune.config import FinetuneConfig
from koroberta.finetune.data import Rows, read_tsv

log = logging.getLogger("koroberta.finetune")
STAGE = "finetune"


def metrics(pred: list[int], gold: list[int], n_labels: int) -> dict[str, Any]:
    """Accuracy and F1: binary tasks report F1 of class 1 (NSMC convention), others macro-F1."""
    acc = sum(int(p == g) for p, g in zip(pred, gold)) / max(len(gold), 1)

    def f1_of(c: int) -> float:
        tp = sum(1 for p, g in zip(pred, gold) if p == c and g == c)
        fp = sum(1 for p, g in zip(pred, gold) if p == c and g != c)
        fn = sum(1 for p, g in zip(pred, gold) if p != c and g == c)
        return 0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn)

    if n_labels == 2:
        return {"accuracy": round(acc, 6), "f1": round(f1_of(1), 6), "f1_average": "binary (label index 1)"}
    return {"accuracy": round(acc, 6), "f1": round(sum(f1_of(c) for c in range(n_labels)) / n_labels, 6),
            "f1_average": "macro"}


def _device(cfg: FinetuneConfig) -> str:
    import torch

    if cfg.device == "cuda" and not torch.cuda.is_available():
        raise DependencyError("--device cuda requested but torch sees no CUDA device",
                              fix="use --device cpu (or auto), or install a CUDA build of torch")
    return "cuda" if cfg.device == "cuda" or (cfg.device == "auto" and torch.cuda.is_available()) else "cpu"


def _batches(size: int, order: list[int]) -> list[list[int]]:
    return [order[i:i + size] for i in range(0, len(order), size)]


def _encode(tok, texts: list[str], max_length: int) -> list[list[int]]:
    return tok(texts, truncation=True, max_length=max_length)["input_ids"]


def _collate(ids: list[list[int]], idx: list[int], pad: int, device: str):
    import torch

    width = max(len(ids[i]) for i in idx)
    x = torch.full((len(idx), width), pad, dtype=torch.long)
    for r, i in enumerate(idx):
        x[r, : len(ids[i])] = torch.tensor(ids[i])
    return x.to(device), (x != pad).long().to(device)


def predict(model, ids: list[list[int]], pad: int, batch_size: int, device: str) -> list[int]:
    import torch

    model.eval()
    order = sorted(range(len(ids)), key=lambda i: len(ids[i]))  # length-sorted: less padding
    pred = [0] * len(ids)
    with torch.inference_mode():
        for b in _batches(batch_size, order):
            x, m = _collate(ids, b, pad, device)
            for i, p in zip(b, model(input_ids=x, attention_mask=m).logits.argmax(-1).tolist()):
                pred[i] = p
    return pred


def finetune(cfg: FinetuneConfig, model_dir: str | Path, train_tsv: str | Path, out_dir: str | Path, *,
             test_tsv: str | Path | None = None, force: bool = False, overwrite: bool = False) -> dict[str, Any]:
    """Fine-tune ``model_dir`` (an HF export) on ``train_tsv`` and evaluate; returns the manifest.

    The train TSV is split (seeded) into train/dev by ``cfg.dev_fraction``. Metrics are on ``test_tsv`` when
    given (``stats.eval_split == "test"``), else on the dev split. Writes ``model/`` (safetensors + tokenizer) and
    ``metrics.json`` under ``out_dir``.
    """
    import torch

    from koroberta.convert.hfcompat import import_transformers

    mdir, out = Path(model_dir), Path(out_dir)
    inputs = {"model": mdir, "train_tsv": Path(train_tsv), "test_tsv": Path(test_tsv) if test_tsv else None}
    if not force and is_complete(out, STAGE, cfg.to_dict(), inputs):
        log.info("finetune: %s is complete for this config and inputs; skipping", out)
        return read_manifest(out) or {}
    if not (mdir / "config.json").is_file():
        raise InputError("not a Hugging Face model directory (no config.json)", path=mdir,
                         fix="pass the output of `koroberta convert`")
    tf = import_transformers()
    device = _device(cfg)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)

    with StageOutput(out, stage=STAGE, config=cfg.to_dict(), inputs=inputs, overwrite=overwrite) as st:
        cache = st.tmp / ".hf-cache"
        rows = read_tsv(train_tsv, cfg, cache)
        test = read_tsv(test_tsv, cfg, cache) if test_tsv else None
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

        tok = tf.AutoTokenizer.from_pretrained(str(mdir))
        torch.manual_seed(cfg.seed)
        model = tf.AutoModelForSequenceClassification.from_pretrained(
            str(mdir), num_labels=len(cfg.labels), dtype=torch.float32,
            id2label={i: l for i, l in enumerate(cfg.labels)}, label2id={l: i for i, l in enumerate(cfg.labels)})
        model.to(device)
        pad = tok.pad_token_id
        # RoBERTa position ids start at pad + 1 = 2, so a model takes max_position_embeddings - 2 tokens
        max_len = min(cfg.max_length, model.config.max_position_embeddings - 2)
        tr_ids = _encode(tok, [rows.texts[i] for i in train_idx], max_len)
        tr_y = [rows.labels[i] for i in train_idx]
        ev_ids = _encode(tok, eval_rows.texts, max_len)

        no_decay = ("bias", "LayerNorm.weight", "layer_norm.weight")
        groups = [{"params": [p for n, p in model.named_parameters() if not n.endswith(no_decay)],
                   "weight_decay": cfg.weight_decay},
                  {"params": [p for n, p in model.named_parameters() if n.endswith(no_decay)], "weight_decay": 0.0}]
        opt = torch.optim.AdamW(groups, lr=cfg.lr)
        steps = cfg.epochs * math.ceil(len(tr_ids) / cfg.batch_size)
        warm = int(steps * cfg.warmup_ratio)
        sched = torch.optim.lr_scheduler.LambdaLR(
            opt, lambda s: (s + 1) / max(1, warm) if s < warm else max(0.0, (steps - s) / max(1, steps - warm)))
        rng = random.Random(cfg.seed + 1)
        losses: list[float] = []
        t0 = time.perf_counter()
        for epoch in range(cfg.epochs):
            model.train()
            perm = list(range(len(tr_ids)))
            rng.shuffle(perm)
            for step, b in enumerate(_batches(cfg.batch_size, perm)):
                x, m = _collate(tr_ids, b, pad, device)
                y = torch.tensor([tr_y[i] for i in b], device=device)
                loss = torch.nn.functional.cross_entropy(model(input_ids=x, attention_mask=m).logits, y)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                if cfg.grad_clip:
                    torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
                opt.step()
                sched.step()
                losses.append(float(loss.detach()))
                if step % 50 == 0:
                    log.info("finetune: epoch %d step %d/%d loss %.4f", epoch + 1, step, steps // cfg.epochs, losses[-1])
        st.timing["train_s"] = round(time.perf_counter() - t0, 3)
        pred = predict(model, ev_ids, pad, cfg.eval_batch_size, device)
        res = metrics(pred, eval_rows.labels, len(cfg.labels))
        shutil.rmtree(cache, ignore_errors=True)  # datasets' Arrow cache is scratch, not an output
        model.to("cpu").save_pretrained(str(st.tmp / "model"))
        tok.save_pretrained(str(st.tmp / "model"))
        head = max(1, len(losses) // 10)
        st.stats.update(res, task=cfg.task, eval_split="test" if test is not None else "dev",
                        n_train=len(tr_ids), n_dev=len(dev_idx), n_test=len(test.labels) if test is not None else 0,
                        n_eval=len(eval_rows.labels), updates=len(losses), device=device, max_length=max_len,
                        first_train_loss=round(sum(losses[:head]) / head, 4),
                        final_train_loss=round(sum(losses[-head:]) / head, 4),
                        majority_baseline=round(max(eval_rows.labels.count(c) for c in range(len(cfg.labels)))
                                                / len(eval_rows.labels), 6))
        write_json(st.tmp / "metrics.json", st.stats)
    log.info("finetune: %s accuracy %.4f f1 %.4f", st.stats["eval_split"], res["accuracy"], res["f1"])
    return st.manifest
