"""``preprocess``: split text + vocab -> fairseq data-bin (fused by default, fairseq-preprocess as reference).

The vocab is either ``koroberta spm train``'s (``spm.model`` + ``dict.txt``) or ``koroberta import-hf``'s (the HF
tokenizer + ``dict.txt`` with fairseq id = HF id, :mod:`koroberta.hfvocab`); :class:`PreprocessVocab` is what the
rest of the stage sees of either, and :mod:`koroberta.preprocess.encode` encodes with either.
"""

from __future__ import annotations

import collections
import contextlib
import hashlib
import itertools
import logging
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator

import numpy as np

from koroberta.artifacts import (SPLITS, StageOutput, atomic_path, check_output_location, sha256_file,
                                 skip_if_complete)
from koroberta.errors import InputError
from koroberta.databin import (best_fitting_int_dtype, max_token_id, mmap_dtype, read_mmap_sizes, shard_name,
                               write_mmap_index)
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


def _source_stats(per_source: dict[str, Path], subsets: dict[str, EncodeStats], train_sizes: np.ndarray,
                  parquet: Path | None) -> dict[str, dict]:
    """The manifest's ``sources``: per source its valid subset (None: no valid documents) with its counts, and its
    share of the train tokens (None, with the reason logged, when they cannot be derived). ``train_sizes`` are the
    train items in train.txt's order (a sharded data-bin's shards hold them in another)."""
    names = list(per_source)
    shares, why = train_shares(train_sizes, parquet, names) if parquet is not None else (
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


# -- sharded data-bins (preprocess.shards > 1) -------------------------------------------------------------------------
def document_runs(path: str | Path, shards: int) -> Iterator[tuple[int, int]]:
    """``(lines, shard)`` for consecutive runs of ``path``'s lines, covering every line once, in order.

    A run is one document -- a maximal run of non-blank lines -- with the blank lines after it (the first run also
    takes any before it), so a shard gets whole documents, each still followed by its boundary. Its shard is
    ``blake2b(document text) mod shards``: it depends on the document alone, never on its position or on how many
    workers encode, so the same train.txt always gives the same shards. Lines are split on ``\n`` only, as the
    encoder's reader splits them (:func:`koroberta.textfile.iter_line_chunks`), so run ``k`` covers exactly the
    items the encoder writes for those lines. Blank = only ASCII whitespace; a line that is blank only after repair
    merely splits a document inside its run, which keeps it in one shard all the same.
    """
    pending, h, in_doc = 0, None, False
    with open(path, "rb") as f:
        for line in f:
            if line.strip():
                if not in_doc:
                    if h is not None:  # a new document: the run before it (document + its blank lines) is complete
                        yield pending, _shard_of(h, shards)
                        pending = 0
                    h, in_doc = hashlib.blake2b(digest_size=8), True
                h.update(line if line.endswith(b"\n") else line + b"\n")  # the last line may lack its newline
            else:
                in_doc = False
            pending += 1
    if pending:
        yield pending, _shard_of(h, shards) if h is not None else 0


def _shard_of(h: Any, shards: int) -> int:
    return int.from_bytes(h.digest(), "big") % shards


@dataclass
class _ShardCounts:
    """What each shard's train part holds (lists indexed by shard)."""

    lines: list[int]
    tokens: list[int]
    documents: list[int]

    def check_nonempty(self, src: Path) -> None:
        """A shard without a document would give fairseq an empty epoch (and preflight nothing to check)."""
        empty = [shard_name(k) for k, n in enumerate(self.documents) if n == 0]
        if empty:
            raise InputError(f"{', '.join(empty)} would get no train document: {sum(self.documents)} documents "
                             f"over {len(self.documents)} shards", path=src,
                             fix="lower preprocess.shards (each shard should hold many documents), or use shards: 1")


class _RunCursor:
    """Hands out the shard of each next line from :func:`document_runs`, counting documents per shard."""

    def __init__(self, src: Path, shards: int) -> None:
        self.src, self._runs = src, document_runs(src, shards)
        self._left, self._shard = 0, 0
        self.documents = [0] * shards

    def take(self, n: int) -> np.ndarray:
        out = np.empty(n, dtype=np.int64)
        i = 0
        while i < n:
            if self._left == 0:
                self._left, self._shard = next(self._runs, (0, 0))
                if self._left == 0:  # the encoder writes one item per line: a mismatch is a bug, not bad input
                    raise RuntimeError(f"{self.src}: more encoded items than lines")
                self.documents[self._shard] += 1
            k = min(self._left, n - i)
            out[i:i + k] = self._shard
            i, self._left = i + k, self._left - k
        return out

    def finish(self) -> None:
        if self._left or next(self._runs, None) is not None:
            raise RuntimeError(f"{self.src}: fewer encoded items than lines")


class _ShardRouter:
    """The fused writer's ``bin_out`` and ``on_sizes`` for a sharded train split: each chunk's items go, in order,
    to the ``train.bin`` of their document's shard, so every shard's .bin/.idx is exactly what the one-directory
    writer makes of that shard's lines. Train is encoded once; nothing is written twice.

    :func:`~koroberta.preprocess.encode.encode_to_mmap` hands over a chunk's bytes (``write``) and its item sizes
    (``on_sizes``); the bytes are held until the sizes that describe them arrive, whichever comes first.
    """

    def __init__(self, dirs: list[Path], dtype: type, cursor: _RunCursor, files: contextlib.ExitStack) -> None:
        self.dirs, self.dtype, self.cursor = dirs, dtype, cursor
        self.item = np.dtype(dtype).itemsize
        self.bins = [files.enter_context(open(d / "train.bin", "wb")) for d in dirs]  # closed by the caller's stack
        self.sizes: list[list[np.ndarray]] = [[] for _ in dirs]
        self.in_order: list[np.ndarray] = []  # train.txt's order: the per-source token shares read them so
        self.max_id = [-1] * len(dirs)
        self._buf = bytearray()
        self._pending: collections.deque[np.ndarray] = collections.deque()

    def write(self, data: bytes) -> int:
        self._buf += data
        self._drain()
        return len(data)

    def on_sizes(self, sizes: np.ndarray) -> None:
        self._pending.append(sizes)
        self.in_order.append(sizes)
        self._drain()

    def _drain(self) -> None:
        while self._pending:
            sizes = self._pending[0]
            n = int(sizes.sum()) * self.item
            if len(self._buf) < n:
                return
            self._pending.popleft()
            ids = np.frombuffer(bytes(self._buf[:n]), dtype=self.dtype)
            del self._buf[:n]
            line_shard = self.cursor.take(len(sizes))
            token_shard = np.repeat(line_shard, sizes)
            for k in np.unique(line_shard).tolist():
                part = ids[token_shard == k]
                self.bins[k].write(part.tobytes(order="C"))
                self.sizes[k].append(sizes[line_shard == k])
                if len(part):
                    self.max_id[k] = max(self.max_id[k], int(part.max()))

    def finish(self) -> _ShardCounts:
        """After the last chunk: write the .idx files; the counts per shard."""
        if self._buf or self._pending:
            raise RuntimeError("encoded bytes and item sizes disagree")
        self.cursor.finish()
        per = [np.concatenate(s) if s else np.zeros(0, dtype=np.int64) for s in self.sizes]
        counts = _ShardCounts([len(s) for s in per], [int(s.sum()) for s in per], self.cursor.documents)
        counts.check_nonempty(self.cursor.src)
        for d, s in zip(self.dirs, per):
            write_mmap_index(d / "train.idx", s, self.dtype)
        return counts


def _route_piece_text(pieces: Path, cursor: _RunCursor, dsts: list[Path],
                      batch: int = 65536) -> tuple[np.ndarray, _ShardCounts]:
    """Split train's piece text (one line per train.txt line) into the shards' piece text, for fairseq-preprocess
    to binarize each shard as the fused writer does. Returns the items' sizes in train.txt's order (pieces + eos,
    as fairseq's whitespace tokenizer counts them) and the counts per shard."""
    sizes: list[np.ndarray] = []
    lines, tokens = [0] * len(dsts), [0] * len(dsts)
    with open(pieces, "rb") as f, contextlib.ExitStack() as stack:
        outs = [stack.enter_context(open(d, "wb")) for d in dsts]
        while chunk := list(itertools.islice(f, batch)):
            shard = cursor.take(len(chunk)).tolist()
            # str.split()'s whitespace is the \s fairseq's tokenize_line splits on; + 1 for the eos
            n = [len(line.decode("utf-8").split()) + 1 for line in chunk]
            for k, line, m in zip(shard, chunk, n):
                outs[k].write(line)
                lines[k] += 1
                tokens[k] += m
            sizes.append(np.array(n, dtype=np.int64))
    cursor.finish()
    counts = _ShardCounts(lines, tokens, cursor.documents)
    counts.check_nonempty(cursor.src)
    return (np.concatenate(sizes) if sizes else np.zeros(0, dtype=np.int64)), counts


def _announce_needs(cfg: PreprocessConfig, split_dir: Path, texts: dict[str, Path], vocab: PreprocessVocab,
                    workers: int, out: Path) -> None:
    """The stage's needs line (:mod:`koroberta.resources`): the split's text from its manifest (counted where it has
    none), the vocabulary's rows and the tokenizer files copied into the data-bin."""
    from koroberta.resources import announce, count_text, preprocess_needs, split_text

    text = split_text(split_dir) or count_text(list(texts.values()))
    train = split_text(split_dir, ("train",)) or count_text([texts["train"]])
    tok = vocab.hf.tokenizer_json.parent if vocab.hf is not None else vocab.spm_model
    size = (sum(p.stat().st_size for p in tok.rglob("*") if p.is_file()) if tok is not None and tok.is_dir()
            else tok.stat().st_size if tok is not None else 0)
    announce(log, STAGE, preprocess_needs(cfg, text, train, rows=vocab.rows,
                                          vocab_bytes=size + vocab.dict_txt.stat().st_size
                                          * (1 + (cfg.shards if cfg.shards > 1 else 0)), workers=workers), out)


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

    ``cfg.shards`` > 1 writes ``shard0/`` .. ``shard{N-1}/`` instead of the top-level .bin/.idx, each a fairseq
    data-bin with dict.txt (fairseq-train ``DATA/shard0:DATA/shard1:...`` loads one shard per epoch): train's
    documents go to the shard :func:`document_runs` names (by their text, so any ``workers`` gives the same bytes),
    valid, test and the per-source subsets to shard0, the only path fairseq reads them from. Each shard's files are
    byte for byte what either method makes of that shard's lines. The top level keeps dict.txt and the tokenizer;
    the manifest adds ``shards`` and the train tokens/lines/documents per shard, and ``max_id`` is keyed by the
    files' relative prefixes (``shard1/train``).
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
    shards = [shard_name(k) for k in range(cfg.shards)] if cfg.shards > 1 else []
    # where each split's .bin/.idx go, relative to the output: the one-directory layout keeps its names; a sharded
    # one has train in every shard and everything else in shard0, the only path fairseq reads valid and dict.txt from
    rel = {split: f"{shards[0]}/{split}" if shards else split for split in prefixes}
    counts: _ShardCounts | None = None
    train_sizes: np.ndarray | None = None
    with StageOutput(out, stage=STAGE, config=cfg, inputs=inputs, overwrite=overwrite) as st:
        _announce_needs(cfg, split_dir, texts, vocab, workers, out)  # the first line: once the output is taken
        t0 = time.perf_counter()
        for name in shards:
            (st.tmp / name).mkdir()
        if cfg.method == "fused":
            max_ids = {}
            for split, src in prefixes.items():
                sizes: list[np.ndarray] = []
                with contextlib.ExitStack() as keep:
                    pieces = keep.enter_context(open(st.tmp / f"{split}.spm", "w", encoding="utf-8", newline="\n")) \
                        if cfg.keep_encoded else None
                    if split == "train" and shards:
                        router = _ShardRouter([st.tmp / n for n in shards], dtype, _RunCursor(src, cfg.shards),
                                              keep)
                        stats[split] = encode_to_mmap(enc, src, router, dtype,  # type: ignore[arg-type]
                                                      on_sizes=router.on_sizes, pieces_out=pieces, **kw)
                        counts = router.finish()
                        train_sizes = np.concatenate(router.in_order)
                        max_ids.update({f"{n}/train": m for n, m in zip(shards, router.max_id)})
                        continue
                    b = keep.enter_context(open(st.tmp / f"{rel[split]}.bin", "wb"))
                    stats[split] = encode_to_mmap(enc, src, b, dtype, on_sizes=sizes.append, pieces_out=pieces,
                                                  **kw)
                write_mmap_index(st.tmp / f"{rel[split]}.idx", np.concatenate(sizes), dtype)
                max_ids[rel[split]] = stats[split].max_id
            for d in ["", *shards]:
                shutil.copyfile(vocab.dict_txt, st.tmp / d / "dict.txt")
        else:
            with tempfile.TemporaryDirectory(prefix=".encoded-", dir=st.tmp.parent) as tmp_dir:
                enc_dir = Path(tmp_dir)
                for split, src in prefixes.items():
                    stats[split] = encode_pieces(enc, src, enc_dir / f"{split}.spm", **kw)
                st.timing["encode_s"] = round(time.perf_counter() - t0, 3)
                if shards:
                    # the same split into shards as the fused writer's (document_runs), applied to the piece text.
                    # One fairseq-preprocess run (its start alone costs seconds) writes every shard: the other
                    # shards' train parts ride on --validpref, which fairseq binarizes with the very function and
                    # dictionary it uses for --trainpref, and are moved into their shard under their own name
                    parts = [enc_dir / f"train.{n}.spm" for n in shards]
                    train_sizes, counts = _route_piece_text(enc_dir / "train.spm", _RunCursor(texts["train"],
                                                                                             cfg.shards), parts)
                    first = st.tmp / shards[0]
                    extra = {s: enc_dir / f"{s}.spm" for s in subset_texts}
                    extra.update({f"train-{n}": part for n, part in zip(shards[1:], parts[1:])})
                    run_fairseq_preprocess(vocab.dict_txt, {**{s: enc_dir / f"{s}.spm" for s in texts},
                                                            "train": parts[0]}, first, workers, extra_valid=extra)
                    (first / "preprocess.log").unlink(missing_ok=True)  # holds timestamps: not reproducible
                    for n in shards[1:]:
                        for ext in ("bin", "idx"):
                            (first / f"train-{n}.{ext}").rename(st.tmp / n / f"train.{ext}")
                    for d in ["", *shards[1:]]:  # fairseq's own dict.txt, as the one-directory layout has it
                        shutil.copyfile(first / "dict.txt", st.tmp / d / "dict.txt")
                else:
                    run_fairseq_preprocess(vocab.dict_txt, {s: enc_dir / f"{s}.spm" for s in texts}, st.tmp,
                                           workers, extra_valid={s: enc_dir / f"{s}.spm" for s in subset_texts})
                    (st.tmp / "preprocess.log").unlink(missing_ok=True)  # holds timestamps: not reproducible
                if cfg.keep_encoded:
                    for s in prefixes:
                        shutil.move(str(enc_dir / f"{s}.spm"), st.tmp / f"{s}.spm")
            max_ids = _max_ids(st.tmp, [*(f"{n}/train" for n in shards), *(rel[s] for s in prefixes
                                                                            if not (shards and s == "train"))])
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
            # the largest id per split and subset (per shard's file when sharded), checked by train preflight
            # against the dict it trains with
            "max_id": max_ids,
        })
        if counts is not None:
            # train preflight reads the layout from here (and train passes shard0:shard1:... to fairseq-train)
            st.stats.update({"shards": cfg.shards, "shard_tokens": counts.tokens, "shard_lines": counts.lines,
                             "shard_documents": counts.documents})
            log.info("preprocess: train in %d shards of %s tokens (valid/test in %s)", cfg.shards,
                     counts.tokens, shards[0])
        if per_source:
            # valid first: fairseq-train's best checkpoint follows the first subset it validates on
            st.stats["valid_subsets"] = ["valid", *subset_texts]
            st.stats["sources"] = _source_stats(per_source, {k: stats[k] for k in subset_texts},
                                                train_sizes if train_sizes is not None
                                                else read_mmap_sizes(st.tmp / "train.idx"), parquet)
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
