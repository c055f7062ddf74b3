"""Streaming encoders: piece text (for fairseq-preprocess) or fairseq ids (for the fused mmap writer).

Two tokenizers behind one interface, so the writers below never ask which one they hold:

* :class:`SpmEncoder` (a ``koroberta spm train`` vocab): fairseq id = spm id + OFFSET, spm ``<unk>`` -> UNK
  (:mod:`koroberta.layout`);
* :class:`HFEncoder` (a ``koroberta import-hf`` vocab, :mod:`koroberta.hfvocab`): fairseq id = HF id.

Each gives a batch call returning the tokenizer's own ids per line (no eos), a vectorised map of those ids to
fairseq ids that also counts unknowns, and a table spelling every id as fairseq's ``dict.txt`` does (the piece text
``fairseq-preprocess`` maps back to the same fairseq id).

Speed comes from each library's batch API: one Python call per chunk of ``chunk_lines`` lines, the native side
splits the batch over threads and returns results in input order, so order is preserved without any reordering
logic and memory stays at one chunk (two with the prefetch below) whatever the input size. The per-line
``multiprocessing.Pool.imap(EncodeAsPieces)`` recipe pays pickling + one Python call per line instead.

Threads. sentencepiece takes the count per call (``num_threads``). ``tokenizers`` does not (its
``utils/parallelism.rs``; checked on 0.23.3): ``encode_batch`` runs on rayon's *global* pool whenever the
environment variable ``TOKENIZERS_PARALLELISM`` is unset or true (read on every call), and that pool is sized once
per process, when it is first used, from ``RAYON_NUM_THREADS`` (``RAYON_RS_NUM_CPUS``, its older name, too) or the
CPUs the process may use; setting either later changes nothing. So ``workers`` could not set it, nor could a second
run in the same process with another count. The HF encoder therefore sets ``TOKENIZERS_PARALLELISM=false`` while it
encodes (restored after), which keeps every call serial and rayon's pool unstarted, and splits each chunk into
``threads`` contiguous slices encoded by ``threads`` Python threads (the Rust call releases the GIL). The slices are
joined in order, so the ids never depend on the thread count. On 2 cores (bench/preprocess_hf.py, 19.6 MB of kowiki,
32k WordPiece) 2 slices encode 1.78x as fast as one, rayon's pool of 2 1.76x. ``encode_batch_fast`` (no character
offsets, which nothing here reads; ``encode_batch`` where a tokenizers release lacks it) gives the same ids with
0.74x the CPU of ``encode_batch``.
"""

from __future__ import annotations

import logging
import os
import re
from concurrent.futures import ThreadPoolExecutor
from itertools import chain
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Callable, Iterable, Iterator, TextIO, Union

import numpy as np

from koroberta.encoding import check_text_file
from koroberta.errors import InputError
from koroberta.hfvocab import HFVocab
from koroberta.layout import EOS, OFFSET, UNK
from koroberta.textfile import Repairs, iter_line_chunks

log = logging.getLogger("koroberta.preprocess")
SPM_UNK = 0  # spm id of <unk> in our layout; it maps to fairseq UNK (3), not to 0 + OFFSET (= <pad>)


@dataclass
class EncodeStats:
    """Counts for one split. ``tokens`` includes the eos fairseq appends to every line (what the .bin holds)."""

    lines: int = 0
    blank_lines: int = 0
    documents: int = 0
    pieces: int = 0
    unk: int = 0
    long_lines: int = 0
    max_pieces: int = 0
    max_id: int = -1  # largest fairseq id written (encode_to_mmap only): preflight checks it against dict.txt
    repairs: Repairs = field(default_factory=Repairs)
    _in_doc: bool = False

    @property
    def tokens(self) -> int:
        return self.pieces + self.lines

    def update(self, lengths: np.ndarray, unk: int, max_line_tokens: int) -> None:
        """Add one chunk. A line is blank when spm gives it no pieces: fairseq stores it as ``[eos]``, which is
        exactly what ``--sample-break-mode complete_doc`` treats as a document boundary."""
        self.lines += len(lengths)
        self.pieces += int(lengths.sum())
        self.unk += unk
        if len(lengths):
            self.max_pieces = max(self.max_pieces, int(lengths.max()))
        self.long_lines += int((lengths > max_line_tokens).sum())
        nonblank = lengths > 0
        self.blank_lines += int(len(lengths) - nonblank.sum())
        if len(lengths):  # a document = a maximal run of non-blank lines: count blank->non-blank transitions
            prev = np.concatenate([[self._in_doc], nonblank[:-1]])
            self.documents += int((nonblank & ~prev).sum())
            self._in_doc = bool(nonblank[-1])

    def to_dict(self) -> dict[str, Any]:
        return {"lines": self.lines, "blank_lines": self.blank_lines, "documents": self.documents,
                "pieces": self.pieces, "tokens": self.tokens, "unk": self.unk,
                "unk_rate": round(self.unk / self.pieces, 8) if self.pieces else 0.0,
                "pieces_per_line": round(self.pieces / max(1, self.lines - self.blank_lines), 3),
                "long_lines": self.long_lines, "max_pieces": self.max_pieces, "repairs": self.repairs.to_dict()}


def check_texts(paths: Iterable[str | Path]) -> None:
    """Refuse any of ``paths`` that is UTF-16, CP949/EUC-KR or not UTF-8 (:mod:`koroberta.encoding`), all of them
    before the first is encoded: a bad test.txt is reported at once, not after hours of encoding train.txt. (The
    reader checks each file again when it opens it -- ~30 ms -- and counts stray bytes as it goes.)"""
    for p in paths:
        check_text_file(p)


def _progress(path: Path, enabled: bool) -> Any:
    if not enabled:
        return None
    from koroberta.progress import progress_bar

    return progress_bar(f"encode {path.name}", " lines", leave=False)


def _flat(ids: list[list[int]], lengths: np.ndarray) -> np.ndarray:
    return np.fromiter(chain.from_iterable(ids), dtype=np.int64, count=int(lengths.sum()))


class SpmEncoder:
    """sentencepiece: fairseq id = spm id + OFFSET, spm's ``<unk>`` (id 0) -> UNK. Use as a context manager (it
    owns the thread that encodes the next chunk while the writer handles the current one)."""

    def __init__(self, sp: Any, threads: int = 1) -> None:
        self.sp, self.threads = sp, max(1, threads)
        self._ex: ThreadPoolExecutor | None = None

    def __enter__(self) -> "SpmEncoder":
        self._ex = ThreadPoolExecutor(1, thread_name_prefix="spm-encode")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._ex is not None:
            self._ex.shutdown()
            self._ex = None

    def prepare(self, chunk: list[str], first_lineno: int, path: Path, policy: str, repairs: Repairs) -> list[str]:
        """The reader (:func:`koroberta.textfile.iter_line_chunks`) already handled what spm needs handled."""
        return chunk

    def submit(self, lines: list[str]) -> Callable[[], list[list[int]]]:
        """Start encoding ``lines`` (spm ids per line); call the result for them. sentencepiece releases the GIL
        inside its batch call, so the caller reads the next chunk meanwhile."""
        assert self._ex is not None, "use the encoder as a context manager"
        return self._ex.submit(self.sp.encode, lines, out_type=int, num_threads=self.threads).result

    def count_unk(self, ids: list[list[int]], lengths: np.ndarray, first_lineno: int, path: Path) -> int:
        # spm adds no bos/eos unless asked, so there is nothing to check; list.count runs in C, no array needed
        return sum(row.count(SPM_UNK) for row in ids)

    def to_fairseq(self, flat: np.ndarray, lengths: np.ndarray, first_lineno: int,
                   path: Path) -> tuple[np.ndarray, int]:
        """``flat`` (spm ids of a chunk, modified in place) as fairseq ids, and how many were ``<unk>``."""
        unk_mask = flat == SPM_UNK
        flat += OFFSET
        flat[unk_mask] = UNK
        return flat, int(unk_mask.sum())

    def piece_table(self) -> list[str]:
        return piece_table(self.sp)


class HFEncoder:
    """An imported Hugging Face tokenizer: fairseq id = HF id (:mod:`koroberta.hfvocab`). Context manager: it owns
    ``threads`` encoding threads and holds ``TOKENIZERS_PARALLELISM=false`` while open (module docstring)."""

    def __init__(self, vocab: HFVocab, threads: int = 1) -> None:
        self.vocab, self.threads = vocab, max(1, threads)
        self.tok = vocab.tokenizer()
        self.unk = vocab.unk_id
        self._batch = getattr(self.tok, "encode_batch_fast", None) or self.tok.encode_batch
        # longest first: where one literal holds another, the whole of it is what the tokenizer matches
        lits = sorted(vocab.literals, key=lambda x: (-len(x), x))
        self._literal_re = re.compile("|".join(map(re.escape, lits))) if lits else None
        # the special tokens' ids, <unk> aside (the model emits it for unknown text; counted, not refused): after
        # the literals are removed none may occur, and fairseq's masked_lm asserts <mask> never does
        special = {self.tok.token_to_id(t) for t in vocab.literals} | {vocab.mask_id}
        self.forbidden = np.array(sorted(i for i in special if i is not None and i != self.unk), dtype=np.int64)
        self._ex: ThreadPoolExecutor | None = None
        self._env: str | None = None

    def __enter__(self) -> "HFEncoder":
        self._env = os.environ.get(_PARALLELISM)
        os.environ[_PARALLELISM] = "false"
        self._ex = ThreadPoolExecutor(self.threads, thread_name_prefix="hf-encode")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._ex is not None:
            self._ex.shutdown()
            self._ex = None
        if self._env is None:
            os.environ.pop(_PARALLELISM, None)
        else:
            os.environ[_PARALLELISM] = self._env

    def prepare(self, chunk: list[str], first_lineno: int, path: Path, policy: str, repairs: Repairs) -> list[str]:
        """Remove (``repair``) or refuse (``error``) the tokenizer's special strings in the text: the tokenizer
        matches them before anything else, so a literal ``[MASK]`` would become the mask id in the data.

        The reader leaves koroberta's own literal set (``<mask>``/``<s>``...) to this encoder (``literals=False``):
        what is special here is this tokenizer's set, which for XLM-R is those strings and for klue is not. A line
        that held nothing but literals becomes blank, i.e. a document boundary, as a whitespace-only line does: the
        data-bin keeps one item per input line.
        """
        rx = self._literal_re
        if rx is None or rx.search("\n".join(chunk)) is None:  # one C scan for the common, clean chunk
            return chunk
        for k, line in enumerate(chunk):
            m = rx.search(line)
            if m is None:
                continue
            n = first_lineno + k
            if policy == "error":
                raise InputError(f"line {n} contains a literal {m.group()!r}, which the tokenizer reads as its "
                                 "special token", path=path,
                                 fix="remove it from the text, or set preprocess.bad_lines: repair (removed, counted)")
            new, removed = line, 1
            while removed:  # removing one can join its neighbours into another: "[MA[MASK]SK]"
                new, removed = rx.subn("", new)
            chunk[k] = " ".join(new.split())
            repairs.special_literals += 1
            repairs.note(n, f"literal {m.group()} removed")
        return chunk

    def submit(self, lines: list[str]) -> Callable[[], list[list[int]]]:
        """Start encoding ``lines`` as ``threads`` contiguous slices; call the result for the ids in line order."""
        assert self._ex is not None, "use the encoder as a context manager"
        step = max(1, -(-len(lines) // self.threads))
        futures = [self._ex.submit(self._encode, lines[i:i + step]) for i in range(0, len(lines), step)]
        return lambda: [row for f in futures for row in f.result()]

    def _encode(self, lines: list[str]) -> list[list[int]]:
        return [e.ids for e in self._batch(lines, add_special_tokens=False)]

    def _check(self, flat: np.ndarray, lengths: np.ndarray, first_lineno: int, path: Path) -> None:
        bad = np.isin(flat, self.forbidden)
        if bad.any():  # only a special token matched after normalisation gets here (the literals are gone)
            pos = int(bad.argmax())
            line = first_lineno + int(np.searchsorted(np.cumsum(lengths), pos, side="right"))
            tid = int(flat[pos])
            raise InputError(f"line {line} encodes to the special token {self.tok.id_to_token(tid)!r} (id {tid}) "
                             "though no literal of it is left: the tokenizer's normalizer makes one", path=path,
                             fix="remove that text from the line (fairseq's masked_lm refuses special ids in its data)")

    def count_unk(self, ids: list[list[int]], lengths: np.ndarray, first_lineno: int, path: Path) -> int:
        flat = _flat(ids, lengths)
        self._check(flat, lengths, first_lineno, path)
        return int(np.count_nonzero(flat == self.unk))

    def to_fairseq(self, flat: np.ndarray, lengths: np.ndarray, first_lineno: int,
                   path: Path) -> tuple[np.ndarray, int]:
        self._check(flat, lengths, first_lineno, path)
        return flat, int(np.count_nonzero(flat == self.unk))

    def piece_table(self) -> list[str]:
        """HF id -> the symbol dict.txt gives that fairseq id (ids 0-3 as ``<s> <pad> </s> <unk>``)."""
        return list(self.vocab.symbols)


Encoder = Union[SpmEncoder, HFEncoder]
_PARALLELISM = "TOKENIZERS_PARALLELISM"


def _chunks(path: Path, chunk_lines: int, policy: str, stats: EncodeStats, progress: bool,
            enc: Encoder) -> Iterator[tuple[int, list[str]]]:
    """``(first line number, lines)`` of ``path``, read, repaired and prepared for ``enc``."""
    bar = _progress(path, progress)
    first = 1
    try:
        for chunk in iter_line_chunks(path, chunk_lines, policy=policy, repairs=stats.repairs,
                                      literals=isinstance(enc, SpmEncoder)):
            if bar is not None:
                bar.update(len(chunk))
            yield first, enc.prepare(chunk, first, path, policy, stats.repairs)
            first += len(chunk)
    finally:
        if bar is not None:
            bar.close()


def _encoded(enc: Encoder, chunks: Iterator[tuple[int, list[str]]]
             ) -> Iterator[tuple[int, list[str], list[list[int]]]]:
    """``(first line number, chunk, ids)`` in order, with the *next* chunk already being encoded in the background.

    Both libraries release the GIL inside their batch call, so reading/cleaning the next chunk and
    formatting/writing the previous one overlap with encoding: on 150k kowiki lines, 2 cores, this cut the spm
    piece-text path from 1.37x to 1.08x the bare ``sp.encode(lines, out_type=int)`` time. Memory: two chunks.
    """
    pending = None
    for first, chunk in chunks:
        result = enc.submit(chunk)
        if pending is not None:
            yield pending[0], pending[1], pending[2]()
        pending = (first, chunk, result)
    if pending is not None:
        yield pending[0], pending[1], pending[2]()


def encode_pieces(enc: Encoder, src: str | Path, dst: str | Path, *, chunk_lines: int = 20000,
                  max_line_tokens: int = 1024, policy: str = "repair", progress: bool = False) -> EncodeStats:
    """Write ``src`` as piece text (pieces joined by " ", one line per input line, blank lines kept)."""
    src, dst = Path(src), Path(dst)
    stats = EncodeStats()
    # one batch call per chunk, as ids; pieces come from a table lookup. An unknown span is written as "<unk>"
    # (fairseq maps that symbol to UNK exactly as it would map the span's surface text, which is not in dict.txt),
    # so no character the tokenizer does not know can ever reach fairseq's whitespace tokenizer.
    table = enc.piece_table()
    with enc, open(dst, "w", encoding="utf-8", newline="\n") as out:
        for first, chunk, ids in _encoded(enc, _chunks(src, chunk_lines, policy, stats, progress, enc)):
            lengths = np.fromiter(map(len, ids), dtype=np.int64, count=len(ids))
            stats.update(lengths, enc.count_unk(ids, lengths, first, src), max_line_tokens)
            out.write(_piece_text(table, ids))
    _check_nonempty(src, stats)
    return stats


def piece_table(sp: Any) -> list[str]:
    """spm id -> piece string."""
    return [sp.id_to_piece(i) for i in range(sp.get_piece_size())]


def _piece_text(table: list[str], ids: list[list[int]]) -> str:
    return "".join(" ".join(map(table.__getitem__, row)) + "\n" for row in ids)


def _check_nonempty(src: Path, stats: EncodeStats) -> None:
    if stats.lines - stats.blank_lines == 0:
        raise InputError("split has no non-blank lines", path=src,
                         fix="check the corpus stage output (every split needs at least one document)")


def encode_to_mmap(enc: Encoder, src: str | Path, bin_out: BinaryIO, dtype: type, *, chunk_lines: int = 20000,
                   max_line_tokens: int = 1024, policy: str = "repair", progress: bool = False,
                   on_sizes: Callable[[np.ndarray], None], pieces_out: TextIO | None = None) -> EncodeStats:
    """Append fairseq ids of every line of ``src`` (+ trailing eos) to ``bin_out`` as ``dtype``.

    This is what ``fairseq-preprocess`` computes from our piece text: ``Dictionary.encode_line`` maps each piece
    to its fairseq id (spm: id + OFFSET, ``<unk>`` -> UNK; HF: the HF id) and appends EOS; an empty line becomes
    ``[EOS]``. ``on_sizes`` receives each chunk's per-line sizes (for the .idx). With ``pieces_out`` the same ids
    are also written as piece text (what :func:`encode_pieces` writes), without encoding the file a second time.
    """
    src = Path(src)
    stats = EncodeStats()
    table = enc.piece_table() if pieces_out is not None else []
    with enc:
        for first, chunk, ids in _encoded(enc, _chunks(src, chunk_lines, policy, stats, progress, enc)):
            lengths = np.fromiter(map(len, ids), dtype=np.int64, count=len(ids))
            n_pieces = int(lengths.sum())
            flat, unk = enc.to_fairseq(_flat(ids, lengths), lengths, first, src)
            stats.update(lengths, unk, max_line_tokens)
            sizes = lengths + 1
            out = np.full(n_pieces + len(ids), EOS, dtype=dtype)
            ends = np.cumsum(sizes)  # position after each line's eos
            is_piece = np.ones(len(out), dtype=bool)
            is_piece[ends - 1] = False
            out[is_piece] = flat
            if len(out):  # a running max over the chunk already in memory: no second pass over the .bin
                stats.max_id = max(stats.max_id, int(out.max()))
            bin_out.write(out.tobytes(order="C"))
            on_sizes(sizes)
            if pieces_out is not None:
                pieces_out.write(_piece_text(table, ids))
    _check_nonempty(src, stats)
    return stats
