"""Model card (``README.md``) of the export: data, vocab, hyper-parameters, updates, parity figures."""

from __future__ import annotations

from typing import Any

from koroberta.convert.checkpoint import RobertaCheckpoint
from koroberta.convert.config import ConvertConfig
from koroberta.convert.vocab import ExportVocab
from koroberta.convert.weights import hf_model_class


def _fmt(v: Any) -> str:
    return "n/a" if v is None else (f"{v:.3g}" if isinstance(v, float) else str(v))


def parity_words(par: dict[str, Any], atol: float | None = None) -> str:
    """What the export's parity record says was checked, in words: each check that ran with its figures, each that
    did not named as not checked (``koroberta run``'s summary reads the record the same way). Manifests of an
    older koroberta have only ``checked`` (= both ran)."""
    logits = par.get("logits_checked", par.get("checked"))
    ids = par.get("token_ids_checked", "token_id_lines" in par)
    tol = f", atol {atol:g}" if atol is not None else ""
    lines = par.get("token_id_lines", 0)
    parts = [f"max |HF - fairseq| logit difference **{_fmt(par.get('max_abs_logit_diff'))}** (fp32{tol}) over "
             f"{par.get('logit_sentences', 0)} sentences" if logits
             else "logits **not checked** (exported with --no-parity)",
             f"HF tokenizer ids equal fairseq ids on {lines - par.get('token_id_mismatches', 0)}/{lines} lines" if ids
             else "token ids **not checked** (parity_lines 0)"]
    if (logits or ids) and par.get("text") == "builtin_sentences":
        parts.append("checked on koroberta's built-in sentences only (no --parity-text was given)")
    return "; ".join(parts)


def model_card(cfg: ConvertConfig, ck: RobertaCheckpoint, ev: ExportVocab, stats: dict[str, Any]) -> str:
    par = stats.get("parity", {})
    opt, task, ds = ck.optimization, ck.task, ck.dataset
    lr = opt.get("lr")
    lr = lr[0] if isinstance(lr, (list, tuple)) and lr else lr
    rows = [
        ("layers / hidden / heads / FFN", f"{ck.n_layers} / {ck.hidden} / {ck.heads} / {ck.ffn}"),
        ("max positions", ck.max_positions),
        ("parameters", f"{stats.get('params', 0):,}"),
        ("updates", _fmt(ck.num_updates)),
        ("peak learning rate", _fmt(lr)),
        ("batch size (sentences per GPU) x update_freq", f"{_fmt(ds.get('batch_size'))} x {_fmt(opt.get('update_freq'))}"),
        ("tokens per sample", _fmt(task.get("tokens_per_sample"))),
        ("mask prob", _fmt(task.get("mask_prob"))),
        ("activation / dropout", f"{_fmt(ck.arg('activation_fn'))} / {_fmt(ck.arg('dropout'))}"),
        ("LayerNorm placement", "pre-LN" if ck.prenorm else "post-LN"),
        ("weights dtype", cfg.dtype),
    ]
    layout = ("legacy KoRoBERTa dict (spm-id strings, frequency order), rows re-ordered to spm order"
              if ev.legacy else "XLM-R layout: HF id = fairseq id = spm id + 1")
    parity = parity_words(par, cfg.atol)
    tokenizer = "BPE" if ev.model_type == "bpe" else "Unigram"  # as the spm model is (koroberta.convert.vocab)
    hf_class = hf_model_class(ck.prenorm)  # what koroberta.convert.export builds
    layer_norm = ("pre-LayerNorm (fairseq `encoder_normalize_before`, with an embedding LayerNorm): load it with "
                  "`AutoModelForMaskedLM`, which picks this class from `config.json`" if ck.prenorm
                  else "post-LayerNorm, as BERT and RoBERTa")
    table = "\n".join(f"| {k} | {v} |" for k, v in rows)
    if ev.imported is not None:  # koroberta import-hf: the model's own tokenizer, exported unchanged
        rec = ev.imported.record
        vocabulary = (f"The tokenizer of the model training continued from ({rec.get('tokenizer_class')}, "
                      f"{rec.get('tokenizer_tokens')} tokens; mask token `{rec.get('mask_token')}` = id {ev.mask_id}), "
                      f"exported byte for byte; the embedding has {len(ev.hf_vocab)} rows (fairseq id = HF id for "
                      "every token).")
        mask = str(rec.get("mask_token"))
    else:
        vocabulary = (f"SentencePiece model `spm.model` ({len(ev.hf_vocab)} ids including `<s> <pad> </s> <unk>` and "
                      f"`<mask>` = id {ev.mask_id});\n{layout}. `tokenizer.json` is a fast {tokenizer} tokenizer "
                      "equivalent to the spm model.")
        mask = "<mask>"
    return f"""---
language: {cfg.language}
license: {cfg.license}
library_name: transformers
pipeline_tag: fill-mask
tags: [roberta{", roberta-prelayernorm" if ck.prenorm else ""}, fairseq, korean]
---

# {cfg.model_name}

A Korean RoBERTa pretrained with fairseq (`masked_lm`, `{_fmt(ck.arg('arch'))}`) by the koroberta pipeline and
exported to Hugging Face `{hf_class}` ({layer_norm}).

## Data
{cfg.data_description}.

## Vocabulary
{vocabulary}

## Pretraining
| setting | value |
|---|---|
{table}

## Parity with the fairseq checkpoint
{parity}.

## Use
```python
from transformers import AutoTokenizer, AutoModelForMaskedLM, pipeline
tok = AutoTokenizer.from_pretrained("PATH")
model = AutoModelForMaskedLM.from_pretrained("PATH")
pipeline("fill-mask", model="PATH")("대한민국의 수도는 {mask}이다.")
```
"""
