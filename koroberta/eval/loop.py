"""The one fine-tuning loop (``koroberta eval`` and ``koroberta finetune``): seeded, length-grouped batches,
AdamW with linear warm-up/decay, optional mixed precision.

A hand-written loop instead of ``transformers.Trainer``: Trainer needs ``accelerate`` (not in the environment), and
the plain loop is deterministic on CPU with a fixed seed (fp32; same seed and threads -> same bytes). Batches are
padded per batch and grouped by length (rows shuffled, then sorted by length inside windows of 50 batches, then the
batches shuffled): short Korean reviews next to long ones would otherwise cost mostly padding. On CUDA, autocast
runs in bf16 where the GPU supports it, else fp16 with a gradient scaler.
"""

from __future__ import annotations

import contextlib
import logging
import math
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from koroberta.errors import DependencyError, InputError

log = logging.getLogger("koroberta.eval")
IGNORE = -100  # label of pieces that carry no character label (specials, a lone "▁")
WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "pytorch_model.bin.index.json")
_NO_DECAY = ("bias", "LayerNorm.weight", "layer_norm.weight")


@dataclass(frozen=True)
class TrainSettings:
    epochs: int
    batch_size: int
    eval_batch_size: int
    lr: float
    warmup_ratio: float
    weight_decay: float
    grad_clip: float


# -- model directory ---------------------------------------------------------------------------------------------------
def check_model_dir(mdir: Path) -> None:
    """Fail before any work when ``mdir`` cannot be a loadable HF model (cheap file checks, no imports)."""
    fix = "pass the output directory of `koroberta convert` (it holds config.json, model.safetensors, tokenizer.json)"
    if not mdir.is_dir():
        raise InputError("model directory not found" if not mdir.exists() else "not a directory", path=mdir, fix=fix)
    if not (mdir / "config.json").is_file():
        raise InputError("not a Hugging Face model directory (no config.json)", path=mdir, fix=fix)
    if not any((mdir / w).is_file() for w in WEIGHT_FILES):
        raise InputError("has config.json but no model weights (model.safetensors or pytorch_model.bin)", path=mdir,
                         fix="point at a complete export; rerun `koroberta convert` if it was interrupted or copied "
                             "without the weights")


def model_inputs(mdir: Path) -> dict[str, Path]:
    """What identifies the model for completion markers. A koroberta export is identified by its own completion
    marker; another HF directory by its files — except README.md, which ``--model-card`` edits."""
    from koroberta.artifacts import read_manifest

    if read_manifest(mdir) is not None:
        return {"model": mdir}
    return {f"model/{f.relative_to(mdir)}": f for f in sorted(mdir.rglob("*"))
            if f.is_file() and f.name != "README.md" and not any(p.startswith(".") for p in f.relative_to(mdir).parts)}


def load_tokenizer(tf, mdir: Path, *, need_fast: bool = False):
    try:
        tok = tf.AutoTokenizer.from_pretrained(str(mdir))
    except (OSError, ValueError) as e:
        raise InputError(f"cannot load the tokenizer ({' '.join(str(e).split())[:160]})", path=mdir,
                         fix="rerun `koroberta convert`, which writes tokenizer.json") from None
    if need_fast and not getattr(tok, "is_fast", False):
        raise InputError("the tokenizer is not a fast tokenizer (no tokenizer.json): character offsets are needed",
                         path=mdir, fix="rerun `koroberta convert`, which writes tokenizer.json")
    return tok


def load_model(tf, mdir: Path, head: str, n_labels: int, labels: Sequence[str] = ()):
    """The encoder of ``mdir`` with a freshly initialised head: ``sequence`` (classification / regression when
    ``n_labels == 1``) or ``token``. Seed torch before calling: the head init draws from its RNG."""
    import torch

    kw: dict[str, Any] = {"num_labels": n_labels, "dtype": torch.float32}
    if labels:
        kw.update(id2label=dict(enumerate(labels)), label2id={l: i for i, l in enumerate(labels)})
    if n_labels == 1:
        kw["problem_type"] = "regression"
    cls = tf.AutoModelForTokenClassification if head == "token" else tf.AutoModelForSequenceClassification
    try:
        return cls.from_pretrained(str(mdir), **kw)
    except (OSError, ValueError) as e:
        raise InputError(f"cannot load the model ({' '.join(str(e).split())[:160]})", path=mdir,
                         fix="point at a complete export; rerun `koroberta convert`") from None


# -- device / precision ------------------------------------------------------------------------------------------------
def resolve_device(device: str) -> str:
    import torch

    if device == "cuda" and not torch.cuda.is_available():
        raise DependencyError("--device cuda requested but torch sees no CUDA device",
                              fix="use --device cpu (or auto), or install a CUDA build of torch")
    return "cuda" if device == "cuda" or (device == "auto" and torch.cuda.is_available()) else "cpu"


def resolve_precision(precision: str, device: str) -> str:
    import torch

    if precision == "auto":
        if device != "cuda":
            return "fp32"
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    if precision == "fp16" and device != "cuda":
        raise DependencyError("--precision fp16 needs a CUDA device", fix="use --precision fp32 or bf16 on the CPU")
    if precision == "bf16" and device == "cuda" and not torch.cuda.is_bf16_supported():
        raise DependencyError("this GPU does not support bf16", fix="use --precision fp16 (or auto)")
    return precision


def autocast(device: str, precision: str):
    import torch

    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device_type=device, dtype=torch.bfloat16 if precision == "bf16" else torch.float16)


# -- batching ----------------------------------------------------------------------------------------------------------
def length_batches(lengths: Sequence[int], batch_size: int, rng: random.Random, window: int = 50) -> list[list[int]]:
    """Seeded length-grouped batches; ``ceil(len / batch_size)`` of them, every row exactly once."""
    order = list(range(len(lengths)))
    rng.shuffle(order)
    span = batch_size * window
    batches: list[list[int]] = []
    for i in range(0, len(order), span):
        chunk = sorted(order[i:i + span], key=lambda j: lengths[j])
        batches += [chunk[k:k + batch_size] for k in range(0, len(chunk), batch_size)]
    rng.shuffle(batches)
    return batches


def _pad(rows: list[list[int]], value: int):
    import torch

    width = max(len(r) for r in rows)
    x = torch.full((len(rows), width), value, dtype=torch.long)
    for i, r in enumerate(rows):
        x[i, : len(r)] = torch.tensor(r, dtype=torch.long)
    return x


def _inputs(ids: Sequence[list[int]], idx: list[int], pad: int, device: str):
    x = _pad([ids[i] for i in idx], pad)
    return x.to(device), (x != pad).long().to(device)


def _loss(logits, y, kind: str):
    import torch.nn.functional as F

    logits = logits.float()  # the loss in fp32 under autocast
    if kind == "classification":
        return F.cross_entropy(logits, y)
    if kind == "regression":
        return F.mse_loss(logits.squeeze(-1), y)
    # tokens: mean over the labelled pieces of the batch (a batch could hold none)
    flat = y.view(-1)
    total = F.cross_entropy(logits.view(-1, logits.shape[-1]), flat, ignore_index=IGNORE, reduction="sum")
    return total / (flat != IGNORE).sum().clamp(min=1)


def _targets(targets: Sequence[Any], idx: list[int], kind: str, device: str):
    import torch

    if kind == "classification":
        return torch.tensor([targets[i] for i in idx], dtype=torch.long, device=device)
    if kind == "regression":
        return torch.tensor([targets[i] for i in idx], dtype=torch.float32, device=device)
    return _pad([targets[i] for i in idx], IGNORE).to(device)


# -- train / predict ---------------------------------------------------------------------------------------------------
def fit(model, ids: Sequence[list[int]], targets: Sequence[Any], *, kind: str, pad: int, settings: TrainSettings,
        seed: int, device: str, precision: str, tag: str = "") -> dict[str, Any]:
    """Train ``model`` in place. ``kind``: classification | regression | tokens (``targets[i]`` then holds one
    label per piece of ``ids[i]``, ``IGNORE`` where none). Returns loss figures and the update count."""
    import torch

    model.to(device)
    groups = [{"params": [p for n, p in model.named_parameters() if not n.endswith(_NO_DECAY)],
               "weight_decay": settings.weight_decay},
              {"params": [p for n, p in model.named_parameters() if n.endswith(_NO_DECAY)], "weight_decay": 0.0}]
    opt = torch.optim.AdamW(groups, lr=settings.lr)
    per_epoch = math.ceil(len(ids) / settings.batch_size)
    steps = settings.epochs * per_epoch
    warm = int(steps * settings.warmup_ratio)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: (s + 1) / max(1, warm) if s < warm else max(0.0, (steps - s) / max(1, steps - warm)))
    scaler = torch.amp.GradScaler("cuda") if precision == "fp16" else None  # bf16 needs no loss scaling
    rng = random.Random(seed + 1)
    lengths = [len(r) for r in ids]
    losses: list[float] = []
    for epoch in range(settings.epochs):
        model.train()
        for step, b in enumerate(length_batches(lengths, settings.batch_size, rng)):
            x, m = _inputs(ids, b, pad, device)
            y = _targets(targets, b, kind, device)
            with autocast(device, precision):
                logits = model(input_ids=x, attention_mask=m).logits
            loss = _loss(logits, y, kind)
            opt.zero_grad(set_to_none=True)
            if scaler is not None:
                scaler.scale(loss).backward()
                scaler.unscale_(opt)
            else:
                loss.backward()
            if settings.grad_clip:
                torch.nn.utils.clip_grad_norm_(model.parameters(), settings.grad_clip)
            if scaler is not None:
                scaler.step(opt)
                scaler.update()
            else:
                opt.step()
            sched.step()
            losses.append(float(loss.detach()))
            if step % 50 == 0:
                log.info("%sepoch %d step %d/%d loss %.4f", tag, epoch + 1, step, per_epoch, losses[-1])
    head = max(1, len(losses) // 10)
    return {"updates": len(losses), "first_train_loss": round(sum(losses[:head]) / head, 4),
            "final_train_loss": round(sum(losses[-head:]) / head, 4)}


def predict(model, ids: Sequence[list[int]], *, kind: str, pad: int, batch_size: int, device: str,
            precision: str) -> list[Any]:
    """Class ids, scores, or (tokens) one class id per piece, for every row of ``ids``."""
    import torch

    model.to(device)
    model.eval()
    order = sorted(range(len(ids)), key=lambda i: len(ids[i]))  # length-sorted: less padding
    out: list[Any] = [None] * len(ids)
    with torch.inference_mode(), autocast(device, precision):
        for k in range(0, len(order), batch_size):
            b = order[k:k + batch_size]
            x, m = _inputs(ids, b, pad, device)
            logits = model(input_ids=x, attention_mask=m).logits.float()
            if kind == "classification":
                vals = logits.argmax(-1).tolist()
            elif kind == "regression":
                vals = logits.squeeze(-1).tolist()
            else:
                vals = [row[: len(ids[i])] for i, row in zip(b, logits.argmax(-1).tolist())]
            for i, v in zip(b, vals):
                out[i] = v
    return out
