"""convert stage: fairseq RoBERTa checkpoint (+ spm.model + dict.txt) -> Hugging Face directory, parity-checked.

Output (``out_dir``): ``config.json`` (RobertaConfig; RobertaPreLayerNormConfig for a pre-LN checkpoint),
``model.safetensors``, ``tokenizer.json`` + ``tokenizer_config.json`` (fast Unigram or BPE tokenizer, as the spm
model is, whose ids are the model's ids), ``spm.model``, ``README.md`` (model card), ``manifest.json`` /
``_COMPLETE``. A parity failure raises :class:`ParityError` and leaves nothing.
"""

from __future__ import annotations

import copy
import logging
import shutil
from pathlib import Path
from typing import Any

from koroberta.artifacts import StageOutput, check_output_location, read_manifest, skip_if_complete
from koroberta.convert.config import ConvertConfig
from koroberta.errors import DependencyError, InputError, ParityError

log = logging.getLogger("koroberta.convert")
STAGE = "convert"


def export_tokenizer(ev, out_dir: Path, model_max_length: int) -> None:
    """Write ``tokenizer.json`` / ``tokenizer_config.json`` for ``ev`` into ``out_dir``."""
    from koroberta.hfcompat import import_transformers
    from koroberta.convert.vocab import build_tokenizer

    tf = import_transformers()
    fast = tf.PreTrainedTokenizerFast(
        tokenizer_object=build_tokenizer(ev), bos_token="<s>", eos_token="</s>", unk_token="<unk>", sep_token="</s>",
        cls_token="<s>", pad_token="<pad>", mask_token="<mask>", model_max_length=model_max_length)
    fast.save_pretrained(str(out_dir))


def _inputs(checkpoint: Path, vocab_dir: Path, parity_text: Path | None) -> dict[str, Path | None]:
    from koroberta.hfvocab import TOKENIZER_DIR, is_hf_vocab

    if is_hf_vocab(vocab_dir):  # an import-hf vocab dir: its tokenizer files are what is exported
        return {"checkpoint": checkpoint, "tokenizer": vocab_dir / TOKENIZER_DIR, "dict": vocab_dir / "dict.txt",
                "parity_text": parity_text}
    return {"checkpoint": checkpoint, "spm_model": vocab_dir / "spm.model", "dict": vocab_dir / "dict.txt",
            "parity_text": parity_text}


def logit_diff(fs_model, hf_model, tok, ev, sentences: list[str], max_positions: int) -> tuple[float, int]:
    """max |HF - fairseq| logit: through spm + dict.txt for an spm vocabulary, the tokenizer's own ids for an
    imported one (:mod:`koroberta.convert.imported`)."""
    from koroberta.convert import imported, parity

    if ev.imported is not None:
        return imported.same_ids_logit_diff(fs_model, hf_model, tok, sentences, max_positions)
    return parity.max_logit_diff(fs_model, hf_model, tok, ev, sentences, max_positions)


def convert(cfg: ConvertConfig, checkpoint: str | Path, vocab_dir: str | Path, out_dir: str | Path, *,
            parity_text: str | Path | None = None, force: bool = False, overwrite: bool = False) -> dict[str, Any]:
    """Export ``checkpoint`` to an HF ``RobertaForMaskedLM`` directory at ``out_dir`` (``RobertaPreLayerNorm...``
    for a pre-LN checkpoint); returns the manifest.

    Skips the work when ``out_dir`` already holds a complete export of the same config and inputs (unless
    ``force``). Raises :class:`InputError` for a non-RoBERTa checkpoint or a vocab that does not match it,
    :class:`DependencyError` when parity is requested without fairseq, :class:`ParityError` when HF and fairseq
    disagree (token ids on any line, or logits beyond ``cfg.atol``).
    """
    import torch

    from koroberta.convert import card, imported, parity
    from koroberta.convert.checkpoint import load_checkpoint
    from koroberta.hfcompat import import_transformers
    from koroberta.convert.vocab import check_trained_with, resolve_vocab
    from koroberta.convert.weights import hf_config_kwargs, hf_state_dict
    from koroberta.errors import rust_write_errors

    ckpt, vdir, out = Path(checkpoint), Path(vocab_dir), Path(out_dir)
    ptext = Path(parity_text) if parity_text is not None else None
    inputs = _inputs(ckpt, vdir, ptext)
    check_output_location(out, STAGE, inputs, overwrite=overwrite)  # before any work: nothing to undo
    if skip_if_complete(out, STAGE, cfg, inputs, force=force, log=log):
        return read_manifest(out) or {}
    if not vdir.is_dir():
        raise InputError("vocab dir not found", path=vdir, fix="pass as VOCAB_DIR a directory with spm.model + "
                                                                "dict.txt (the output of `koroberta spm train`)")
    if cfg.parity and not parity.fairseq_available():
        raise DependencyError("fairseq is not installed, so the HF export cannot be checked against it",
                              fix="install fairseq (scripts/setup_env.sh) or pass --no-parity to export UNCHECKED")
    # enough lines for both checks: token ids on the first parity_lines, logits on the first parity_sentences
    n_lines = max(cfg.parity_lines, cfg.parity_sentences if cfg.parity else 0)
    lines = parity.read_parity_lines(ptext, n_lines) if n_lines else []
    if cfg.parity and ptext is None:
        log.warning("convert: no --parity-text: token ids and logits are checked on the %d built-in sentences only; "
                    "pass the valid split to check them on your text", len(lines))
    ck = load_checkpoint(ckpt)
    ev = resolve_vocab(vdir, ck.vocab_rows)
    check_trained_with(ck, ev)  # the same rows are not the same vocabulary: compare with what training recorded
    tf = import_transformers()
    torch.manual_seed(0)

    # rust_write_errors inside StageOutput: a full disk under safetensors/tokenizers reaches it as an OSError
    with StageOutput(out, stage=STAGE, config=cfg, inputs=inputs, overwrite=overwrite) as st, rust_write_errors():
        from koroberta.resources import announce, convert_needs

        # the first line, once the output is taken; tied weights counted once
        params = sum(t.numel() for t in {t.data_ptr(): t for t in ck.state.values() if hasattr(t, "numel")}.values())
        announce(log, STAGE, convert_needs(cfg, params=params, checkpoint_bytes=ckpt.stat().st_size,
                                           rows=ck.vocab_rows), out)
        if ev.imported is not None:
            imported.export_tokenizer_files(ev, st.tmp)  # the user's own tokenizer, byte for byte
        else:
            export_tokenizer(ev, st.tmp, ck.max_positions)
            shutil.copyfile(ev.spm_model, st.tmp / "spm.model")
        # pre-LN checkpoints (load_checkpoint accepts them only with an embedding LayerNorm) are exported as
        # RobertaPreLayerNorm, the HF class with the same LayerNorm placement; AutoModel picks it from config.json
        config_cls, model_cls = ((tf.RobertaPreLayerNormConfig, tf.RobertaPreLayerNormForMaskedLM) if ck.prenorm
                                 else (tf.RobertaConfig, tf.RobertaForMaskedLM))
        hf_cfg = config_cls(**hf_config_kwargs(ck, ev))
        model = model_cls(hf_cfg).eval()
        missing, unexpected = model.load_state_dict(hf_state_dict(ck, ev), strict=False)
        missing = [k for k in missing if k not in ("lm_head.decoder.bias",)]
        if missing or unexpected:
            raise RuntimeError(f"state dict mapping incomplete: missing {missing[:3]}, unexpected {unexpected[:3]}")
        if cfg.dtype == "fp16":  # cast a copy: the fp32 weights stay for the strict parity check
            copy.deepcopy(model).half().save_pretrained(str(st.tmp))
        else:
            model.save_pretrained(str(st.tmp))

        tok = tf.AutoTokenizer.from_pretrained(str(st.tmp))
        # which checks ran, each on its own: "checked" means both did (config refuses parity with parity_lines 0),
        # so neither the card nor a reader of the manifest can take an export checked in part for a checked one
        par: dict[str, Any] = {"checked": bool(cfg.parity and cfg.parity_lines), "legacy_vocab": ev.legacy,
                               "token_ids_checked": bool(cfg.parity_lines), "logits_checked": bool(cfg.parity),
                               "text": "parity_text" if ptext is not None else "builtin_sentences",
                               "tokenizer_model": ev.model_type}
        if ev.imported is not None and cfg.parity_lines:
            tp, par["token_ids_against"] = imported.check_token_ids(tok, ev, ck, ptext, lines[: cfg.parity_lines])
        else:
            tp = parity.check_token_ids(tok, ev, lines[: cfg.parity_lines]) if cfg.parity_lines else None
        if tp is not None:
            par.update(token_id_lines=tp.lines, token_id_mismatches=tp.mismatches, tokens=tp.tokens,
                       fairseq_unk_tokens=tp.fairseq_unk_tokens)
            if tp.mismatches:
                raise parity.token_mismatch_error(tp, ptext or "built-in sentences")
        if cfg.parity:
            fs_model = parity.build_fairseq_model(ck, ev)
            sents = lines[: cfg.parity_sentences]
            # the artifact as users load it (fp32 export) or the fp32 weights behind an fp16 export
            ref = tf.AutoModelForMaskedLM.from_pretrained(str(st.tmp), dtype=torch.float32).eval() \
                if cfg.dtype == "fp32" else model
            diff, n = logit_diff(fs_model, ref, tok, ev, sents, ck.max_positions)
            par.update(max_abs_logit_diff=diff, logit_sentences=n, atol=cfg.atol)
            if not diff <= cfg.atol:
                raise ParityError(f"max |HF - fairseq| logit difference {diff:.3g} > atol {cfg.atol:g} over {n} "
                                  "sentences", path=ckpt, fix="the weight mapping is wrong for this checkpoint; "
                                                              "do not use the export")
            if cfg.dtype == "fp16":
                half = tf.AutoModelForMaskedLM.from_pretrained(str(st.tmp), dtype=torch.float32).eval()
                par["fp16_max_abs_logit_diff"], _ = logit_diff(fs_model, half, tok, ev, sents, ck.max_positions)
        else:
            log.warning("convert: parity NOT checked (--no-parity): the export of %s is unverified", ckpt)
            par.update(max_abs_logit_diff=None, logit_sentences=0)
        n_params = sum(p.numel() for p in model.parameters())
        st.stats.update(parity=par, vocab_size=len(ev.hf_vocab), layers=ck.n_layers, hidden=ck.hidden,
                        heads=ck.heads, max_positions=ck.max_positions, updates=ck.num_updates, params=n_params,
                        dtype=cfg.dtype, mask_id=ev.mask_id, hf_class=type(model).__name__, prenorm=ck.prenorm)
        (st.tmp / "README.md").write_text(card.model_card(cfg, ck, ev, st.stats), encoding="utf-8")
    log.info("convert: wrote %s (max |logit diff| %s)", out, par.get("max_abs_logit_diff"))
    return st.manifest
