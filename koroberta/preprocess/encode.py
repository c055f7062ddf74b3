"""Streaming encoders: piece text (for fairseq-preprocess) or fairseq ids (for the fused mmap writer).

Two tokenizers behind one interface, so the writers below never ask which one they hold:

* :class:`SpmEncoder` (a ``koroberta spm train`` vocab): fairseq id = spm id + OFFSET, spm ``<unk>`` -> UNK
  (:mod:`koroberta.layout`);
* :class:`HFEncoder` (a ``koroberta import-hf`` vocab, :mod:`koroberta.hfvocab`): fairseq id = HF id.

Each gives a batch call returning the tokenizer's own ids per line (no eos), a vectorised map of those ids to
fairseq ids that also counts unknowns, and a table spelling every id as fairseq's ``dict.txt`` does (the piece text
``fairseq-preprocess`` maps back to the same fairseq id).

Speed comes from each library's batch API: one Python call per chunk of ``chunk_lines`` lines, the native side
splits the batch over threads and returns results in input order. The per-line ``multiprocessing.Pool.imap
(EncodeAsPieces)`` recipe pays pickling + one Python call per line instead.

sentencepiece: what is serial. Its native encode runs without the GIL, but turning its result into Python lists
(one int object per piece) happens in the calling thread with the GIL held, and so does everything the writer then
does per piece (flatten, id map, piece text). With more threads only the native part shrinks: on 16 cores the
encode threads would wait on one core's worth of Python (bench/encode_scaling.py, bench/results/encode_scaling.md).
So with at least :data:`PROCESS_MIN_THREADS` threads and an input of at least :data:`PROCESS_MIN_BYTES`,
:class:`SpmEncoder` encodes in ``threads`` worker *processes*: each gets a chunk as one bytes object, encodes it
single-threaded and returns exactly what the writer appends -- the .bin bytes, the line lengths, the unknown
count, the largest id, the piece text if asked -- so per piece nothing is left on the main process; it reads,
checks and repairs lines (the reader of :mod:`koroberta.textfile`, whose errors and line numbers stay where they
were) and writes the results in input order. Otherwise (fewer threads; valid, test, a test's split) it encodes
in-process: one executor thread runs the same per-chunk function with ``num_threads=threads``. Both give the same
bytes (one function computes them; tests/preprocess/test_encode_parallel.py). Memory: ``2 x threads`` chunks in
flight with processes, plus each worker's interpreter (numpy, sentencepiece, the model); two chunks in-process.

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

import collections
import logging
import multiprocessing
import os
import re
import signal
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
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
# inputs from this size on are encoded in worker processes (module docstring): below it, starting the workers (and,
# once per process, their fork server) costs about what they save
PROCESS_MIN_BYTES = 16 << 20
# ... given this many threads: the process path spends more CPU in all (each worker also decodes and converts its
# chunk, and results travel), which on two cores costs more than the serial part it removes; from three on it wins
# (bench/results/encode_scaling.md)
PROCESS_MIN_THREADS = 3


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


def _lengths(ids: list[list[int]]) -> np.ndarray:
    return np.fromiter(map(len, ids), dtype=np.int64, count=len(ids))


@dataclass(frozen=True)
class _Want:
    """What a writer needs of each chunk: the .bin bytes in ``dtype`` (None: none), the piece text (``pieces``,
    spelled by ``table``)."""

    dtype: Any
    pieces: bool
    table: list[str]


@dataclass
class _Chunk:
    """One encoded chunk, as the writers append it (computed by an encoder's worker where it can be)."""

    lengths: np.ndarray  # pieces per line, no eos
    unk: int
    data: bytes | None  # fairseq ids, each line followed by its eos, as the .bin dtype
    max_id: int  # largest id in data (-1: no data)
    text: str | None  # piece text, one line per input line


def _with_eos(flat: np.ndarray, lengths: np.ndarray, dtype: Any) -> tuple[bytes, int]:
    """``flat`` fairseq ids as the .bin holds them (an eos after every line, as ``Dictionary.encode_line``
    appends it) and their largest id: a running max over the chunk already in memory, no second pass over the .bin."""
    sizes = lengths + 1
    out = np.full(int(sizes.sum()), EOS, dtype=dtype)
    is_piece = np.ones(len(out), dtype=bool)
    is_piece[np.cumsum(sizes) - 1] = False  # np.cumsum(sizes): the position after each line's eos
    out[is_piece] = flat
    return out.tobytes(order="C"), int(out.max()) if len(out) else -1


def _spm_chunk(sp: Any, table: list[str], lines: list[str], num_threads: int, dtype: Any, pieces: bool) -> _Chunk:
    """Encode one chunk with sentencepiece (fairseq id = spm id + OFFSET, ``<unk>`` -> UNK) into what the writers
    append. The one function both :class:`SpmEncoder` paths run, so the thread and the process path give the same
    bytes."""
    ids = sp.encode(lines, out_type=int, num_threads=num_threads)
    lengths = _lengths(ids)
    data, max_id = None, -1
    if dtype is not None:
        flat = _flat(ids, lengths)
        unk_mask = flat == SPM_UNK
        unk = int(unk_mask.sum())
        flat += OFFSET
        flat[unk_mask] = UNK
        data, max_id = _with_eos(flat, lengths, dtype)
    else:  # spm adds no bos/eos unless asked, so there is nothing to check; list.count runs in C, no array needed
        unk = sum(row.count(SPM_UNK) for row in ids)
    return _Chunk(lengths, unk, data, max_id, _piece_text(table, ids) if pieces else None)


_worker_state: dict[str, Any] = {}  # an spm worker process's processor and piece table


def _spm_worker_init(model_proto: bytes) -> None:
    """Worker processes ignore SIGINT: Ctrl-C reaches the whole process group, and only the parent should react
    (it stops submitting, waits for the chunks being encoded and the CLI prints one "interrupted" line) instead of
    every worker printing a KeyboardInterrupt traceback."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    import sentencepiece as spm

    _worker_state["sp"] = spm.SentencePieceProcessor(model_proto=model_proto)


def _spm_worker_chunk(data: bytes, n_lines: int, dtype: Any, pieces: bool) -> _Chunk:
    """One chunk in a worker process: ``data`` is its lines joined by newlines, as UTF-16 (one object to send; for
    Hangul, which CPython stores as 2-byte characters, encoding it is about a copy, a fraction of the UTF-8 encode
    on the main process, which the worker's sentencepiece then does in parallel)."""
    lines = data.decode("utf-16-le").split("\n")
    if len(lines) != n_lines:
        raise RuntimeError(f"a chunk of {n_lines} lines arrived as {len(lines)}")  # a line held "\n": a bug
    sp = _worker_state["sp"]
    if pieces and "table" not in _worker_state:
        _worker_state["table"] = piece_table(sp)
    return _spm_chunk(sp, _worker_state.get("table", []), lines, 1, dtype, pieces)


def _worker_context() -> Any:
    """forkserver where there is one: not a plain fork of this process, whose other threads (an encoder's, a
    progress bar's) a fork would copy mid-flight, and not spawn, which imports numpy and sentencepiece again in
    every worker of every pool. The server is one clean process, started once per process with this module
    imported (the preload applies only if nobody started it first; a worker then imports the module itself)."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload([__name__])
    return ctx


class SpmEncoder:
    """sentencepiece: fairseq id = spm id + OFFSET, spm's ``<unk>`` (id 0) -> UNK. Use as a context manager: it
    owns the thread, or for a large input with ``threads`` > 1 the ``threads`` worker processes, that encode ahead
    of the writer (module docstring). ``processes``: True/False forces either path (one thread: always
    in-process), None decides by the thread count and the input's size (:data:`PROCESS_MIN_THREADS`,
    :data:`PROCESS_MIN_BYTES`); the bytes are the same either way."""

    def __init__(self, sp: Any, threads: int = 1, *, processes: bool | None = None) -> None:
        self.sp, self.threads, self.processes = sp, max(1, threads), processes
        self._ex: ThreadPoolExecutor | None = None
        self._pool: ProcessPoolExecutor | None = None
        self._decided = False

    def __enter__(self) -> "SpmEncoder":
        self._ex = ThreadPoolExecutor(1, thread_name_prefix="spm-encode")
        self._decided = False
        return self

    def __exit__(self, *exc: object) -> None:
        # an error or Ctrl-C: chunks not started are dropped, those being encoded (one per worker) are waited for
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
        if self._ex is not None:
            self._ex.shutdown(cancel_futures=True)
            self._ex = None

    @property
    def ahead(self) -> int:
        """Chunks the writer may keep in flight: every worker process busy with one and holding the next."""
        return 2 * self.threads if self._pool is not None else 1

    def prepare(self, chunk: list[str], first_lineno: int, path: Path, policy: str, repairs: Repairs) -> list[str]:
        """The reader (:func:`koroberta.textfile.iter_line_chunks`) already handled what spm needs handled."""
        return chunk

    def _use_processes(self, path: Path) -> bool:
        if self.threads == 1 or self.processes is not None:
            return self.threads > 1 and bool(self.processes)
        return self.threads >= PROCESS_MIN_THREADS and path.stat().st_size >= PROCESS_MIN_BYTES

    def start(self, lines: list[str], first_lineno: int, path: Path, want: _Want) -> Callable[[], _Chunk]:
        """Start encoding one chunk (the first decides the path for the whole input); call the result for it."""
        assert self._ex is not None, "use the encoder as a context manager"
        if not self._decided:
            self._decided = True
            if self._use_processes(path):
                # the workers load the model from its bytes: the very model file's
                self._pool = ProcessPoolExecutor(self.threads, mp_context=_worker_context(),
                                                 initializer=_spm_worker_init,
                                                 initargs=(self.sp.serialized_model_proto(),))
        if self._pool is not None:
            data = "\n".join(lines).encode("utf-16-le")
            return self._pool.submit(_spm_worker_chunk, data, len(lines), want.dtype, want.pieces).result
        # sentencepiece releases the GIL inside its batch call, so the caller reads the next chunk meanwhile
        return self._ex.submit(_spm_chunk, self.sp, want.table, lines, self.threads, want.dtype, want.pieces).result

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

    ahead = 1  # chunks in flight while the next is read: each is already split over all threads

    def start(self, lines: list[str], first_lineno: int, path: Path, want: _Want) -> Callable[[], _Chunk]:
        """Start encoding one chunk; call the result for it (checked and mapped on the caller's thread)."""
        ids = self.submit(lines)
        return lambda: self._chunk(ids(), first_lineno, path, want)

    def _chunk(self, ids: list[list[int]], first_lineno: int, path: Path, want: _Want) -> _Chunk:
        lengths = _lengths(ids)
        data, max_id = None, -1
        if want.dtype is not None:
            flat, unk = self.to_fairseq(_flat(ids, lengths), lengths, first_lineno, path)
            data, max_id = _with_eos(flat, lengths, want.dtype)
        else:
            unk = self.count_unk(ids, lengths, first_lineno, path)
        return _Chunk(lengths, unk, data, max_id, _piece_text(want.table, ids) if want.pieces else None)

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


def _encoded(enc: Encoder, chunks: Iterator[tuple[int, list[str]]], path: Path,
             want: _Want) -> Iterator[_Chunk]:
    """Each chunk encoded, in input order, with up to ``enc.ahead`` later chunks already being encoded.

    Both libraries release the GIL inside their batch call, so reading/cleaning the next chunk and writing the
    previous one overlap with encoding. The results are taken in submission order, so the order never depends on
    which worker finishes first; a reader error (a bad line under ``bad_lines: error``) surfaces here, in the main
    thread, exactly as without the lookahead.
    """
    pending: collections.deque[Callable[[], _Chunk]] = collections.deque()
    for first, chunk in chunks:
        pending.append(enc.start(chunk, first, path, want))
        while len(pending) > enc.ahead:
            yield pending.popleft()()
    while pending:
        yield pending.popleft()()


def encode_pieces(enc: Encoder, src: str | Path, dst: str | Path, *, chunk_lines: int = 20000,
                  max_line_tokens: int = 1024, policy: str = "repair", progress: bool = False) -> EncodeStats:
    """Write ``src`` as piece text (pieces joined by " ", one line per input line, blank lines kept)."""
    src, dst = Path(src), Path(dst)
    stats = EncodeStats()
    # one batch call per chunk, as ids; pieces come from a table lookup. An unknown span is written as "<unk>"
    # (fairseq maps that symbol to UNK exactly as it would map the span's surface text, which is not in dict.txt),
    # so no character the tokenizer does not know can ever reach fairseq's whitespace tokenizer.
    want = _Want(None, True, enc.piece_table())
    with enc, open(dst, "w", encoding="utf-8", newline="\n") as out:
        for c in _encoded(enc, _chunks(src, chunk_lines, policy, stats, progress, enc), src, want):
            stats.update(c.lengths, c.unk, max_line_tokens)
            out.write(c.text)  # type: ignore[arg-type]
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
    want = _Want(dtype, pieces_out is not None, enc.piece_table() if pieces_out is not None else [])
    with enc:
        for c in _encoded(enc, _chunks(src, chunk_lines, policy, stats, progress, enc), src, want):
            stats.update(c.lengths, c.unk, max_line_tokens)
            stats.max_id = max(stats.max_id, c.max_id)
            bin_out.write(c.data)  # type: ignore[arg-type]
            on_sizes(c.lengths + 1)
            if pieces_out is not None:
                pieces_out.write(c.text)  # type: ignore[arg-type]
    _check_nonempty(src, stats)
    return stats
