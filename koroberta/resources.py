"""How much memory and disk each stage will need, from what is known before it runs (issue 24, item 5).

Each stage's first log line when it has work to do is ``<stage>: needs about 3.2 GB memory, 5.1 GB disk at peak,
2.0 GB kept (basis)`` (:func:`announce`), followed by a WARNING when the output's filesystem has less free space, or
the machine (or SLURM job, or container) less memory, than that. ``koroberta run`` logs the same for every stage as
its plan before the first one starts, and ``koroberta run --plan`` prints the plan and stops.

* memory: host memory (RSS) at the stage's peak, the largest of its steps, every worker process counted; GPU memory
  is not estimated;
* disk: the bytes the stage has written at its peak (temporary files included; an older output it replaces is not
  counted); kept: what is left of them when it ends.

Each estimator takes what exists before the stage runs: the sizes of its inputs on disk (a compressed source by the
size its container records, or its compressed size times a measured ratio) and its config. In a plan, where an input
does not exist yet, the upstream stage's estimate stands in for it (characters -> sentences, tokens -> bytes) and the
basis says so. Every coefficient is one named constant below, with the measurement it comes from: a file under
bench/results/ or a BENCHMARKS.md row (bench/results/resources.md is bench/resources_sizing.py's). They are
estimates: a warning, never an error.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import shutil
import struct
from pathlib import Path
from typing import Any, Mapping, Optional

# -- corpus: how much cleaned text a source holds ------------------------------------------------------------------
#: cleaned UTF-8 text per byte of a ``.xml.bz2`` dump, for a REAL kowiki dump: ~1 GB of bz2 holds ~400M characters
#: of article text (the published sizes issue 24 quotes), at 2.35 bytes per character (measured on the real kowiki
#: shard, bench/results/resources.md): 0.94. The dumps we can measure here hold real prose in SYNTHESIZED markup with
#: few redirects and give 2.88-2.97 (kowiki-sample.xml.bz2, the demo dump, a 20,000-page make_kowiki_dump.py dump;
#: bench/results/resources.md): used for them, the estimate errs 3x low; used for a real dump, 2.97 would err 3x high
DUMP_TEXT_PER_BZ2_BYTE = 0.94
#: the same per byte of uncompressed dump XML: 0.721, 0.741, 0.687 (the same three; bench/results/resources.md)
DUMP_TEXT_PER_XML_BYTE = 0.741
#: cleaned characters per character of raw wikitext in the pages the dump reader yields (before cleaning): 0.667,
#: 0.687, 0.656 (the same three); the smallest, for the most documents when a probe's page length is turned into a
#: document count
DUMP_CHARS_PER_RAW_CHAR = 0.656
#: cleaned UTF-8 text per byte of WikiExtractor output: 0.960 (bench/results/corpus_stage.md's extract of the real
#: shard kowiki-extracted-AA, 105,150,876 bytes -> 100,931,137; bench/results/resources.md): tags and short
#: documents dropped
WIKIEXTRACTOR_TEXT_PER_BYTE = 0.960
#: plain text, NSMC TSV, JSON Lines, Parquet and datasets text: cleaning only removes, so the source's own text is the
#: upper bound (measured: the NSMC reviews kept 0.97 of their characters, bench/results/corpus_stage.md)
TEXT_PER_BYTE = 1.0
#: decompressed bytes per compressed byte, when the container does not record its size (bz2 never does; a damaged
#: xz index, a gzip past 4 GiB): the real kowiki text shard under xz 3.99, bzip2 -9 3.85, gzip -6 2.83
#: (bench/results/resources.md)
DECOMPRESSION_RATIO = {"xz": 3.99, "bz2": 3.85, "gz": 2.83}
#: UTF-8 bytes per character of cleaned text: 2.35 (bench/results/corpus_stage.md's two-source corpus: 113,499,371
#: bytes, 48,201,017 characters; bench/results/resources.md); kowiki alone 2.26 (bench/results/corpus.md)
UTF8_BYTES_PER_CHAR = 2.35
#: characters per kss sentence: 57.4 for kowiki, 25.7 for the NSMC reviews (the corpus_stage.md corpus,
#: bench/results/resources.md): the wiki figure for dumps and WikiExtractor output, the short one for everything else
CHARS_PER_SENTENCE = {"wiki": 57.4, "other": 25.7}
#: a probe reads the start of a source (at most this many characters of page text or pages) before the estimate: the
#: documents' mean length, and the reader's early refusals (wrong dbname, a bad schema, a document without breaks)
#: fire before the needs line
PROBE_CHARS = 4_000_000
PROBE_PAGES = 5_000

# -- corpus: what its steps write, per byte of cleaned text (bench/results/resources.md, the corpus_stage.md corpus)
#: extract-*/docs.jsonl 1.122, clean/docs.jsonl 1.101, sentences/sentences.jsonl 1.148 (JSON quoting and ids),
#: split/{train,valid,test}.txt 1.003, split/hf/*.parquet 0.398 (compressed)
CORPUS_FILES_PER_TEXT_BYTE = {"extract": 1.122, "clean": 1.101, "sentences": 1.148, "split": 1.003, "parquet": 0.398}
#: several sources add excluded.jsonl (extract 0.020, clean 0.0023) and split/valid_<name>.txt (a second copy of
#: valid, 0.0044 at valid_fraction 0.005) per byte of cleaned text: the same run
CORPUS_MULTI_FILES_PER_TEXT_BYTE = {"extract": 0.020, "clean": 0.0023}

# -- corpus: memory (bench/results/corpus_stage.md, full size, 0d4fd8e: BENCHMARKS.md "corpus stage" row) --------
#: the main process before the dedup index: RSS at the clean step's start 102 MB
CORPUS_MAIN_BYTES = 102_000_000
#: an extract worker: largest worker RSS in the extract steps 42 MB
EXTRACT_WORKER_BYTES = 42_000_000
#: a kss sentence worker (or the main process running kss itself with one worker): largest worker peak 452 MB
KSS_WORKER_BYTES = 452_000_000
#: the main process through the sentence step, besides its workers: 114 MB
SENTENCE_MAIN_BYTES = 114_000_000
#: the split step: peak 260 MB on 934,100 sentences, +40 bytes per added sentence (BENCHMARKS.md "corpus split
#: step" row)
SPLIT_PEAK_BYTES, SPLIT_PEAK_SENTENCES, SPLIT_BYTES_PER_SENTENCE = 260_000_000, 934_100, 40

# -- spm ---------------------------------------------------------------------------------------------------------------
#: spm.model + spm.vocab + dict.txt: 210 KB (the normaliser's tables) + 55.8 bytes per vocabulary row, the line through
#: a 2,008-row (322,010 bytes) and a 32,008-row vocab (1,994,632; bench/results/resources.md)
SPM_FIXED_BYTES, SPM_BYTES_PER_ROW = 210_056, 55.8

# -- preprocess --------------------------------------------------------------------------------------------------------
#: characters per token (each line's </s> included): 1.94 with an 8k spm vocab on real kowiki (BENCHMARKS.md,
#: "Quality": 10.3M train tokens); a 32k vocab cuts text into fewer pieces: 2.27 on 20 MB of kowiki, 2.01 on the
#: corpus_stage.md corpus (kowiki + reviews; bench/results/resources.md), an imported 32k WordPiece into fewer still
#: (bench/results/preprocess_hf.json). The smallest figure, for the most tokens
CHARS_PER_TOKEN = 1.94
#: piece text (method fairseq's temporary files, keep_encoded's kept ones) per byte of text: 1.38 (the corpus_stage.md
#: corpus's train.txt, 32k vocab; bench/results/resources.md)
PIECE_TEXT_PER_TEXT_BYTE = 1.38
#: a fairseq mmap .idx: a 34-byte header, then an int32 size and an int64 pointer per line (koroberta.databin)
IDX_HEADER_BYTES, IDX_BYTES_PER_LINE = 34, 12
#: the preprocess process on the corpus_stage.md corpus (1.09M lines): peak RSS 200.9 / 212.2 / 253.6 MiB at 5,000 /
#: 20,000 / 80,000-line chunks (2 workers; 1 worker at 20,000: the same 212.2): 207 MB + 737 bytes per chunk line
#: (bench/results/resources.md)
PREPROCESS_BASE_BYTES, PREPROCESS_BYTES_PER_CHUNK_LINE = 207_000_000, 737
#: one spm encode worker process (3+ workers on a large split, koroberta/preprocess/encode.py): peak RSS 73 MB with a
#: 16k model (bench/results/encode_scaling.md); each also holds up to two chunks in flight, counted per chunk line
PREPROCESS_WORKER_BYTES = 73_000_000
#: each train line's size is kept (int64) until the .idx is written (koroberta.preprocess.build)
PREPROCESS_BYTES_PER_TRAIN_LINE = 8

# -- train --------------------------------------------------------------------------------------------------------------
#: one fairseq-train process on CPU, tiny model (2 layers, 128 wide, 32k vocab), 8 x 512 tokens, its first 20 updates
#: on the real kowiki shard's data-bin: peak RSS 1,340 / 1,369 MiB on the quarter / full shard (bench/results/sizing.md;
#: 934 MB with 4 x 512 tokens in bench/results/train.md): the larger, 1,435 MB
TRAIN_PROCESS_BYTES = 1_435_000_000
#: fp32 weights, gradients and Adam's two moments, per parameter, where training runs on the CPU; on a GPU they live
#: in GPU memory and the host holds at most a checkpoint being loaded (train.preflight.CHECKPOINT_BYTES_PER_PARAM)
TRAIN_HOST_BYTES_PER_PARAM_CPU = 16
#: fairseq's dataset index per line of the train split it loads (one shard when sharded): the .idx's int32 size and
#: int64 pointer, and the int64 copy of the sizes TokenBlockDataset cuts blocks from (fairseq 0.12
#: data/token_block_dataset.py); per block 5 int64 (slice_indices, block_to_dataset_index)
TRAIN_INDEX_BYTES_PER_LINE, TRAIN_INDEX_BYTES_PER_BLOCK = 20, 40

# -- import-hf, convert, finetune -------------------------------------------------------------------------------------
#: a fresh interpreter after importing torch, fairseq's RoBERTa and transformers: peak RSS 499.6 MiB = 524 MB; torch
#: and transformers alone: 367.3 MiB = 385 MB (bench/results/resources.md)
TORCH_FAIRSEQ_HF_BYTES, TORCH_HF_BYTES = 524_000_000, 385_000_000
#: copies of the fp32 weights import-hf holds at once: the safetensors read, the fairseq state dict made from it, the
#: HF model and the fairseq model of the parity check (koroberta/importhf/build.py)
IMPORT_MODEL_COPIES = 4
#: copies of the fp32 weights convert holds besides the checkpoint it read: the HF state dict, the HF model, the
#: fairseq model of the parity check (koroberta/convert/export.py)
CONVERT_MODEL_COPIES = 3
#: fine-tuning: fp32 weights, gradients and AdamW's two moments per parameter (torch.optim.AdamW), activations not
#: counted (koroberta/eval/loop.py)
FINETUNE_BYTES_PER_PARAM = 16
#: the exported tokenizer files (tokenizer.json, its configs, spm.model): 544 KB + 78.1 bytes per vocabulary row, the
#: line through the same two vocabs (700,637 and 3,043,227 bytes; bench/results/resources.md)
TOKENIZER_FIXED_BYTES, TOKENIZER_BYTES_PER_ROW = 543_840, 78.1

#: inputs larger than this are not hashed for a plan (their content is checked when the stage runs)
PLAN_HASH_LIMIT = 1 << 30


# -- the result -----------------------------------------------------------------------------------------------------
def fmt_bytes(n: float) -> str:
    """``3.2 GB``, ``450 MB``, ``12 KB`` (decimal units, as the needs lines and dedup messages print them)."""
    for unit, size in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
        if n >= size:
            return f"{n / size:.1f} {unit}" if n < 100 * size else f"{n / size:,.0f} {unit}"
    return f"{int(n)} bytes"


def fmt_count(n: float) -> str:
    """``1.2M``, ``56k``, ``830``: an estimated count, to two significant digits or so."""
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= size:
            return f"{n / size:.1f}{unit}" if n < 10 * size else f"{n / size:.0f}{unit}"
    return f"{int(n)}"


@dataclasses.dataclass(frozen=True)
class Needs:
    """What one stage needs: peak host memory, peak bytes written, bytes kept at its end, and what that was
    computed from."""

    memory: int
    disk: int
    kept: int
    basis: str

    def describe(self) -> str:
        return (f"needs about {fmt_bytes(self.memory)} memory, {fmt_bytes(self.disk)} disk at peak, "
                f"{fmt_bytes(self.kept)} kept")

    def line(self, stage: str) -> str:
        return f"{stage}: {self.describe()} ({self.basis})"


@dataclasses.dataclass(frozen=True)
class Text:
    """What a text holds -- the corpus's cleaned text, a split -- measured or estimated (``estimated``)."""

    chars: int
    sentences: int
    documents: int
    estimated: bool = False

    @property
    def bytes(self) -> int:
        return int(self.chars * UTF8_BYTES_PER_CHAR)

    @property
    def lines(self) -> int:
        """Lines of the split text: a sentence per line and a blank line between documents."""
        return self.sentences + max(0, self.documents - 1)

    @property
    def tokens(self) -> int:
        return int(self.chars / CHARS_PER_TOKEN)

    def scaled(self, f: float) -> "Text":
        return Text(int(self.chars * f), int(self.sentences * f), int(self.documents * f), self.estimated)


def existing_ancestor(path: str | Path) -> Path:
    p = Path(path).absolute()
    while not p.exists() and p != p.parent:
        p = p.parent
    return p


def warnings_for(stage: str, needs: Needs, out: str | Path) -> list[str]:
    """The WARNING lines for ``needs``: less free space on ``out``'s filesystem than the disk need, less memory
    (:func:`koroberta.corpus.steps.memory_limit`: RAM, or the cgroup limit of a job or container) than the memory
    need."""
    from koroberta.corpus.steps import memory_limit

    out_ = []
    where = existing_ancestor(out)
    free = shutil.disk_usage(where).free
    if needs.disk > free:
        out_.append(f"{stage}: {fmt_bytes(free)} free on the filesystem of {where}, less than the ~"
                    f"{fmt_bytes(needs.disk)} this stage writes at its peak (an estimate); free space or write the "
                    "output elsewhere")
    limit = memory_limit()
    if limit and needs.memory > limit:
        out_.append(f"{stage}: the estimated peak of ~{fmt_bytes(needs.memory)} memory is more than the "
                    f"{fmt_bytes(limit)} this machine or job may use; use fewer workers or more memory")
    return out_


def announce(logger: logging.Logger, stage: str, needs: Needs, out: str | Path) -> None:
    """The stage's needs line, then a WARNING for each shortfall (:func:`warnings_for`)."""
    logger.info("%s", needs.line(stage))
    for w in warnings_for(stage, needs, out):
        logger.warning("%s", w)


# -- sizes on disk --------------------------------------------------------------------------------------------------
def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    """An xz multibyte integer at ``pos``: (value, next position)."""
    value = shift = 0
    for i in range(9):
        b = buf[pos + i]
        value |= (b & 0x7F) << shift
        if not b & 0x80:
            return value, pos + i + 1
        shift += 7
    raise ValueError("xz varint too long")


def xz_size(path: str | Path) -> int | None:
    """The decompressed size of an ``.xz`` file, read from the index at the end of each stream (a few reads, no
    decompression); None where the file is not a well-formed xz container (then a ratio stands in)."""
    try:
        with open(path, "rb") as f:
            end = f.seek(0, 2)
            total = 0
            while end > 0:
                f.seek(end - 4)
                while end >= 4 and f.read(4) == b"\0\0\0\0":  # stream padding between or after streams
                    end -= 4
                    f.seek(end - 4)
                if end < 24:
                    return None
                f.seek(end - 12)
                footer = f.read(12)
                if footer[10:] != b"YZ":
                    return None
                index_size = (struct.unpack("<I", footer[4:8])[0] + 1) * 4
                f.seek(end - 12 - index_size)
                index = f.read(index_size)
                if not index or index[0] != 0:
                    return None
                count, pos = _varint(index, 1)
                blocks = 0
                for _ in range(count):
                    unpadded, pos = _varint(index, pos)
                    size, pos = _varint(index, pos)
                    total += size
                    blocks += (unpadded + 3) // 4 * 4
                end = end - 12 - index_size - blocks - 12  # where the stream's header starts
                if end < 0:
                    return None
            return total
    except (OSError, ValueError, IndexError, struct.error):
        return None


def gzip_size(path: str | Path) -> int | None:
    """The decompressed size of a gzip file from its trailer (ISIZE, the size modulo 2^32): of the sizes it allows,
    the one nearest the compressed size times the measured ratio (exact below 4 GiB); None for a file too short to
    be gzip. A file of several members records its last member's size only: the ratio stands in where that is
    smaller than the file."""
    p = Path(path)
    size = p.stat().st_size
    if size < 18:
        return None
    with open(p, "rb") as f:
        f.seek(-4, 2)
        isize = struct.unpack("<I", f.read(4))[0]
    wraps = max(0, round((size * DECOMPRESSION_RATIO["gz"] - isize) / 2 ** 32))
    n = isize + wraps * 2 ** 32
    return n if n >= size else None


def decompressed_size(path: Path) -> tuple[int, str]:
    """(bytes, how they were found) of ``path`` once decompressed."""
    from koroberta.corpus.sources import compression_of

    size = path.stat().st_size
    kind = compression_of(path)
    if kind is None:
        return size, ""
    exact = xz_size(path) if kind == "xz" else gzip_size(path) if kind == "gz" else None
    if exact is not None:
        return exact, f"{kind} {fmt_bytes(size)}, size from its {'index' if kind == 'xz' else 'trailer'}"
    r = DECOMPRESSION_RATIO[kind]
    return int(size * r), f"{kind} {fmt_bytes(size)} x {r}"


def _files(source: Path) -> list[Path]:
    from koroberta.corpus.sources import list_dir_files

    return list_dir_files(source) if source.is_dir() else [source]


def _is_parquet(path: Path) -> bool:
    with open(path, "rb") as f:
        return f.read(4) == b"PAR1"


def _parquet_text_bytes(files: list[Path]) -> int:
    """Uncompressed bytes of the ``text`` column of Parquet files, from their footers (no data read)."""
    import pyarrow.parquet as pq

    total = 0
    for f in files:
        meta = pq.ParquetFile(f).metadata
        for g in range(meta.num_row_groups):
            rg = meta.row_group(g)
            for c in range(rg.num_columns):
                col = rg.column(c)
                if col.path_in_schema.split(".")[0] == "text":
                    total += col.total_uncompressed_size
    return total


@dataclasses.dataclass(frozen=True)
class Probe:
    """The start of a source as the extract step's reader yields it: pages it would clean, their characters and
    UTF-8 bytes."""

    pages: int
    chars: int
    bytes: int

    @property
    def chars_per_page(self) -> float:
        return self.chars / self.pages if self.pages else 0.0

    @property
    def bytes_per_char(self) -> float:
        return self.bytes / self.chars if self.chars else UTF8_BYTES_PER_CHAR


def probe_source(source: Path, cfg: Any, documents: str) -> Probe:
    """Read the start of ``source`` (:data:`PROBE_CHARS` characters or :data:`PROBE_PAGES` pages) as the extract step
    will: after the same encoding check, with the same reader options, so whatever the reader refuses at its start is
    refused here, before any line is logged, with the extract step's own one-line error."""
    from koroberta.corpus.sources import ReadStats, check_source_encoding, iter_source

    check_source_encoding(source, cfg.encoding)
    pages = chars = nbytes = 0
    it = iter_source(source, ReadStats(), dbname=cfg.dbname, encoding=cfg.encoding, documents=documents)
    try:
        for p in it:
            if p.ns != 0 or p.redirect or not p.text or p.text.isspace():
                continue
            pages += 1
            chars += len(p.text)
            nbytes += len(p.text.encode("utf-8", "surrogatepass"))
            if chars >= PROBE_CHARS or pages >= PROBE_PAGES:
                break
    finally:
        close = getattr(it, "close", None)
        if close is not None:
            close()
    return Probe(pages, chars, nbytes)


@dataclasses.dataclass(frozen=True)
class SourceText:
    """A source's estimated cleaned text, and how the estimate was made."""

    text: Text
    wiki: bool  # a dump or WikiExtractor output (wiki sentence lengths)
    how: str


def source_text(source: str | Path, cfg: Any, documents: str = "blank") -> SourceText:
    """The cleaned text the extract step will make of ``source`` (``cfg``: the corpus config), estimated from its
    size on disk and a :func:`probe_source` of its start (the documents' mean length)."""
    from koroberta.corpus.sources import compression_of, detect_format
    from koroberta.encoding import is_utf8

    src = Path(source)
    probe = probe_source(src, cfg, documents)  # first: the encoding check, as the extract step does it
    kind = detect_format(src) if is_utf8(cfg.encoding) else "text"  # another codec: text or WikiExtractor output
    wiki = kind in ("dump", "wikiextractor")
    files = _files(src)
    if kind == "dump":
        f = files[0]
        comp = compression_of(f)
        if comp == "bz2":
            nbytes = int(f.stat().st_size * DUMP_TEXT_PER_BZ2_BYTE)
            how = f"dump {fmt_bytes(f.stat().st_size)} bz2 x {DUMP_TEXT_PER_BZ2_BYTE} (a real kowiki dump's ratio)"
        else:
            xml, found = decompressed_size(f)
            nbytes = int(xml * DUMP_TEXT_PER_XML_BYTE)
            how = f"dump {fmt_bytes(xml)} XML{' (' + found + ')' if found else ''} x {DUMP_TEXT_PER_XML_BYTE}"
        chars = int(nbytes / UTF8_BYTES_PER_CHAR)
        per_doc = probe.chars_per_page * DUMP_CHARS_PER_RAW_CHAR
    else:
        if kind == "parquet":  # a dataset repo's other files (README.md) are not read
            raw, how = _parquet_text_bytes([f for f in files if f.suffix == ".parquet" or _is_parquet(f)]), \
                "Parquet text column"
        elif kind == "jsonl":
            raw = sum(f.stat().st_size for f in files if f.suffix in (".jsonl", ".json", ".ndjson"))
            how = f"JSON Lines {fmt_bytes(raw)}"
        elif kind == "hf_disk":
            raw, how = sum(p.stat().st_size for p in src.rglob("*.arrow")), "Arrow files"
        else:
            sizes = [decompressed_size(f) for f in files]
            raw = sum(n for n, _ in sizes)
            found = sorted({h.split(" ", 1)[0] for _, h in sizes if h})
            how = f"{kind} {fmt_bytes(raw)}" + (f" decompressed ({', '.join(found)})" if found else "")
        ratio = WIKIEXTRACTOR_TEXT_PER_BYTE if kind == "wikiextractor" else TEXT_PER_BYTE
        nbytes = int(raw * ratio)
        how += f" x {ratio}" if ratio != 1 else ""
        chars = int(nbytes / probe.bytes_per_char)
        per_doc = probe.chars_per_page
    docs = math.ceil(chars / per_doc) if per_doc else 0
    sentences = math.ceil(chars / CHARS_PER_SENTENCE["wiki" if wiki else "other"])
    return SourceText(Text(chars, sentences, docs, estimated=True), wiki, how)


# -- corpus ---------------------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class CorpusEstimate:
    needs: Needs
    text: Text   # every document once, after the extract step
    split: Text  # what split/*.txt hold (train documents written by their source's weight)
    train: Text  # split/train.txt


def dedup_index_bytes(cfg: Any, documents: int) -> int:
    """The merge's dedup indexes for ``documents`` (koroberta.corpus.steps.check_dedup_memory's estimate)."""
    from koroberta.corpus.dedup import EXACT_BYTES_PER_DOC, NEAR_BYTES_PER_DOC

    return documents * ((EXACT_BYTES_PER_DOC if cfg.dedup else 0) + (NEAR_BYTES_PER_DOC if cfg.near_dedup_on else 0))


def corpus_needs(cfg: Any, sources: Mapping[str, str | Path], workers: int) -> CorpusEstimate:
    """The corpus stage (``cfg``: its config; ``sources``: name -> path, one entry ``{"source": path}`` for a single
    source) with ``workers`` processes."""
    texts, hows = [], []
    split_f = cfg.valid_fraction + cfg.test_fraction
    for name, path in sources.items():
        documents = cfg.source_spec(name)["documents"] if cfg.sources else cfg.documents
        st = source_text(path, cfg, documents)
        weight = cfg.source_spec(name)["weight"] if cfg.sources else 1.0
        texts.append((st, weight))
        hows.append(st.how)
    total = Text(sum(t.text.chars for t, _ in texts), sum(t.text.sentences for t, _ in texts),
                 sum(t.text.documents for t, _ in texts), estimated=True)
    split = Text(*(sum(int(getattr(t.text, k) * (split_f + (1 - split_f) * w)) for t, w in texts)
                   for k in ("chars", "sentences", "documents")), estimated=True)
    train = Text(*(sum(int(getattr(t.text, k) * (1 - split_f) * w) for t, w in texts)
                   for k in ("chars", "sentences", "documents")), estimated=True)
    t_bytes, s_bytes = total.bytes, split.bytes
    f = CORPUS_FILES_PER_TEXT_BYTE
    multi = bool(cfg.sources)
    m = CORPUS_MULTI_FILES_PER_TEXT_BYTE if multi else {}
    kept = s_bytes * (f["split"] + f["parquet"]) + (total.bytes * cfg.valid_fraction if multi else 0)
    inter = t_bytes * (f["extract"] + f["clean"] + f["sentences"] + m.get("extract", 0) + m.get("clean", 0))
    disk = inter + kept
    if getattr(cfg, "keep_intermediates", False):
        kept = disk
    index = dedup_index_bytes(cfg, total.documents)
    w = max(1, workers)
    steps = {"extract": CORPUS_MAIN_BYTES + (w * EXTRACT_WORKER_BYTES if w > 1 else 0),
             "clean": CORPUS_MAIN_BYTES + index,
             "sentences": SENTENCE_MAIN_BYTES + w * KSS_WORKER_BYTES,
             "split": SPLIT_PEAK_BYTES + SPLIT_BYTES_PER_SENTENCE * (total.sentences - SPLIT_PEAK_SENTENCES)}
    peak_step = max(steps, key=steps.__getitem__)
    basis = (f"~{fmt_bytes(t_bytes)} of cleaned text, ~{fmt_count(total.documents)} documents, "
             f"~{fmt_count(total.sentences)} sentences, estimated from {'; '.join(hows)}; peak in the {peak_step} "
             "step" + (f": {w} kss worker{'s' if w > 1 else ''} x {fmt_bytes(KSS_WORKER_BYTES)}"
                       if peak_step == "sentences" else f": dedup index {fmt_bytes(index)}" if peak_step == "clean"
                       else ""))
    return CorpusEstimate(Needs(int(steps[peak_step]), int(disk), int(kept), basis), total, split, train)


def extract_needs(cfg: Any, sources: Mapping[str, str | Path], workers: int, num_shards: int = 1) -> Needs:
    """One extract task of a SLURM array (shard ``i`` of ``num_shards`` of every source): its docs.jsonl files kept
    for the clean step."""
    texts = [source_text(p, cfg, cfg.source_spec(n)["documents"] if cfg.sources else cfg.documents)
             for n, p in sources.items()]
    text_bytes = sum(t.text.bytes for t in texts) / max(1, num_shards)
    ratio = CORPUS_FILES_PER_TEXT_BYTE["extract"] + (CORPUS_MULTI_FILES_PER_TEXT_BYTE["extract"] if cfg.sources else 0)
    w = max(1, workers)
    disk = int(text_bytes * ratio)
    return Needs(CORPUS_MAIN_BYTES + (w * EXTRACT_WORKER_BYTES if w > 1 else 0), disk, disk,
                 f"~{fmt_bytes(text_bytes)} of cleaned text in this shard of {num_shards}, estimated from "
                 f"{'; '.join(t.how for t in texts)}")


def corpus_step_needs(cfg: Any, step: str, out: Path, *, workers: int = 1, num_shards: int = 1) -> Needs | None:
    """One corpus step run on its own (``koroberta corpus clean|sentences|split``: a SLURM array's merge and kss
    tasks), from the manifests of the steps before it in ``out``; None where they are missing (the step says
    what is). ``num_shards``: the sentence step's shards (each task one of them)."""
    from koroberta.artifacts import read_manifest

    def stats(d: Path) -> dict:
        return (read_manifest(d) or {}).get("stats", {})

    f, m = CORPUS_FILES_PER_TEXT_BYTE, CORPUS_MULTI_FILES_PER_TEXT_BYTE if cfg.sources else {}
    if step == "clean":
        dirs = [d for d in sorted(out.glob("extract*")) if read_manifest(d) is not None]
        if not dirs:
            return None
        docs = sum(int(stats(d).get("documents") or 0) for d in dirs)
        text = sum(int(stats(d).get("characters") or 0) for d in dirs) * UTF8_BYTES_PER_CHAR
        index = dedup_index_bytes(cfg, docs)
        disk = text * (f["clean"] + m.get("clean", 0))
        return Needs(int(CORPUS_MAIN_BYTES + index), int(disk), int(disk),
                     f"{docs:,} extracted documents, ~{fmt_bytes(text)} of text; dedup index {fmt_bytes(index)}")
    clean = stats(out / "clean")
    if "characters" not in clean:
        return None
    text = int(clean["characters"]) * UTF8_BYTES_PER_CHAR
    if step == "sentences":
        w = max(1, workers)
        disk = text / max(1, num_shards) * f["sentences"]
        return Needs(int(SENTENCE_MAIN_BYTES + w * KSS_WORKER_BYTES), int(disk), int(disk),
                     f"~{fmt_bytes(text)} of text in clean/, shard of {num_shards}; {w} kss "
                     f"worker{'s' if w > 1 else ''} x {fmt_bytes(KSS_WORKER_BYTES)}")
    sentences = sum(int(stats(d).get("sentences") or 0) for d in out.glob("sentences*"))
    disk = text * (f["split"] + f["parquet"])
    return Needs(int(SPLIT_PEAK_BYTES + SPLIT_BYTES_PER_SENTENCE * (sentences - SPLIT_PEAK_SENTENCES)), int(disk),
                 int(disk), f"{sentences:,} sentences, ~{fmt_bytes(text)} of text in clean/ (weights not counted)")


def split_text(split_dir: Path, names: tuple[str, ...] = ("train", "valid", "test")) -> Text | None:
    """What the corpus split ``split_dir`` holds, from its manifest (None without one)."""
    from koroberta.artifacts import read_manifest

    m = read_manifest(split_dir)
    if not m or not isinstance(m.get("stats", {}).get("characters"), dict):
        return None
    st = m["stats"]
    return Text(*(sum(int((st.get(k) or {}).get(s) or 0) for s in names) for k in ("characters", "sentences",
                                                                                    "documents")))


def count_text(paths: list[Path]) -> Text:
    """A split's text without a manifest (one made by hand): its newlines and blank lines counted in 4 MB reads
    (a blank line split across two reads is missed: an estimate), characters from the bytes."""
    chars = sentences = documents = 0
    for p in paths:
        if not p.is_file():
            continue
        lines = blank = 0
        with open(p, "rb") as f:
            while chunk := f.read(1 << 22):
                lines += chunk.count(b"\n")
                blank += chunk.count(b"\n\n")
        chars += int(p.stat().st_size / UTF8_BYTES_PER_CHAR)
        sentences += lines - blank
        documents += blank + 1 if lines else 0
    return Text(chars, sentences, documents)


# -- spm ----------------------------------------------------------------------------------------------------------------
def vocab_rows(spm_cfg: Any) -> int:
    """fairseq/HF rows of the vocabulary ``spm_cfg`` makes: the pieces, <pad> and <mask>, padded to ``pad_to``."""
    from koroberta.layout import n_fillers

    return spm_cfg.vocab_size + 2 + n_fillers(spm_cfg.vocab_size, spm_cfg.pad_to)


def spm_files_bytes(rows: int) -> int:
    return int(SPM_FIXED_BYTES + SPM_BYTES_PER_ROW * rows)


def tokenizer_files_bytes(rows: int) -> int:
    return int(TOKENIZER_FIXED_BYTES + TOKENIZER_BYTES_PER_ROW * rows)


def spm_needs(cfg: Any, sentences: int, *, estimated: bool = False) -> Needs:
    """The spm stage on a train split of ``sentences`` non-blank lines."""
    from koroberta.spm.train import estimate_peak_bytes

    n = cfg.input_sentence_size
    used = min(n, sentences) if n else sentences
    size = spm_files_bytes(vocab_rows(cfg))
    what = f"{'~' if estimated else ''}{fmt_count(used)} sentences" + (" (estimated from the corpus estimate)"
                                                                       if estimated else "")
    return Needs(estimate_peak_bytes(used), size, size,
                 f"the trainer's fit in BENCHMARKS.md for {what}; {vocab_rows(cfg):,} vocabulary rows")


# -- preprocess -----------------------------------------------------------------------------------------------------
def preprocess_needs(cfg: Any, text: Text, train: Text, *, rows: int, vocab_bytes: int = 0,
                     workers: int = 1) -> Needs:
    """The preprocess stage on splits holding ``text`` (``train``: train.txt alone) with a vocabulary of ``rows``
    rows; ``vocab_bytes``: the tokenizer files it copies into the data-bin. The encoding threads share one process:
    their count did not show in its peak (bench/results/resources.md), the chunk size did."""
    from koroberta.databin import best_fitting_int_dtype
    import numpy as np

    item = np.dtype(best_fitting_int_dtype(rows - 1)).itemsize  # dict.txt without <mask> decides the dtype
    data = text.tokens * item + text.lines * IDX_BYTES_PER_LINE + IDX_HEADER_BYTES * (3 + cfg.shards)
    pieces = int(text.bytes * PIECE_TEXT_PER_TEXT_BYTE)
    kept = data + vocab_bytes + (pieces if cfg.keep_encoded else 0)
    disk = kept + (pieces if cfg.method == "fairseq" and not cfg.keep_encoded else 0)
    memory = (PREPROCESS_BASE_BYTES + PREPROCESS_BYTES_PER_CHUNK_LINE * cfg.chunk_lines
              + PREPROCESS_BYTES_PER_TRAIN_LINE * train.lines)
    from koroberta.preprocess.encode import PROCESS_MIN_BYTES, PROCESS_MIN_THREADS

    if workers >= PROCESS_MIN_THREADS and train.bytes >= PROCESS_MIN_BYTES:  # encoded in worker processes
        memory += workers * (PREPROCESS_WORKER_BYTES + 2 * PREPROCESS_BYTES_PER_CHUNK_LINE * cfg.chunk_lines)
    src = "estimated from the corpus estimate" if text.estimated else "from the split"
    basis = (f"~{fmt_count(text.tokens)} tokens of {item} bytes at {CHARS_PER_TOKEN} characters per token, "
             f"{fmt_count(text.lines)} lines, {src}; chunks of {cfg.chunk_lines:,} lines")
    return Needs(int(memory), int(disk), int(kept), basis)


# -- train ----------------------------------------------------------------------------------------------------------
def checkpoint_files(cfg: Any) -> int:
    """Checkpoint files a run keeps at once: the last keep_interval_updates (10 where all are kept, as preflight
    counts), checkpoint_last, checkpoint_best, the one being written."""
    return (cfg.keep_interval_updates if cfg.keep_interval_updates > 0 else 10) + 3


def model_params(cfg: Any, rows: int) -> int:
    """Parameters of fairseq's RobertaModel for the train config ``cfg`` and ``rows`` vocabulary rows."""
    from koroberta.train.flops import shape_from_config

    return shape_from_config(cfg, rows).params_total


def train_needs(cfg: Any, *, rows: int, train_lines: int, train_tokens: int, shards: int = 1,
                estimated: bool = False, cuda: Optional[bool] = None) -> Needs:
    """The train stage, per node: ``cfg.ngpus`` fairseq-train processes, each holding the dataset index of one train
    shard; ``cuda`` None: as the config says (``device: auto`` counts the CPU case, the larger)."""
    from koroberta.train.preflight import CHECKPOINT_BYTES_PER_PARAM

    params = model_params(cfg, rows)
    ckpt = params * CHECKPOINT_BYTES_PER_PARAM + (1 << 20)
    n = checkpoint_files(cfg)
    lines, tokens = train_lines / max(1, shards), train_tokens / max(1, shards)
    index = lines * TRAIN_INDEX_BYTES_PER_LINE + tokens / cfg.tokens_per_sample * TRAIN_INDEX_BYTES_PER_BLOCK
    on_gpu = cfg.device == "cuda" if cuda is None else cuda
    model = params * (CHECKPOINT_BYTES_PER_PARAM if on_gpu else TRAIN_HOST_BYTES_PER_PARAM_CPU)
    procs = cfg.ngpus
    memory = procs * (TRAIN_PROCESS_BYTES + index + model)
    src = "estimated from the corpus estimate" if estimated else "from the data-bin"
    basis = (f"{params:,} parameters x {CHECKPOINT_BYTES_PER_PARAM} bytes per checkpoint, {n} checkpoint files; "
             f"{procs} process{'es' if procs > 1 else ''} per node, each with the index of "
             f"~{fmt_count(lines)} train lines ({src}) and the model {'on the GPU' if on_gpu else 'in host memory'};"
             " GPU memory not estimated")
    return Needs(int(memory), int(n * ckpt), int(n * ckpt), basis)


# -- import-hf, convert, finetune ---------------------------------------------------------------------------------------
def safetensors_params(path: Path) -> int | None:
    """Parameters in a safetensors file, from its JSON header (no tensor read); None when it is not one."""
    try:
        with open(path, "rb") as f:
            (n,) = struct.unpack("<Q", f.read(8))
            if n > 100 << 20:
                return None
            header = json.loads(f.read(n))
    except (OSError, ValueError, struct.error):
        return None
    return sum(math.prod(v["shape"]) for k, v in header.items() if k != "__metadata__" and isinstance(v, dict))


def _dir_bytes(d: Path, skip: tuple[str, ...] = ()) -> int:
    return sum(p.stat().st_size for p in d.rglob("*") if p.is_file() and p.name not in skip)


def model_files_bytes(model_dir: Path) -> int:
    """The files of an HF model directory besides its weights (tokenizer, config): what a saved copy adds."""
    return _dir_bytes(model_dir, skip=("model.safetensors", "pytorch_model.bin", "README.md"))


def hf_params(hf_dir: Path) -> tuple[int, str]:
    """(parameters, how) of the HF model in ``hf_dir``: from model.safetensors' header, else from the weights' size
    at 4 bytes a parameter."""
    st = hf_dir / "model.safetensors"
    n = safetensors_params(st) if st.is_file() else None
    if n is not None:
        return n, "model.safetensors"
    weights = [hf_dir / w for w in ("model.safetensors", "pytorch_model.bin") if (hf_dir / w).is_file()]
    return (weights[0].stat().st_size // 4 if weights else 0), "the weights' size / 4"


def importhf_needs(hf_dir: Path) -> Needs:
    """import-hf of the model in ``hf_dir``: a fairseq checkpoint of its fp32 weights and its tokenizer files."""
    params, how = hf_params(hf_dir)
    disk = params * 4 + model_files_bytes(hf_dir)
    return Needs(int(TORCH_FAIRSEQ_HF_BYTES + IMPORT_MODEL_COPIES * 4 * params), int(disk), int(disk),
                 f"{params:,} parameters ({how}) in fp32, {IMPORT_MODEL_COPIES} copies at once")


def convert_needs(cfg: Any, *, params: int, checkpoint_bytes: int, rows: int, estimated: bool = False) -> Needs:
    """convert of a checkpoint of ``checkpoint_bytes`` holding ``params`` parameters, ``rows`` vocabulary rows."""
    weight = 2 if getattr(cfg, "dtype", "fp32") == "fp16" else 4
    disk = params * weight + tokenizer_files_bytes(rows)
    memory = TORCH_FAIRSEQ_HF_BYTES + checkpoint_bytes + CONVERT_MODEL_COPIES * 4 * params
    src = "estimated from the train config" if estimated else "from the checkpoint"
    return Needs(int(memory), int(disk), int(disk),
                 f"{params:,} parameters {src}, the checkpoint ({fmt_bytes(checkpoint_bytes)}) read whole, "
                 f"{CONVERT_MODEL_COPIES} fp32 copies; weights in {'fp16' if weight == 2 else 'fp32'}")


def finetune_needs(cfg: Any, *, params: int, tokenizer_bytes: int, estimated: bool = False) -> Needs:
    """Fine-tuning a model of ``params`` parameters (``cfg``: the eval/finetune config): the first seed's model is
    kept with ``save_model``."""
    save = bool(getattr(cfg, "save_model", False))
    disk = (params * 4 + tokenizer_bytes) if save else 0
    src = "estimated from the train config" if estimated else "from the model's weights"
    return Needs(int(TORCH_HF_BYTES + FINETUNE_BYTES_PER_PARAM * params), int(disk), int(disk),
                 f"{params:,} parameters {src} x {FINETUNE_BYTES_PER_PARAM} bytes (weights, gradients, AdamW); "
                 "activations not counted" + ("; the fine-tuned model kept" if save else ""))


# -- is a stage's output complete? (cheaply, for a plan) -----------------------------------------------------------
def cheap_fingerprint(path: Path) -> Optional[str]:
    """:func:`koroberta.artifacts.fingerprint` of ``path`` where it is cheap: a stage directory (its manifest), a
    file a stage manifest lists (its recorded sha256, when the size still matches), a file or directory up to
    :data:`PLAN_HASH_LIMIT` bytes. None: too large to hash for a plan."""
    from koroberta.artifacts import fingerprint, read_manifest

    p = Path(path)
    if p.is_dir():
        if read_manifest(p) is not None:
            return fingerprint(p)
        return fingerprint(p) if _dir_bytes(p) <= PLAN_HASH_LIMIT else None
    if not p.is_file():
        return "missing"
    for parent in list(p.parents)[:3]:
        m = read_manifest(parent)
        if m is not None:
            rec = m.get("outputs", {}).get(str(p.relative_to(parent)))
            if isinstance(rec, dict) and rec.get("bytes") == p.stat().st_size and rec.get("sha256"):
                return "file:" + rec["sha256"]
            break
    return fingerprint(p) if p.stat().st_size <= PLAN_HASH_LIMIT else None


def inputs_unchanged(manifest: Mapping[str, Any]) -> bool:
    """The inputs a manifest records still have the contents it records (inputs too large to hash for a plan are
    taken to be unchanged: the stage checks them by content when it runs)."""
    for rec in manifest.get("inputs", {}).values():
        now = cheap_fingerprint(Path(rec.get("path", "")))
        if now is not None and now != rec.get("fingerprint"):
            return False
    return True


def output_complete(out: Path, stage: str, identity_sha256: str) -> bool:
    """``out`` holds a complete output of ``stage`` with this identity whose inputs are unchanged."""
    from koroberta.artifacts import read_manifest

    m = read_manifest(out)
    return bool(m and m.get("stage") == stage and m.get("identity_sha256") == identity_sha256
                and inputs_unchanged(m))


def _plain(x: Any) -> Any:
    return json.loads(json.dumps(x))


def corpus_complete(cfg: Any, out: Path) -> bool:
    """The corpus directory ``out`` holds every step of this config, each with unchanged inputs (the extract steps:
    the sources' contents, where cheap)."""
    from koroberta.artifacts import read_manifest
    from koroberta.corpus.config import CLEAN_FIELDS, EXTRACT_FIELDS, SENTENCE_FIELDS, SPLIT_FIELDS
    from koroberta.corpus.parquet_out import FORMAT_VERSION
    from koroberta.corpus.wikitext import CLEANER_VERSION

    names = [s["name"] for s in cfg.sources]
    steps: list[tuple[str, str, tuple[str, ...], dict]] = [
        (f"extract-{n}" if cfg.sources else "extract", "corpus.extract", EXTRACT_FIELDS,
         {"cleaner": CLEANER_VERSION}) for n in (names or [""])]
    steps += [("clean", "corpus.clean", CLEAN_FIELDS, {}), ("sentences", "corpus.sentences", SENTENCE_FIELDS, {}),
              ("split", "corpus.split", SPLIT_FIELDS, {"hf_parquet": FORMAT_VERSION, "backend": cfg.backend,
                                                       **({"weights": {s["name"]: s["weight"] for s in cfg.sources}}
                                                          if cfg.sources else {})})]
    for name, stage, fields, extra in steps:
        m = read_manifest(out / name)
        if not m or m.get("stage") != stage or not inputs_unchanged(m):
            return False
        have = m.get("config", {})
        want = {**cfg.part(*fields), **extra}
        if cfg.sources and stage == "corpus.extract":
            want.pop("min_chars", None)  # a source's profile decides it there
        if any(_plain(have.get(k)) != _plain(v) for k, v in want.items()):
            return False
    return True
