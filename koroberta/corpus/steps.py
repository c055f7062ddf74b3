"""The corpus sub-steps, each a :class:`~koroberta.artifacts.StageOutput` directory under ``out_dir``::

    out_dir/extract[-IIIII-of-NNNNN]/docs.jsonl     pages -> cleaned documents (ord, id, title, text); per shard
    out_dir/clean/docs.jsonl                        shards merged in page order, exact duplicates removed
    out_dir/sentences[-IIIII-of-NNNNN]/sentences.jsonl   kss sentence split; per shard (doc index % N)
    out_dir/split/{train,valid,test}.txt            by hash(salt, page id); report.md + histogram PNGs
    out_dir/split/hf/{train,valid,test}.parquet     the same documents as a Hugging Face dataset (id, title, sentences)

Sharding: shard ``i`` of ``n`` takes pages with ``ord % n == i`` (extract) and documents with
``index % n == i`` (sentences); the merge steps interleave the shards back into source order, so the final files
are byte-identical for any shard count (tested). The train/valid/test assignment hashes the page id, so it does not
depend on shard count or order either.

Each step returns at once when its directory is complete for the same config fields and input fingerprints.
"""

from __future__ import annotations

import contextlib
import hashlib
import heapq
import io
import json
import logging
import multiprocessing as mp
import signal
import sys
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

from koroberta.artifacts import SPLITS, StageOutput, check_output_location, read_manifest, skip_if_complete
from koroberta.progress import progress_bar
from koroberta.corpus.config import (CLEAN_FIELDS, EXTRACT_FIELDS, SENTENCE_FIELDS, SPLIT_FIELDS, CorpusConfig)
from koroberta.errors import ConfigError, DependencyError, InputError

log = logging.getLogger("koroberta.corpus")

_json_str = json.encoder.encode_basestring  # C; the ensure_ascii=False flavour json.dumps uses
_BATCH = 32  # pages per worker task: ~0.3 MB of wikitext, amortises pickling; ordered imap keeps source order


#: the step directories of a corpus directory (each ``NAME`` or ``NAME-IIIII-of-NNNNN``)
STEP_NAMES = ("extract", "clean", "sentences", "split")


def check_corpus_dir(out_dir: Path, *, overwrite: bool, source: str | Path | None = None) -> None:
    """The corpus directory (every step's ``out_dir``) holds only corpus steps' directories: never another stage's
    output, never the source, never inside another stage's output; foreign files only with ``--overwrite`` (the
    steps are then written next to them; nothing is deleted). SLURM array shards share it: a shard's sibling
    step directories are its own stage's."""
    check_output_location(out_dir, "corpus", {"source": source}, overwrite=overwrite, nested_ok=("corpus",),
                          own_names=STEP_NAMES)


def shard_name(step: str, shard: int, num_shards: int) -> str:
    return step if num_shards == 1 else f"{step}-{shard:05d}-of-{num_shards:05d}"


def _check_shard(shard: int, num_shards: int) -> None:
    if num_shards < 1 or not 0 <= shard < num_shards:
        raise ConfigError(f"--shard {shard} --num-shards {num_shards}: need 0 <= shard < num_shards",
                          fix="shards are numbered from 0 (SLURM_ARRAY_TASK_ID with --array=0-N-1)")


def _progress(desc: str, unit: str, total: int | None = None):
    return progress_bar(desc, unit, total=total)


# -- extract ----------------------------------------------------------------------------------------------------------
def doc_json(ordinal: int, pid: str, title: str, text: str) -> str:
    """``json.dumps({"ord", "id", "title", "text"}, ensure_ascii=False) + "\n"``, byte for byte, ~2x faster on the
    text. Cleaned text holds no control character but the ``\n`` between lines (normalisation deletes the C0/C1
    controls and turns every other whitespace character into a space), so backslash, quote and newline are all
    that JSON escapes in it (tested against json.dumps)."""
    body = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'{{"ord": {ordinal}, "id": {_json_str(pid)}, "title": {_json_str(title)}, "text": "{body}"}}\n'


def _clean_batch(task: tuple[list[tuple], dict[str, Any]]) -> list[tuple[str | None, str, int, int]]:
    """Worker: wikitext -> lines for a batch of pages, in order. Returns (docs.jsonl line | None, drop reason, chars,
    literal special tokens removed from the kept document)."""
    from koroberta.text import collapse_ws, normalize_block
    from koroberta.corpus.wikitext import (is_disambiguation, keep_line, remove_special_literals,
                                           wikitext_to_lines)

    pages, opt = task
    out = []
    for ordinal, pid, title, text, clean in pages:
        if not clean and not opt["keep_disambiguation"] and is_disambiguation(text):
            out.append((None, "disambiguation", 0, 0))
            continue
        if clean:
            block = normalize_block(text, opt["normalization"])
            lines = [l for l in (collapse_ws(x) for x in block.split("\n")) if keep_line(l, opt["min_line_chars"])]
        else:
            lines = wikitext_to_lines(text, drop_sections=opt["drop_sections"], normalization=opt["normalization"],
                                      min_line_chars=opt["min_line_chars"])
        # every source kind passes here: the one place literal special tokens are removed (see wikitext.py)
        body, literals = remove_special_literals("\n".join(lines), opt["min_line_chars"])
        if not body:
            out.append((None, "empty_after_cleaning", 0, 0))
        elif len(body) < opt["min_chars"]:
            out.append((None, "too_short", 0, 0))
        else:
            out.append((doc_json(ordinal, pid, title, body), "", len(body), literals))
    return out


def _batches(pages: Iterable, shard: int, num_shards: int, drops: dict[str, int], opt: dict) -> Iterator[tuple]:
    from koroberta.corpus.wikitext import is_redirect_text

    batch: list[tuple] = []
    for p in pages:
        if p.ord % num_shards != shard:
            continue
        if p.ns != 0:
            drops["namespace"] = drops.get("namespace", 0) + 1
            continue
        if p.redirect or (not p.clean and is_redirect_text(p.text)):
            drops["redirect"] = drops.get("redirect", 0) + 1
            continue
        if not p.text or p.text.isspace():  # = not p.text.strip(), without copying the page
            drops["empty"] = drops.get("empty", 0) + 1
            continue
        batch.append((p.ord, p.id, p.title, p.text, p.clean))
        if len(batch) >= _BATCH:
            yield batch, opt
            batch = []
    if batch:
        yield batch, opt


def _worker_init(initializer=None) -> None:
    """Pool workers ignore SIGINT. Ctrl-C reaches every process of the terminal's process group: a worker would
    print its own KeyboardInterrupt traceback, while the parent already stops the run (it terminates the pool, and
    the CLI prints one "interrupted" line)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if initializer is not None:
        initializer()


@contextlib.contextmanager
def _pool(workers: int, initializer=None) -> Iterator[Any]:
    """A process pool, or None for ``workers <= 1`` (in-process: no fork/import cost on small inputs)."""
    if workers <= 1:
        if initializer:
            initializer()
        yield None
        return
    ctx = mp.get_context("fork" if sys.platform.startswith("linux") else "spawn")
    pool = ctx.Pool(workers, initializer=_worker_init, initargs=(initializer,))
    try:
        yield pool
        pool.close()
        pool.join()
    finally:
        pool.terminate()


def extract(cfg: CorpusConfig, source: str | Path, out_dir: str | Path, *, shard: int = 0, num_shards: int = 1,
            workers: int = 1, force: bool = False, overwrite: bool = False) -> Path:
    """Stream ``source`` (dump / WikiExtractor / text), keep namespace-0 non-redirect articles of this shard, clean
    the wikitext, and write ``docs.jsonl`` (one ``{"ord","id","title","text"}`` per document, text lines =
    paragraphs). Drop reasons and reader counters go to the manifest stats."""
    from koroberta.corpus.sources import ReadStats, check_source_encoding, iter_source
    from koroberta.corpus.wikitext import CLEANER_VERSION

    _check_shard(shard, num_shards)
    source = Path(source)
    final = Path(out_dir) / shard_name("extract", shard, num_shards)
    from koroberta.corpus.build import check_source
    check_source(source)  # a pipe/socket/device/symlink loop says so (not "source not found"), before any work
    check_corpus_dir(Path(out_dir), overwrite=overwrite, source=source)
    # the cleaner version is part of the config: an extract written by an older cleaner is redone, not reused
    conf = {**cfg.part(*EXTRACT_FIELDS), "shard": shard, "num_shards": num_shards, "cleaner": CLEANER_VERSION}
    inputs = {"source": source}
    if not source.exists():
        raise InputError("source not found", path=source, fix="pass an existing dump, WikiExtractor output or text file")
    if skip_if_complete(final, "corpus.extract", conf, inputs, force=force, log=log):
        return final
    check_source_encoding(source, cfg.encoding)  # CP949/UTF-16/not UTF-8: refused before any directory exists
    opt = {k: conf[k] for k in ("keep_disambiguation", "drop_sections", "normalization", "min_line_chars",
                                "min_chars")}
    rstats = ReadStats()
    drops: dict[str, int] = {}
    kept = chars = literals = 0
    with StageOutput(final, stage="corpus.extract", config=conf, inputs=inputs, overwrite=overwrite) as st:
        bar = _progress(f"extract {shard}/{num_shards}", "page")
        # the reader decodes bz2 with as many threads as there are cleaning workers, so it keeps up with them
        pages = iter_source(source, rstats, dbname=cfg.dbname, decompress_threads=workers, encoding=cfg.encoding)
        with open(st.tmp / "docs.jsonl", "w", encoding="utf-8", newline="\n") as out, _pool(workers) as pool:
            tasks = _batches(pages, shard, num_shards, drops, opt)
            results = pool.imap(_clean_batch, tasks) if pool else map(_clean_batch, tasks)
            for res in results:
                for line, reason, nchars, nlit in res:
                    if line is None:
                        drops[reason] = drops.get(reason, 0) + 1
                        continue
                    out.write(line)
                    kept += 1
                    chars += nchars
                    literals += nlit
                bar.n = rstats.pages
                bar.update(0)
        bar.close()
        if rstats.invalid_utf8:
            log.warning("%s: %d invalid UTF-8 byte sequence(s) replaced with U+FFFD", source, rstats.invalid_utf8)
        st.stats.update({"pages_read": rstats.pages, "pages_in_shard": sum(drops.values()) + kept,
                         "documents": kept, "characters": chars, "dropped": dict(sorted(drops.items())),
                         "repaired": {"special_token_literals_removed": literals},
                         "invalid_utf8_replaced": rstats.invalid_utf8, "dbname": rstats.dbname})
    log.info("extract: %d pages read, %d documents kept, dropped %s", rstats.pages, kept, drops)
    return final


# -- clean (merge + dedup) ---------------------------------------------------------------------------------------------
def _read_jsonl(path: Path) -> Iterator[dict]:
    with open(path, encoding="utf-8") as f:
        for line in f:
            yield json.loads(line)


def _read_jsonl_shard(path: Path, shard: int, num_shards: int) -> Iterator[tuple[int, dict]]:
    """(line index, record) for the lines with ``index % num_shards == shard``; other lines are not parsed."""
    with open(path, encoding="utf-8") as f:
        for i, line in enumerate(f):
            if i % num_shards == shard:
                yield i, json.loads(line)


def _shard_dirs(out_dir: Path, step: str, num_shards: int, stage: str) -> list[Path]:
    dirs = [out_dir / shard_name(step, i, num_shards) for i in range(num_shards)]
    missing = [i for i, d in enumerate(dirs) if (read_manifest(d) or {}).get("stage") != stage]
    if missing:
        raise InputError(f"{len(missing)} of {num_shards} {step} shard(s) incomplete (first: shard {missing[0]})",
                         path=out_dir, fix=f"run `koroberta corpus {step} ... --shard {missing[0]} "
                                           f"--num-shards {num_shards}` for each missing shard, then run this "
                                           "command again")
    return dirs


def clean(cfg: CorpusConfig, out_dir: str | Path, *, num_shards: int = 1, force: bool = False,
          overwrite: bool = False) -> Path:
    """Merge the extract shards in source order, drop exact duplicates (keep the first), and write
    ``docs.jsonl`` (id, title, text: one document per line), which the sentence step reads."""
    out_dir = Path(out_dir)
    check_corpus_dir(out_dir, overwrite=overwrite)
    shards = _shard_dirs(out_dir, "extract", num_shards, "corpus.extract")
    final = out_dir / "clean"
    conf = cfg.part(*CLEAN_FIELDS)
    inputs = {f"extract{i}": d for i, d in enumerate(shards)}
    if skip_if_complete(final, "corpus.clean", conf, inputs, force=force, log=log):
        return final
    drops: dict[str, int] = {}
    repairs: dict[str, int] = {}
    for d in shards:
        shard_stats = read_manifest(d)["stats"]
        for k, v in shard_stats["dropped"].items():
            drops[k] = drops.get(k, 0) + v
        for k, v in shard_stats.get("repaired", {}).items():
            repairs[k] = repairs.get(k, 0) + v
    seen: set[bytes] = set()
    kept = chars = 0
    with StageOutput(final, stage="corpus.clean", config=conf, inputs=inputs, overwrite=overwrite) as st:
        merged = heapq.merge(*(_read_jsonl(d / "docs.jsonl") for d in shards), key=lambda r: r["ord"])
        with open(st.tmp / "docs.jsonl", "w", encoding="utf-8", newline="\n") as dj:
            for rec in merged:
                if cfg.dedup:
                    h = hashlib.blake2b(rec["text"].encode("utf-8"), digest_size=16).digest()
                    if h in seen:
                        drops["duplicate"] = drops.get("duplicate", 0) + 1
                        continue
                    seen.add(h)
                dj.write(json.dumps({"id": rec["id"], "title": rec["title"], "text": rec["text"]},
                                    ensure_ascii=False) + "\n")
                kept += 1
                chars += len(rec["text"])
        st.stats.update({"documents": kept, "characters": chars, "dropped": dict(sorted(drops.items())),
                         "repaired": dict(sorted(repairs.items()))})
    log.info("clean: %d documents, dropped %s, repaired %s", kept, drops, repairs)
    return final


# -- sentence split ---------------------------------------------------------------------------------------------------
def init_kss() -> None:
    """Import kss once per worker with its banner silenced (it prints to stdout on import)."""
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        try:
            import kss  # noqa: F401
        except ImportError as e:  # pragma: no cover - kss is a core dependency
            raise DependencyError(f"kss is not importable ({e})", fix="pip install kss==6.0.6") from None
    logging.getLogger("kss").setLevel(logging.ERROR)


def split_lines(lines: Sequence[str], backend: str) -> list[str]:
    """Sentences of the given paragraphs (never across a paragraph boundary), whitespace-collapsed."""
    import kss

    from koroberta.text import collapse_ws

    out: list[str] = []
    if not lines:
        return out
    with contextlib.redirect_stdout(io.StringIO()):
        # kss returns List[str] (not List[List[str]]) for a one-element list: call it per shape
        parts = ([kss.split_sentences(lines[0], backend=backend, num_workers=1)] if len(lines) == 1 else
                 kss.split_sentences(list(lines), backend=backend, num_workers=1))
    for sents in parts:
        for s in sents:
            s = collapse_ws(s)
            if s:
                out.append(s)
    return out


def _split_doc(task: tuple[int, str, str, str, str]) -> tuple[int, str, str, list[str]]:
    idx, pid, title, text, backend = task
    return idx, pid, title, split_lines(text.split("\n"), backend)


def check_backend(backend: str) -> None:
    """Fail early (one line) when a kss backend's analyzer is not installed (mecab usually)."""
    if backend == "mecab":
        try:
            import mecab  # noqa: F401  (python-mecab-kor, what kss 6 uses)
        except ImportError:
            try:
                import MeCab  # noqa: F401
            except ImportError:
                raise DependencyError("kss backend 'mecab' needs python-mecab-kor, which is not installed",
                                      fix="use --backend punct (default) or pecab, or pip install python-mecab-kor"
                                      ) from None
    if backend == "pecab":
        try:
            import pecab  # noqa: F401
        except ImportError:
            raise DependencyError("kss backend 'pecab' needs the pecab package", fix="pip install pecab") from None


def sentences(cfg: CorpusConfig, out_dir: str | Path, *, shard: int = 0, num_shards: int = 1, workers: int = 1,
              force: bool = False, overwrite: bool = False) -> Path:
    """kss-split the documents of ``clean/docs.jsonl`` with ``index % num_shards == shard``; writes
    ``sentences.jsonl`` with ``{"idx","id","sentences"}`` per document (empty documents are kept as such so
    every shard's indices stay aligned)."""
    _check_shard(shard, num_shards)
    check_backend(cfg.backend)
    out_dir = Path(out_dir)
    check_corpus_dir(out_dir, overwrite=overwrite)
    clean_dir = out_dir / "clean"
    clean_manifest = read_manifest(clean_dir)
    if clean_manifest is None:
        raise InputError("clean step output missing or incomplete", path=clean_dir,
                         fix="run `koroberta corpus clean OUT_DIR` (after all extract shards) first")
    final = out_dir / shard_name("sentences", shard, num_shards)
    conf = {**cfg.part(*SENTENCE_FIELDS), "shard": shard, "num_shards": num_shards}
    inputs = {"clean": clean_dir}
    if skip_if_complete(final, "corpus.sentences", conf, inputs, force=force, log=log):
        return final
    total = clean_manifest["stats"]["documents"]
    n_sent = 0
    with StageOutput(final, stage="corpus.sentences", config=conf, inputs=inputs, overwrite=overwrite) as st:
        tasks = ((i, r["id"], r["title"], r["text"], cfg.backend)
                 for i, r in _read_jsonl_shard(clean_dir / "docs.jsonl", shard, num_shards))
        bar = _progress(f"sentences {shard}/{num_shards} ({cfg.backend})", "doc",
                        total=len(range(shard, total, num_shards)))
        with open(st.tmp / "sentences.jsonl", "w", encoding="utf-8", newline="\n") as out, \
                _pool(workers, init_kss) as pool:
            results = pool.imap(_split_doc, tasks, chunksize=8) if pool else map(_split_doc, tasks)
            for idx, pid, title, sents in results:
                # the title travels with the sentences for split/hf/*.parquet (the .txt files have no place for it)
                out.write(json.dumps({"idx": idx, "id": pid, "title": title, "sentences": sents},
                                     ensure_ascii=False) + "\n")
                n_sent += len(sents)
                bar.update(1)
        bar.close()
        st.stats.update({"documents": len(range(shard, total, num_shards)), "sentences": n_sent,
                         "backend": cfg.backend})
    return final


# -- train/valid/test split -------------------------------------------------------------------------------------------
def assign_split(page_id: str, salt: str, valid_fraction: float, test_fraction: float) -> str:
    """Deterministic split of one document from a hash of (salt, page id): independent of order and sharding."""
    h = hashlib.sha256(f"{salt}\0{page_id}".encode("utf-8")).digest()
    u = int.from_bytes(h[:8], "big") / 2.0 ** 64
    if u < valid_fraction:
        return "valid"
    if u < valid_fraction + test_fraction:
        return "test"
    return "train"


def split(cfg: CorpusConfig, out_dir: str | Path, *, num_shards: int = 1, force: bool = False,
          overwrite: bool = False) -> Path:
    """Merge the sentence shards in document order and write ``train.txt``/``valid.txt``/``test.txt`` (one
    sentence per line, one blank line between documents, final newline), the same documents as a Hugging Face
    dataset in ``hf/{train,valid,test}.parquet`` (see :mod:`koroberta.corpus.parquet_out`), plus the report."""
    from koroberta.corpus import parquet_out

    out_dir = Path(out_dir)
    check_corpus_dir(out_dir, overwrite=overwrite)
    shards = _shard_dirs(out_dir, "sentences", num_shards, "corpus.sentences")
    final = out_dir / "split"
    # the Parquet format version is part of the config: a split made before (or with another) hf/ is redone
    conf = {**cfg.part(*SPLIT_FIELDS), "backend": cfg.backend, "hf_parquet": parquet_out.FORMAT_VERSION}
    inputs = {f"sentences{i}": d for i, d in enumerate(shards)}
    if skip_if_complete(final, "corpus.split", conf, inputs, force=force, log=log):
        return final
    clean_m = read_manifest(out_dir / "clean")
    extract_drops = (clean_m or {}).get("stats", {}).get("dropped", {})
    extract_repairs = (clean_m or {}).get("stats", {}).get("repaired", {})
    docs = {s: 0 for s in SPLITS}
    sents = {s: 0 for s in SPLITS}
    chars = {s: 0 for s in SPLITS}
    empty_docs = 0
    doc_lens: list[int] = []
    sent_lens: list[int] = []
    with StageOutput(final, stage="corpus.split", config=conf, inputs=inputs, overwrite=overwrite) as st:
        files = {s: open(st.tmp / f"{s}.txt", "w", encoding="utf-8", newline="\n") for s in SPLITS}
        (st.tmp / "hf").mkdir()
        tables = {s: parquet_out.SplitParquetWriter(st.tmp / "hf" / f"{s}.parquet") for s in SPLITS}
        try:
            merged = heapq.merge(*(_read_jsonl(d / "sentences.jsonl") for d in shards), key=lambda r: r["idx"])
            for rec in merged:
                ss = rec["sentences"]
                if not ss:
                    empty_docs += 1
                    continue
                part = assign_split(str(rec["id"]), cfg.split_salt, cfg.valid_fraction, cfg.test_fraction)
                f = files[part]
                f.write(("\n" if docs[part] else "") + "\n".join(ss) + "\n")
                docs[part] += 1
                sents[part] += len(ss)
                lens = [len(s) for s in ss]
                chars[part] += sum(lens)
                # a sentence shard written before titles were recorded has none: the title is then null
                tables[part].add(str(rec["id"]), rec.get("title"), ss, sum(lens))
                if cfg.report:
                    doc_lens.append(sum(lens))
                    sent_lens.extend(lens)
        finally:
            for f in files.values():
                f.close()
        for t in tables.values():  # after the loop only: an error above leaves the temporary directory to be removed
            t.close()
        drops = dict(extract_drops)
        if empty_docs:
            drops["no_sentences"] = empty_docs
        st.stats.update({"documents": docs, "sentences": sents, "characters": chars,
                         "dropped": dict(sorted(drops.items())), "repaired": dict(sorted(extract_repairs.items())),
                         "backend": cfg.backend})
        if cfg.report:
            from koroberta.corpus.report import write_report

            write_report(st.tmp, st.stats, doc_lens, sent_lens)
    log.info("split: documents %s, sentences %s", docs, sents)
    return final
