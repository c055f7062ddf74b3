"""``import-hf``: a local HF RoBERTa masked LM -> fairseq checkpoint + vocab dir, logits checked against HF.

Output (``out``): ``checkpoint.pt`` (fairseq ``roberta`` / ``roberta_prenorm``, fp32; ``train.init_from``),
``dict.txt`` + ``tokenizer/`` + ``vocab.json`` (:mod:`koroberta.hfvocab`: the vocab dir preprocess and convert take),
``config.json`` (the HF model's, for the export back), ``manifest.json`` / ``_COMPLETE``. A parity failure leaves
nothing.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Any

from koroberta.artifacts import StageOutput, check_output_location, skip_if_complete
from koroberta.errors import DependencyError, ParityError
from koroberta.hfvocab import CHECKPOINT
from koroberta.importhf.config import ImportHFConfig

log = logging.getLogger("koroberta.import_hf")
STAGE = "import-hf"


def import_hf(cfg: ImportHFConfig, hf_dir: str | Path, out_dir: str | Path, *, parity_text: str | Path | None = None,
              force: bool = False, overwrite: bool = False) -> Path:
    """Import ``hf_dir`` into ``out_dir``; skipped when ``out_dir`` is complete for the same directory contents and
    config. Raises InputError for a model or tokenizer fairseq cannot hold with the same ids and outputs,
    DependencyError without fairseq, ParityError when fairseq's logits differ from HF's beyond ``cfg.atol``."""
    import torch

    from koroberta.convert.imported import same_ids_logit_diff
    from koroberta.convert.parity import fairseq_available, fairseq_model, read_parity_lines
    from koroberta.hfcompat import import_transformers
    from koroberta.importhf.vocab import write_vocab
    from koroberta.importhf.weights import fairseq_checkpoint, fairseq_state_dict, model_args, read_hf_model

    src, out = Path(hf_dir), Path(out_dir)
    ptext = Path(parity_text) if parity_text is not None else None
    inputs = {"hf_dir": src, "parity_text": ptext}
    check_output_location(out, STAGE, inputs, overwrite=overwrite)
    if skip_if_complete(out, STAGE, cfg, inputs, force=force, log=log):
        return out
    if not fairseq_available():
        raise DependencyError("fairseq is not installed: the import writes a fairseq checkpoint and checks it with "
                              "fairseq", fix="install it (scripts/setup_env.sh)")
    model = read_hf_model(src)
    sentences = read_parity_lines(ptext, cfg.parity_sentences)
    with StageOutput(out, stage=STAGE, config=cfg, inputs=inputs, overwrite=overwrite) as st:
        from koroberta.resources import announce, importhf_needs

        announce(log, STAGE, importhf_needs(src), out)  # the first line: once the output is taken
        rec = write_vocab(src, st.tmp, model.rows)
        args = model_args(model)
        state = fairseq_state_dict(model)
        torch.save(fairseq_checkpoint(args, state), st.tmp / CHECKPOINT)
        shutil.copyfile(src / "config.json", st.tmp / "config.json")
        par: dict[str, Any] = {"checked": cfg.parity}
        if cfg.parity:
            tf = import_transformers()
            tok = tf.AutoTokenizer.from_pretrained(str(st.tmp / "tokenizer"), local_files_only=True)
            hf_model = tf.AutoModelForMaskedLM.from_pretrained(str(src), dtype=torch.float32, use_safetensors=True,
                                                               local_files_only=True).eval()
            fs_model = fairseq_model(args, st.tmp / "dict.txt", state)
            diff, n = same_ids_logit_diff(fs_model, hf_model, tok, sentences, args.max_positions)
            par.update(max_abs_logit_diff=diff, logit_sentences=n, atol=cfg.atol,
                       text="parity_text" if ptext is not None else "builtin_sentences")
            if not diff <= cfg.atol:
                raise ParityError(f"max |fairseq - HF| logit difference {diff:.3g} > atol {cfg.atol:g} over {n} "
                                  "sentences", path=src, fix="this model cannot be imported faithfully; report it "
                                                             "with its config.json")
        else:
            log.warning("import-hf: parity NOT checked (--no-parity): the fairseq checkpoint is unverified")
        st.stats.update(parity=par, arch=args.arch, layers=args.encoder_layers, hidden=args.encoder_embed_dim,
                        ffn=args.encoder_ffn_embed_dim, heads=args.encoder_attention_heads,
                        max_positions=args.max_positions, untied=bool(args.untie_weights_roberta),
                        hf_model_type=src_model_type(st.tmp / "config.json"), **{k: rec[k] for k in (
                            "rows", "mask_id", "mask_token", "tokenizer_class", "tokenizer_tokens", "literals",
                            "dict_sha256", "tokenizer_sha256")})
    log.info("import-hf: wrote %s (%s, %d rows, max |logit diff| %s)", out, args.arch, rec["rows"],
             par.get("max_abs_logit_diff"))
    return out


def src_model_type(config_json: Path) -> str:
    import json

    return str(json.loads(config_json.read_text(encoding="utf-8")).get("model_type"))
