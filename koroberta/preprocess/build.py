"""``preprocess``: split text + vocab -> fairseq data-bin (fused by default, fairseq-preprocess as reference).

The vocab is either ``koroberta spm train``'s (``spm.model`` + ``dict.txt``) or ``koroberta import-hf``'s (the HF
tokenizer + ``dict.txt`` with fairseq id = HF id, :mod:`koroberta.hfvocab`); :class:`PreprocessVocab` is what the
rest of the stage sees of either, and :mod:`koroberta.preprocess.encode` encodes with either.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from koroberta.artifacts import (SPLITS, StageOutput, atomic_path, check_output_location, sha256_file,
                                 skip_if_complete)
from koroberta.errors import InputError
from koroberta.databin import best_fitting_int_dtype, max_token_id, mmap_dtype, read_mmap_sizes, write_mmap_index
from koroberta.preprocess.binarize import run_fairseq_preprocess
from koroberta.preprocess.config import PreprocessConfig
from koroberta.hfvocab import RECORD, TOKENIZER_DIR, HFVocab, is_hf_vocab, load_hf_vocab
from koroberta.preprocess.encode import (EncodeStats, Encoder, HFEncoder, SpmEncoder, check_texts, encode_pieces,
                                         encode_to_mmap)
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
            raise InputError(f"{p.name} not found", path=vd, fix="pass the output dir of `koroberta spm train` (or "
                                                                 "of `koroberta import-hf`)")
    return model, dict_txt, check_dict_matches(dict_txt, model)


@dataclass(frozen=True)
class PreprocessVocab:
    """A checked vocab directory as the stage uses it, whichever tokenizer it holds (:func:`load_preprocess_vocab`)."""

    dict_txt: Path
    inputs: dict[str, Path]  # the files the data-bin depends on (manifest inputs, next to the split texts)
    rows: int  # embedding rows incl. <mask>: the manifest's vocab_size
    n_dict: int  # len() of the Dictionary fairseq-preprocess loads from dict.txt: the .bin dtype follows it
    spm_model: Path | None = None
    hf: HFVocab | None = field(default=None, repr=False)

    def encoder(self, threads: int) -> Encoder:
        if self.hf is not None:
            return HFEncoder(self.hf, threads)
        assert self.spm_model is not None
        return SpmEncoder(load_processor(self.spm_model), threads)

    def copy_into(self, out: Path) -> None:
        """The tokenizer travels with the data-bin: ``spm.model``, or the import's ``tokenizer/`` directory (the
        original HF files, so whoever reads the data-bin can decode it and train preflight can check it)."""
        if self.hf is not None:
            shutil.copytree(self.hf.tokenizer_json.parent, out / TOKENIZER_DIR)
        else:
            assert self.spm_model is not None
            shutil.copyfile(self.spm_model, out / "spm.model")

    def stats(self) -> dict[str, Any]:
        """The manifest fields naming the vocabulary (an spm data-bin's are what they always were)."""
        if self.hf is not None:
            return {"vocab_kind": "hf", "tokenizer_sha256": sha256_file(self.hf.tokenizer_json),
                    "dict_sha256": sha256_file(self.dict_txt), "mask_id": self.hf.mask_id}
        assert self.spm_model is not None
        return {"spm_sha256": sha256_file(self.spm_model), "dict_sha256": sha256_file(self.dict_txt)}


def load_preprocess_vocab(vocab_dir: str | Path) -> PreprocessVocab:
    """``vocab_dir`` checked: an import's dict.txt and tokenizer.json must be the files it recorded
    (:func:`koroberta.hfvocab.load_hf_vocab`), an spm vocab's dict.txt must belong to its spm.model."""
    vd = Path(vocab_dir)
    if is_hf_vocab(vd):
        hf = load_hf_vocab(vd)
        # dict.txt already lists <mask>: masked_lm's add_symbol finds it, so the rows are exactly dict.txt's
        return PreprocessVocab(hf.dict_path, {"tokenizer": hf.tokenizer_json, "dict": hf.dict_path,
                                              "vocab_record": vd / RECORD}, rows=hf.rows, n_dict=hf.rows, hf=hf)
    model, dict_txt, vocab = checked_vocab(vd)
    return PreprocessVocab(dict_txt, {"spm_model": model, "dict": dict_txt},
                           rows=len(vocab.fairseq_symbols()),
                           n_dict=len(FAIRSEQ_SPECIALS) + len(vocab.dict_symbols()),  # no <mask> yet
                           spm_model=model)


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
    """Encode ``split_dir/{train,valid,test}.txt`` with ``vocab_dir``'s tokenizer into a fairseq data-bin ``out_dir``.

    The output is byte-for-byte what ``fairseq-preprocess --only-source --srcdict dict.txt --dataset-impl mmap``
    makes from the piece text (``method: fused`` writes it directly; ``method: fairseq`` runs fairseq), plus the
    tokenizer (``spm.model``, or ``tokenizer/`` for an imported HF vocab) and a manifest with tokens/lines/documents
    per split, the unk rate and the tokenizer/dict hashes (an HF data-bin's also say ``vocab_kind: hf`` and the mask
    id). ``workers`` is the encoding thread count (both methods) and fairseq-preprocess's ``--workers``; it never
    changes the output.

    A multi-source split (:mod:`koroberta.preprocess.per_source`) adds a subset ``valid_<name>`` per source with
    valid documents (binarized like ``valid``, byte for byte what fairseq-preprocess makes of that file), and the
    manifest lists them (``valid_subsets``, ``valid`` first) with each source's share of the train tokens.
    """
    split_dir, out = Path(split_dir), Path(out_dir)
    texts = _split_inputs(split_dir)
    per_source, subset_texts, parquet = _per_source_inputs(split_dir)
    vocab = load_preprocess_vocab(vocab_dir)
    inputs: dict[str, str | Path | None] = {**texts, **vocab.inputs}
    # a multi-source split's extra inputs (the Parquet file only feeds the manifest's shares, but it is read)
    inputs.update({subset_name(n): p for n, p in per_source.items()})
    if parquet is not None:
        inputs["train_parquet"] = parquet
    check_output_location(out, STAGE, inputs, overwrite=overwrite)  # before any work: nothing to undo
    if skip_if_complete(out, STAGE, cfg, inputs, force=force, log=log):
        return out
    # UTF-16, CP949 or not UTF-8: refused (with the iconv command) before any output
    check_texts([*texts.values(), *subset_texts.values()])
    enc = vocab.encoder(max(1, workers))
    dtype = best_fitting_int_dtype(vocab.n_dict)
    stats: dict[str, EncodeStats] = {}
    kw = dict(chunk_lines=cfg.chunk_lines, max_line_tokens=cfg.max_line_tokens, policy=cfg.bad_lines,
              progress=progress)
    prefixes = {**texts, **subset_texts}  # data-bin prefix -> text; the subsets are binarized exactly like valid
    with StageOutput(out, stage=STAGE, config=cfg, inputs=inputs, overwrite=overwrite) as st:
        t0 = time.perf_counter()
        if cfg.method == "fused":
            for split, src in prefixes.items():
                sizes: list[np.ndarray] = []
                with open(st.tmp / f"{split}.bin", "wb") as b, contextlib.ExitStack() as keep:
                    pieces = keep.enter_context(open(st.tmp / f"{split}.spm", "w", encoding="utf-8", newline="\n")) \
                        if cfg.keep_encoded else None
                    stats[split] = encode_to_mmap(enc, src, b, dtype, on_sizes=sizes.append, pieces_out=pieces,
                                                  **kw)
                write_mmap_index(st.tmp / f"{split}.idx", np.concatenate(sizes), dtype)
            shutil.copyfile(vocab.dict_txt, st.tmp / "dict.txt")
        else:
            with tempfile.TemporaryDirectory(prefix=".encoded-", dir=st.tmp.parent) as tmp_dir:
                enc_dir = Path(tmp_dir)
                for split, src in prefixes.items():
                    stats[split] = encode_pieces(enc, src, enc_dir / f"{split}.spm", **kw)
                st.timing["encode_s"] = round(time.perf_counter() - t0, 3)
                run_fairseq_preprocess(vocab.dict_txt, {s: enc_dir / f"{s}.spm" for s in texts}, st.tmp, workers,
                                       extra_valid={s: enc_dir / f"{s}.spm" for s in subset_texts})
                (st.tmp / "preprocess.log").unlink(missing_ok=True)  # holds timestamps: not reproducible
                if cfg.keep_encoded:
                    for s in prefixes:
                        shutil.move(str(enc_dir / f"{s}.spm"), st.tmp / f"{s}.spm")
        st.timing["binarize_s"] = round(time.perf_counter() - t0, 3)
        vocab.copy_into(st.tmp)
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
            **vocab.stats(),
            "dtype": np.dtype(dtype).name,
            "vocab_size": vocab.rows,
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
    """``koroberta preprocess encode``: one text file -> piece text (written atomically). ``spm_model`` is an
    ``spm.model`` or an imported vocab directory (``koroberta import-hf``; its dict.txt spells the pieces)."""
    threads = max(1, workers)
    enc: Encoder = (HFEncoder(load_hf_vocab(spm_model), threads) if is_hf_vocab(spm_model)
                    else SpmEncoder(load_processor(spm_model), threads))
    with atomic_path(dst) as tmp:
        return encode_pieces(enc, src, tmp, chunk_lines=cfg.chunk_lines, max_line_tokens=cfg.max_line_tokens,
                             policy=cfg.bad_lines, progress=progress)


def binarize(encoded_dir: str | Path, vocab_dir: str | Path, out_dir: str | Path, *, workers: int = 1,
             force: bool = False, overwrite: bool = False) -> Path:
    """``koroberta preprocess binarize``: ``encoded_dir/{train,valid,test}.spm`` piece text -> data-bin via
    ``fairseq-preprocess``, refusing a dict.txt that does not belong to the tokenizer. Per-source
    ``valid_<name>.spm`` files (what ``keep_encoded`` keeps of a multi-source split) become ``valid_<name>``
    subsets."""
    enc = Path(encoded_dir)
    vocab = load_preprocess_vocab(vocab_dir)
    prefixes = {s: enc / f"{s}.spm" for s in SPLITS if (enc / f"{s}.spm").is_file()}
    if "train" not in prefixes:
        raise InputError("train.spm not found", path=enc, fix="run `koroberta preprocess encode` for each split")
    subsets = {p.stem: p for p in sorted(enc.glob("valid_*.spm")) if p.is_file()}
    for name in subsets:
        check_source_name(name[len("valid_"):], enc)
    inputs: dict[str, str | Path | None] = {**prefixes, **subsets, **vocab.inputs}
    config = {"method": "fairseq", "binarize_only": True}
    check_output_location(out_dir, STAGE, inputs, overwrite=overwrite)  # before any work: nothing to undo
    if skip_if_complete(out_dir, STAGE, config, inputs, force=force, log=log):
        return Path(out_dir)
    with StageOutput(out_dir, stage=STAGE, config=config, inputs=inputs, overwrite=overwrite) as st:
        run_fairseq_preprocess(vocab.dict_txt, prefixes, st.tmp, workers, extra_valid=subsets)
        (st.tmp / "preprocess.log").unlink(missing_ok=True)
        vocab.copy_into(st.tmp)
        tokens, lines = {}, {}
        for s in prefixes:
            sizes = read_mmap_sizes(st.tmp / f"{s}.idx")  # the index only: the .bin may be GBs
            tokens[s], lines[s] = int(sizes.sum()), int(len(sizes))
        st.stats.update({"method": "fairseq", "tokens": tokens, "lines": lines, **vocab.stats(),
                         "vocab_size": vocab.rows,
                         "max_id": _max_ids(st.tmp, [*prefixes, *subsets])})
        if subsets:
            st.stats["valid_subsets"] = (["valid"] if "valid" in prefixes else []) + list(subsets)
    return Path(out_dir)
