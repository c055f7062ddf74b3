"""``preprocess``: split text + vocab -> fairseq data-bin (fused by default, fairseq-preprocess as reference)."""

from __future__ import annotations

import contextlib
import logging
import shutil
import tempfile
import time
from pathlib import Path
from typing import Mapping

import numpy as np

from koroberta.artifacts import (SPLITS, StageOutput, atomic_path, check_output_location, sha256_file,
                                 skip_if_complete)
from koroberta.errors import InputError
from koroberta.databin import best_fitting_int_dtype, max_token_id, mmap_dtype, read_mmap_sizes, write_mmap_index
from koroberta.preprocess.binarize import run_fairseq_preprocess
from koroberta.preprocess.config import PreprocessConfig
from koroberta.preprocess.encode import EncodeStats, check_texts, encode_pieces, encode_to_mmap
from koroberta.layout import FAIRSEQ_SPECIALS, Vocab, check_dict_matches, load_processor

log = logging.getLogger("koroberta.preprocess")
STAGE = "preprocess"


def checked_vocab(vocab_dir: str | Path) -> tuple[Path, Path, Vocab]:
    """``(spm.model, dict.txt, vocab)`` of ``vocab_dir``; refuses a dict.txt that does not belong to the model."""
    vd = Path(vocab_dir)
    model, dict_txt = vd / "spm.model", vd / "dict.txt"
    for p in (model, dict_txt):
        if not p.is_file():
            raise InputError(f"{p.name} not found", path=vd, fix="pass the output dir of `koroberta spm train`")
    return model, dict_txt, check_dict_matches(dict_txt, model)


def _split_inputs(split_dir: Path) -> dict[str, Path]:
    out = {}
    for s in SPLITS:
        p = split_dir / f"{s}.txt"
        if not p.is_file():
            raise InputError(f"{s}.txt not found", path=split_dir, fix="pass the corpus stage's split directory "
                                                                      "(train.txt, valid.txt, test.txt)")
        out[s] = p
    return out


def _warn(split: str, st: EncodeStats, cfg: PreprocessConfig) -> None:
    if st.long_lines:
        log.warning("%s: %d lines have more than %d pieces (longest %d); fairseq crops them to tokens_per_sample",
                    split, st.long_lines, cfg.max_line_tokens, st.max_pieces)
    if st.repairs.total:
        log.warning("%s: repaired %s", split, st.repairs.to_dict())


def _max_ids(data_bin: Path, splits: Mapping[str, object]) -> dict[str, int]:
    """Largest id per split of a data-bin fairseq-preprocess wrote (the fused writer keeps a running max instead):
    one read of each .bin, as fairseq wrote it."""
    return {s: max_token_id(data_bin / f"{s}.bin", mmap_dtype(data_bin / f"{s}.idx")) for s in splits}


def preprocess(cfg: PreprocessConfig, split_dir: str | Path, vocab_dir: str | Path, out_dir: str | Path, *,
               workers: int = 1, force: bool = False, overwrite: bool = False, progress: bool = False) -> Path:
    """Encode ``split_dir/{train,valid,test}.txt`` with ``vocab_dir/spm.model`` into a fairseq data-bin ``out_dir``.

    The output is byte-for-byte what ``fairseq-preprocess --only-source --srcdict dict.txt --dataset-impl mmap``
    makes from the piece text (``method: fused`` writes it directly; ``method: fairseq`` runs fairseq), plus
    ``spm.model`` and a manifest with tokens/lines/documents per split, the unk rate and the spm/dict hashes.
    ``workers`` is the sentencepiece thread count (fused) or ``--workers`` (fairseq); it never changes the output.
    """
    split_dir, out = Path(split_dir), Path(out_dir)
    texts = _split_inputs(split_dir)
    model, dict_txt, vocab = checked_vocab(vocab_dir)
    inputs: dict[str, str | Path | None] = {**texts, "spm_model": model, "dict": dict_txt}
    check_output_location(out, STAGE, inputs, overwrite=overwrite)  # before any work: nothing to undo
    if skip_if_complete(out, STAGE, cfg, inputs, force=force, log=log):
        return out
    check_texts(texts.values())  # UTF-16, CP949 or not UTF-8: refused (with the iconv command) before any output
    sp = load_processor(model)
    n_symbols = len(FAIRSEQ_SPECIALS) + len(vocab.dict_symbols())  # what --srcdict loads (no <mask> yet)
    dtype = best_fitting_int_dtype(n_symbols)
    stats: dict[str, EncodeStats] = {}
    kw = dict(threads=max(1, workers), chunk_lines=cfg.chunk_lines, max_line_tokens=cfg.max_line_tokens,
              policy=cfg.bad_lines, progress=progress)
    with StageOutput(out, stage=STAGE, config=cfg, inputs=inputs, overwrite=overwrite) as st:
        t0 = time.perf_counter()
        if cfg.method == "fused":
            for split, src in texts.items():
                sizes: list[np.ndarray] = []
                with open(st.tmp / f"{split}.bin", "wb") as b, contextlib.ExitStack() as keep:
                    pieces = keep.enter_context(open(st.tmp / f"{split}.spm", "w", encoding="utf-8", newline="\n")) \
                        if cfg.keep_encoded else None
                    stats[split] = encode_to_mmap(sp, src, b, dtype, on_sizes=sizes.append, pieces_out=pieces, **kw)
                write_mmap_index(st.tmp / f"{split}.idx", np.concatenate(sizes), dtype)
            shutil.copyfile(dict_txt, st.tmp / "dict.txt")
        else:
            with tempfile.TemporaryDirectory(prefix=".encoded-", dir=st.tmp.parent) as enc_dir:
                enc = Path(enc_dir)
                for split, src in texts.items():
                    stats[split] = encode_pieces(sp, src, enc / f"{split}.spm", **kw)
                st.timing["encode_s"] = round(time.perf_counter() - t0, 3)
                run_fairseq_preprocess(dict_txt, {s: enc / f"{s}.spm" for s in texts}, st.tmp, workers)
                (st.tmp / "preprocess.log").unlink(missing_ok=True)  # holds timestamps: not reproducible
                if cfg.keep_encoded:
                    for s in texts:
                        shutil.move(str(enc / f"{s}.spm"), st.tmp / f"{s}.spm")
        st.timing["binarize_s"] = round(time.perf_counter() - t0, 3)
        shutil.copyfile(model, st.tmp / "spm.model")
        for split, s in stats.items():
            _warn(split, s, cfg)
        total_pieces = sum(s.pieces for s in stats.values())
        st.stats.update({
            "method": cfg.method,
            "tokens": {k: s.tokens for k, s in stats.items()},
            "lines": {k: s.lines for k, s in stats.items()},
            "documents": {k: s.documents for k, s in stats.items()},
            "unk_rate": round(sum(s.unk for s in stats.values()) / total_pieces, 8) if total_pieces else 0.0,
            "spm_sha256": sha256_file(model),
            "dict_sha256": sha256_file(dict_txt),
            "dtype": np.dtype(dtype).name,
            "vocab_size": len(vocab.fairseq_symbols()),
            "splits": {k: s.to_dict() for k, s in stats.items()},
            # the largest id per split, checked by train preflight against the dict it trains with (no re-scan)
            "max_id": {k: s.max_id for k, s in stats.items()} if cfg.method == "fused" else _max_ids(st.tmp, texts),
        })
        log.info("preprocess (%s): tokens %s, unk rate %.5f%%", cfg.method, st.stats["tokens"],
                 100 * st.stats["unk_rate"])
    return out


def encode_file(cfg: PreprocessConfig, spm_model: str | Path, src: str | Path, dst: str | Path, *,
                workers: int = 1, progress: bool = False) -> EncodeStats:
    """``koroberta preprocess encode``: one text file -> spm piece text (written atomically)."""
    sp = load_processor(spm_model)
    with atomic_path(dst) as tmp:
        return encode_pieces(sp, src, tmp, threads=max(1, workers), chunk_lines=cfg.chunk_lines,
                             max_line_tokens=cfg.max_line_tokens, policy=cfg.bad_lines, progress=progress)


def binarize(encoded_dir: str | Path, vocab_dir: str | Path, out_dir: str | Path, *, workers: int = 1,
             force: bool = False, overwrite: bool = False) -> Path:
    """``koroberta preprocess binarize``: ``encoded_dir/{train,valid,test}.spm`` piece text -> data-bin via
    ``fairseq-preprocess``, refusing a dict.txt that does not belong to the spm model."""
    enc = Path(encoded_dir)
    model, dict_txt, vocab = checked_vocab(vocab_dir)
    prefixes = {s: enc / f"{s}.spm" for s in SPLITS if (enc / f"{s}.spm").is_file()}
    if "train" not in prefixes:
        raise InputError("train.spm not found", path=enc, fix="run `koroberta preprocess encode` for each split")
    inputs: dict[str, str | Path | None] = {**prefixes, "spm_model": model, "dict": dict_txt}
    config = {"method": "fairseq", "binarize_only": True}
    check_output_location(out_dir, STAGE, inputs, overwrite=overwrite)  # before any work: nothing to undo
    if skip_if_complete(out_dir, STAGE, config, inputs, force=force, log=log):
        return Path(out_dir)
    with StageOutput(out_dir, stage=STAGE, config=config, inputs=inputs, overwrite=overwrite) as st:
        run_fairseq_preprocess(dict_txt, prefixes, st.tmp, workers)
        (st.tmp / "preprocess.log").unlink(missing_ok=True)
        shutil.copyfile(model, st.tmp / "spm.model")
        tokens, lines = {}, {}
        for s in prefixes:
            sizes = read_mmap_sizes(st.tmp / f"{s}.idx")  # the index only: the .bin may be GBs
            tokens[s], lines[s] = int(sizes.sum()), int(len(sizes))
        st.stats.update({"method": "fairseq", "tokens": tokens, "lines": lines,
                         "spm_sha256": sha256_file(model), "dict_sha256": sha256_file(dict_txt),
                         "vocab_size": len(vocab.fairseq_symbols()), "max_id": _max_ids(st.tmp, prefixes)})
    return Path(out_dir)
