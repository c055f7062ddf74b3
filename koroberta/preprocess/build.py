"""``preprocess``: split text + vocab -> fairseq data-bin (fused by default, fairseq-preprocess as reference)."""

from __future__ import annotations

import contextlib
import logging
import shutil
import tempfile
import time
from pathlib import Path
from typing import Iterable

import numpy as np

from koroberta.artifacts import (SPLITS, StageOutput, atomic_path, check_output_location, sha256_file,
                                 skip_if_complete)
from koroberta.errors import InputError
from koroberta.databin import best_fitting_int_dtype, max_token_id, mmap_dtype, read_mmap_sizes, write_mmap_index
from koroberta.preprocess.binarize import run_fairseq_preprocess
from koroberta.preprocess.config import PreprocessConfig
from koroberta.preprocess.encode import EncodeStats, check_texts, encode_pieces, encode_to_mmap
from koroberta.preprocess.per_source import (check_source_name, describe_shares, has_text, source_valid_texts,
                                             subset_name, train_shares)
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


def _max_ids(data_bin: Path, splits: Iterable[str]) -> dict[str, int]:
    """Largest id per split of a data-bin fairseq-preprocess wrote (the fused writer keeps a running max instead):
    one read of each .bin, as fairseq wrote it."""
    return {s: max_token_id(data_bin / f"{s}.bin", mmap_dtype(data_bin / f"{s}.idx")) for s in splits}


def _per_source_inputs(split_dir: Path) -> tuple[dict[str, Path], dict[str, Path], Path | None]:
    """``(valid texts per source, the subsets to write {valid_<name>: text}, hf/train.parquet or None)`` of a
    multi-source split; empty for a single source, whose inputs (and so its manifest) stay what they always were."""
    per_source = source_valid_texts(split_dir)
    if not per_source:
        return {}, {}, None
    subsets = {}
    for name, p in per_source.items():
        if has_text(p):
            subsets[subset_name(name)] = p
        else:
            log.info("preprocess: source %s has no valid documents: no %s subset (fairseq cannot validate on an "
                     "empty subset)", name, subset_name(name))
    parquet = split_dir / "hf" / "train.parquet"
    return per_source, subsets, parquet if parquet.is_file() else None


def _source_stats(per_source: dict[str, Path], subsets: dict[str, EncodeStats], train_idx: Path,
                  parquet: Path | None) -> dict[str, dict]:
    """The manifest's ``sources``: per source its valid subset (None: no valid documents) with its counts, and its
    share of the train tokens (None, with the reason logged, when they cannot be derived)."""
    names = list(per_source)
    shares, why = train_shares(read_mmap_sizes(train_idx), parquet, names) if parquet is not None else (
        None, "no hf/train.parquet in the split directory (a split made elsewhere)")
    if shares is None:
        log.info("preprocess: train token shares per source skipped: %s", why)
    else:
        log.info("preprocess: train tokens per source: %s", describe_shares(shares))
    out = {}
    for n in names:
        st = subsets.get(subset_name(n))
        out[n] = {"valid_subset": subset_name(n) if st else None, "valid": st.to_dict() if st else None,
                  **(shares[n] if shares else {"train_tokens": None, "share": None})}
    return out


def preprocess(cfg: PreprocessConfig, split_dir: str | Path, vocab_dir: str | Path, out_dir: str | Path, *,
               workers: int = 1, force: bool = False, overwrite: bool = False, progress: bool = False) -> Path:
    """Encode ``split_dir/{train,valid,test}.txt`` with ``vocab_dir/spm.model`` into a fairseq data-bin ``out_dir``.

    The output is byte-for-byte what ``fairseq-preprocess --only-source --srcdict dict.txt --dataset-impl mmap``
    makes from the piece text (``method: fused`` writes it directly; ``method: fairseq`` runs fairseq), plus
    ``spm.model`` and a manifest with tokens/lines/documents per split, the unk rate and the spm/dict hashes.
    ``workers`` is the sentencepiece thread count (fused) or ``--workers`` (fairseq); it never changes the output.

    A multi-source split (:mod:`koroberta.preprocess.per_source`) adds a subset ``valid_<name>`` per source with
    valid documents (binarized like ``valid``, byte for byte what fairseq-preprocess makes of that file), and the
    manifest lists them (``valid_subsets``, ``valid`` first) with each source's share of the train tokens.
    """
    split_dir, out = Path(split_dir), Path(out_dir)
    texts = _split_inputs(split_dir)
    per_source, subset_texts, parquet = _per_source_inputs(split_dir)
    model, dict_txt, vocab = checked_vocab(vocab_dir)
    inputs: dict[str, str | Path | None] = {**texts, "spm_model": model, "dict": dict_txt}
    # a multi-source split's extra inputs (the Parquet file only feeds the manifest's shares, but it is read)
    inputs.update({subset_name(n): p for n, p in per_source.items()})
    if parquet is not None:
        inputs["train_parquet"] = parquet
    check_output_location(out, STAGE, inputs, overwrite=overwrite)  # before any work: nothing to undo
    if skip_if_complete(out, STAGE, cfg, inputs, force=force, log=log):
        return out
    # UTF-16, CP949 or not UTF-8: refused (with the iconv command) before any output
    check_texts([*texts.values(), *subset_texts.values()])
    sp = load_processor(model)
    n_symbols = len(FAIRSEQ_SPECIALS) + len(vocab.dict_symbols())  # what --srcdict loads (no <mask> yet)
    dtype = best_fitting_int_dtype(n_symbols)
    stats: dict[str, EncodeStats] = {}
    kw = dict(threads=max(1, workers), chunk_lines=cfg.chunk_lines, max_line_tokens=cfg.max_line_tokens,
              policy=cfg.bad_lines, progress=progress)
    prefixes = {**texts, **subset_texts}  # data-bin prefix -> text; the subsets are binarized exactly like valid
    with StageOutput(out, stage=STAGE, config=cfg, inputs=inputs, overwrite=overwrite) as st:
        t0 = time.perf_counter()
        if cfg.method == "fused":
            for split, src in prefixes.items():
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
                for split, src in prefixes.items():
                    stats[split] = encode_pieces(sp, src, enc / f"{split}.spm", **kw)
                st.timing["encode_s"] = round(time.perf_counter() - t0, 3)
                run_fairseq_preprocess(dict_txt, {s: enc / f"{s}.spm" for s in texts}, st.tmp, workers,
                                       extra_valid={s: enc / f"{s}.spm" for s in subset_texts})
                (st.tmp / "preprocess.log").unlink(missing_ok=True)  # holds timestamps: not reproducible
                if cfg.keep_encoded:
                    for s in prefixes:
                        shutil.move(str(enc / f"{s}.spm"), st.tmp / f"{s}.spm")
        st.timing["binarize_s"] = round(time.perf_counter() - t0, 3)
        shutil.copyfile(model, st.tmp / "spm.model")
        split_stats = {k: stats[k] for k in texts}  # the subsets repeat valid's lines: not counted twice
        for split, s in split_stats.items():
            _warn(split, s, cfg)
        total_pieces = sum(s.pieces for s in split_stats.values())
        st.stats.update({
            "method": cfg.method,
            "tokens": {k: s.tokens for k, s in split_stats.items()},
            "lines": {k: s.lines for k, s in split_stats.items()},
            "documents": {k: s.documents for k, s in split_stats.items()},
            "unk_rate": round(sum(s.unk for s in split_stats.values()) / total_pieces, 8) if total_pieces else 0.0,
            "spm_sha256": sha256_file(model),
            "dict_sha256": sha256_file(dict_txt),
            "dtype": np.dtype(dtype).name,
            "vocab_size": len(vocab.fairseq_symbols()),
            "splits": {k: s.to_dict() for k, s in split_stats.items()},
            # the largest id per split and subset, checked by train preflight against the dict it trains with
            "max_id": ({k: s.max_id for k, s in stats.items()} if cfg.method == "fused"
                       else _max_ids(st.tmp, prefixes)),
        })
        if per_source:
            # valid first: fairseq-train's best checkpoint follows the first subset it validates on
            st.stats["valid_subsets"] = ["valid", *subset_texts]
            st.stats["sources"] = _source_stats(per_source, {k: stats[k] for k in subset_texts},
                                                st.tmp / "train.idx", parquet)
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
    ``fairseq-preprocess``, refusing a dict.txt that does not belong to the spm model. Per-source
    ``valid_<name>.spm`` files (what ``keep_encoded`` keeps of a multi-source split) become ``valid_<name>``
    subsets."""
    enc = Path(encoded_dir)
    model, dict_txt, vocab = checked_vocab(vocab_dir)
    prefixes = {s: enc / f"{s}.spm" for s in SPLITS if (enc / f"{s}.spm").is_file()}
    if "train" not in prefixes:
        raise InputError("train.spm not found", path=enc, fix="run `koroberta preprocess encode` for each split")
    subsets = {p.stem: p for p in sorted(enc.glob("valid_*.spm")) if p.is_file()}
    for name in subsets:
        check_source_name(name[len("valid_"):], enc)
    inputs: dict[str, str | Path | None] = {**prefixes, **subsets, "spm_model": model, "dict": dict_txt}
    config = {"method": "fairseq", "binarize_only": True}
    check_output_location(out_dir, STAGE, inputs, overwrite=overwrite)  # before any work: nothing to undo
    if skip_if_complete(out_dir, STAGE, config, inputs, force=force, log=log):
        return Path(out_dir)
    with StageOutput(out_dir, stage=STAGE, config=config, inputs=inputs, overwrite=overwrite) as st:
        run_fairseq_preprocess(dict_txt, prefixes, st.tmp, workers, extra_valid=subsets)
        (st.tmp / "preprocess.log").unlink(missing_ok=True)
        shutil.copyfile(model, st.tmp / "spm.model")
        tokens, lines = {}, {}
        for s in prefixes:
            sizes = read_mmap_sizes(st.tmp / f"{s}.idx")  # the index only: the .bin may be GBs
            tokens[s], lines[s] = int(sizes.sum()), int(len(sizes))
        st.stats.update({"method": "fairseq", "tokens": tokens, "lines": lines,
                         "spm_sha256": sha256_file(model), "dict_sha256": sha256_file(dict_txt),
                         "vocab_size": len(vocab.fairseq_symbols()),
                         "max_id": _max_ids(st.tmp, [*prefixes, *subsets])})
        if subsets:
            st.stats["valid_subsets"] = (["valid"] if "valid" in prefixes else []) + list(subsets)
    return Path(out_dir)
