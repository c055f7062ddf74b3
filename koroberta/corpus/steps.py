"""The corpus sub-steps, each a :class:`~koroberta.artifacts.StageOutput` directory under ``out_dir``::

    out_dir/extract[-IIIII-of-NNNNN]/docs.jsonl     pages -> cleaned documents (ord, id, title, text); per shard
    out_dir/extract-<name>[-IIIII-of-NNNNN]/        several sources: the same per source (each its own ord)
    out_dir/clean/docs.jsonl                        shards merged in page order, exact duplicates removed
    out_dir/sentences[-IIIII-of-NNNNN]/sentences.jsonl   kss sentence split; per shard (a byte range of clean's)
    out_dir/split/{train,valid,test}.txt            by hash(salt, page id); report.md + histogram PNGs
    out_dir/split/valid_<name>.txt                  several sources: each source's valid documents (per-domain loss)
    out_dir/split/hf/{train,valid,test}.parquet     the same documents as a Hugging Face dataset (id, title, sentences)

Sharding: shard ``i`` of ``n`` takes pages with ``ord % n == i`` (extract; a multistream dump with its index next
to it: the ``i``-th run of whole bz2 streams, each page with its ordinal in the whole dump -- see
:mod:`koroberta.corpus.multistream`) and the documents starting in the ``i``-th byte range of ``clean/docs.jsonl``
(sentences); the merge steps interleave the shards back into source order by ordinal and byte offset, so the final
files are byte-identical for any shard count (tested). The train/valid/test assignment hashes the page id, so it does
not depend on shard count or order either.

Each step returns at once when its directory is complete for the same config fields and input fingerprints.
"""

from __future__ import annotations

import contextlib
import contextvars
import gc
import hashlib
import heapq
import io
import json
import logging
import math
import multiprocessing as mp
import signal
import sys
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

from koroberta.artifacts import SPLITS, StageOutput, check_output_location, read_manifest, skip_if_complete
from koroberta.progress import progress_bar
from koroberta.corpus.config import (CLEAN_FIELDS, EXTRACT_FIELDS, SENTENCE_FIELDS, SPLIT_FIELDS, CorpusConfig)
from koroberta.corpus.prune import must_redo, prune_intermediates, require_data
from koroberta.errors import ConfigError, DependencyError, InputError

log = logging.getLogger("koroberta.corpus")

_json_str = json.encoder.encode_basestring  # C; the ensure_ascii=False flavour json.dumps uses
_BATCH = 32  # pages per worker task: ~0.3 MB of wikitext, amortises pickling; ordered imap keeps source order


#: the step directories of a corpus directory (each ``NAME`` or ``NAME-IIIII-of-NNNNN``)
STEP_NAMES = ("extract", "clean", "sentences", "split")


def check_corpus_dir(out_dir: Path, *, overwrite: bool, source: str | Path | None = None,
                     inputs: dict[str, Path] | None = None) -> None:
    """The corpus directory (every step's ``out_dir``) holds only corpus steps' directories: never another stage's
    output, never the source (``inputs``: every source and decontamination file of a multi-source corpus), never
    inside another stage's output; foreign files only with ``--overwrite`` (the steps are then written next to them;
    nothing is deleted). SLURM array shards share it: a shard's sibling step directories are its own stage's, and
    a multi-source corpus's ``extract-<name>/`` directories are ``extract`` steps (``NAME-…`` matches)."""
    check_output_location(out_dir, "corpus", {"source": source, **(inputs or {})}, overwrite=overwrite,
                          nested_ok=("corpus",), own_names=STEP_NAMES)


_stage_said: contextvars.ContextVar[bool] = contextvars.ContextVar("koroberta_corpus_stage_said", default=False)


@contextlib.contextmanager
def stage_needs_said() -> Iterator[None]:
    """Within it (``corpus build``, ``koroberta run``), the stage's needs line was logged for the whole stage, so
    the steps do not log their own; a step command run alone (a SLURM array task) logs its step's."""
    token = _stage_said.set(True)
    try:
        yield
    finally:
        _stage_said.reset(token)


def _step_starts(step: str, data: Sequence[Path], out: Path, needs: Any) -> None:
    """What every step does once it knows it has work: refuse inputs whose data was removed
    (:func:`~koroberta.corpus.prune.require_data`), then, run alone (not within :func:`stage_needs_said`), log its
    needs line -- ``needs()`` is only computed then (:mod:`koroberta.resources`; None: nothing to say)."""
    require_data(data, f"the {step} step")
    if not _stage_said.get() and (n := needs()) is not None:
        from koroberta.resources import announce

        announce(log, f"corpus {step}", n, out)


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
    pages, opt = task
    out = []
    prof = None
    if opt.get("profile") is not None:
        from koroberta.corpus.filters import Profile

        prof = Profile(**opt["profile"])
    for ordinal, pid, title, text, clean in pages:
        if prof is not None:  # a source of a multi-source corpus: its own record shape, filters and exclusions
            out.append(_clean_filtered(ordinal, pid, title, text, clean, opt, prof))
            continue
        body, literals, reason = _clean_page(text, clean, opt)
        if reason:
            out.append((None, reason, 0, 0))
        elif len(body) < opt["min_chars"]:
            out.append((None, "too_short", 0, 0))
        else:
            out.append((doc_json(ordinal, pid, title, body), "", len(body), literals))
    return out


def _clean_page(text: str, clean: bool, opt: dict[str, Any]) -> tuple[str, int, str]:
    """Today's cleaning of one page, shared by single- and multi-source extraction: (body, literal special tokens
    removed, "") or ("", 0, drop reason) for a disambiguation page or a page left empty."""
    from koroberta.text import collapse_ws, normalize_block
    from koroberta.corpus.wikitext import is_disambiguation, keep_line, remove_special_literals, wikitext_to_lines

    if not clean and not opt["keep_disambiguation"] and is_disambiguation(text):
        return "", 0, "disambiguation"
    if clean:
        block = normalize_block(text, opt["normalization"])
        lines = [l for l in (collapse_ws(x) for x in block.split("\n")) if keep_line(l, opt["min_line_chars"])]
    else:
        lines = wikitext_to_lines(text, drop_sections=opt["drop_sections"], normalization=opt["normalization"],
                                  min_line_chars=opt["min_line_chars"])
    # every source kind passes here: the one place literal special tokens are removed (see wikitext.py)
    body, literals = remove_special_literals("\n".join(lines), opt["min_line_chars"],
                                             tuple(opt.get("special_literals", ())))
    return (body, literals, "") if body else ("", 0, "empty_after_cleaning")


def _clean_filtered(ordinal: int, pid: str, title: str, text: str, clean: bool, opt: dict[str, Any],
                    prof: Any) -> tuple:
    """One page of a multi-source corpus's source: today's cleaning, then the source's filter profile
    (:func:`koroberta.corpus.filters.filter_document`). Returns (docs.jsonl line | None, drop reason, characters
    kept, literals removed, filter counters, excluded.jsonl line | None, characters in)."""
    from koroberta.corpus.filters import filter_document

    name = opt["source_name"]
    doc_id = f"{name}/{pid}"  # ids of different sources collide (two files' `0`, two dumps' page 1)

    def excluded(reason: str, body: str) -> str:
        return json.dumps({"id": doc_id, "title": title, "reason": reason, "text": body}, ensure_ascii=False) + "\n"

    body, literals, early = _clean_page(text, clean, opt)
    if early:
        return None, early, 0, 0, {}, excluded(early, ""), 0
    kept, reason, counters = filter_document(body, prof)
    if kept is None:
        shown = body
        if prof.pii:  # the excluded file is an output too: it must not keep the personal data the filter replaces
            from koroberta.corpus.pii import replace_pii

            shown = replace_pii(body)[0]
        return None, reason, 0, 0, counters, excluded(reason, shown), len(body)
    line = json.dumps({"ord": ordinal, "id": doc_id, "title": title, "text": kept, "source": name},
                      ensure_ascii=False) + "\n"
    return line, "", len(kept), literals, counters, None, len(body)


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
            workers: int = 1, force: bool = False, overwrite: bool = False, source_name: str | None = None) -> Path:
    """Stream ``source`` (dump / WikiExtractor / text / TSV / dataset), keep namespace-0 non-redirect articles of this
    shard, clean the wikitext, and write ``docs.jsonl`` (one ``{"ord","id","title","text"}`` per document, text
    lines = paragraphs). Drop reasons and reader counters go to the manifest stats.

    ``source_name``: the source of a multi-source corpus (an entry of ``cfg.sources``): written to
    ``extract-<name>[-i-of-n]/``, ids ``<name>/<id>``, records with ``source``, the source's filter profile applied
    after the cleaning, per-filter counts in the stats and every dropped document in ``excluded.jsonl``."""
    from koroberta.corpus.sources import ReadStats, check_source_encoding, iter_source
    from koroberta.corpus.wikitext import CLEANER_VERSION

    _check_shard(shard, num_shards)
    source = Path(source)
    spec = cfg.source_spec(source_name) if source_name is not None else None
    final = Path(out_dir) / shard_name("extract" if spec is None else f"extract-{source_name}", shard, num_shards)
    from koroberta.corpus.build import check_source
    check_source(source)  # a pipe/socket/device/symlink loop says so (not "source not found"), before any work
    check_corpus_dir(Path(out_dir), overwrite=overwrite, source=source)
    # the cleaner version is part of the config: an extract written by an older cleaner is redone, not reused
    conf = {**cfg.part(*EXTRACT_FIELDS), "shard": shard, "num_shards": num_shards, "cleaner": CLEANER_VERSION}
    if spec is not None:
        if spec["profile"] is None:  # the kind was unknown when the config was read (the path did not exist)
            raise ConfigError(f"source {source_name!r}: its filter profile is unresolved",
                              fix="load the config again now that its path exists, or set `profile:`")
        # the weight is the split's business: changing it must not redo the extraction
        conf.update({"source": {k: spec[k] for k in ("name", "profile", "documents")}})
        del conf["min_chars"]  # the profile's min_chars decides (the wiki profile's is corpus.min_chars)
    inputs = {"source": source}
    if not source.exists():
        raise InputError("source not found" if spec is None else f"source {source_name!r} not found", path=source,
                         fix="pass an existing dump, WikiExtractor output or text file")
    index = None
    if num_shards > 1:
        from koroberta.corpus.multistream import index_for

        # a multistream dump with its index next to it: each shard decodes only its own streams
        # (koroberta.corpus.multistream); otherwise each reads everything and keeps ord % num_shards. Identity: a
        # shard of one kind is never taken for one of the other, nor a stream shard for one of another index
        index = index_for(source)
        conf["shard_by"] = "ord" if index is None else "streams"
        if index is not None:
            inputs["index"] = index
    if not must_redo(final) and skip_if_complete(final, "corpus.extract", conf, inputs, force=force, log=log):
        return final
    check_source_encoding(source, cfg.encoding)  # CP949/UTF-16/not UTF-8: refused before any directory exists
    if spec is None:  # a source of `sources:` is announced by extract_sources, once for the task's sources
        from koroberta.resources import extract_needs

        _step_starts("extract", (), Path(out_dir),
                     lambda: extract_needs(cfg, {"source": source}, workers, num_shards))
    streams = _stream_range(source, index, shard, num_shards)
    opt = {k: getattr(cfg, k) for k in ("keep_disambiguation", "drop_sections", "normalization", "min_line_chars",
                                        "min_chars", "special_literals")}
    if spec is not None:
        opt.update({"profile": spec["profile"], "source_name": source_name})
    rstats = ReadStats()
    drops: dict[str, int] = {}
    filters: dict[str, int] = {}
    kept = chars = literals = docs_in = chars_in = 0
    with StageOutput(final, stage="corpus.extract", config=conf, inputs=inputs, overwrite=overwrite) as st:
        bar = _progress(f"extract {source_name + ' ' if spec else ''}{shard}/{num_shards}", "page")
        # the reader decodes bz2 with as many threads as there are cleaning workers, so it keeps up with them
        pages = iter_source(source, rstats, dbname=cfg.dbname, decompress_threads=workers, encoding=cfg.encoding,
                            documents=spec["documents"] if spec else cfg.documents, streams=streams)
        excluded = open(st.tmp / "excluded.jsonl", "w", encoding="utf-8", newline="\n") if spec else None
        try:
            with open(st.tmp / "docs.jsonl", "w", encoding="utf-8", newline="\n") as out, _pool(workers) as pool:
                # a stream shard's reader yields its own pages only: nothing to skip by ordinal
                tasks = (_batches(pages, 0, 1, drops, opt) if streams is not None else
                         _batches(pages, shard, num_shards, drops, opt))
                results = pool.imap(_clean_batch, tasks) if pool else map(_clean_batch, tasks)
                for res in results:
                    for line, reason, nchars, nlit, *more in res:
                        if more:  # a multi-source source: filter counters, excluded record, characters in
                            counters, ex_line, nin = more
                            for k, v in counters.items():
                                filters[k] = filters.get(k, 0) + v
                            if ex_line is not None:
                                excluded.write(ex_line)
                            if nin:
                                docs_in += 1
                                chars_in += nin
                        if line is None:
                            drops[reason] = drops.get(reason, 0) + 1
                            continue
                        out.write(line)
                        kept += 1
                        chars += nchars
                        literals += nlit
                    bar.n = rstats.pages
                    bar.update(0)
        finally:
            if excluded is not None:
                excluded.close()
        bar.close()
        if rstats.invalid_utf8:
            log.warning("%s: %d invalid UTF-8 byte sequence(s) replaced with U+FFFD", source, rstats.invalid_utf8)
        st.stats.update({"pages_read": rstats.pages, "pages_in_shard": sum(drops.values()) + kept,
                         "documents": kept, "characters": chars, "dropped": dict(sorted(drops.items())),
                         "repaired": {"special_token_literals_removed": literals},
                         "invalid_utf8_replaced": rstats.invalid_utf8, "dbname": rstats.dbname,
                         # what this shard decoded of a dump file: about 1/num_shards of it when sharded by streams
                         "shard_by": conf.get("shard_by"), "compressed_bytes_read": rstats.compressed_bytes})
        if spec is not None:
            # what the profile saw (cleaned, non-empty documents) and what it did: edits (boilerplate lines, repeats,
            # pii_* replacements) and drops by filter name (in "dropped" with the cleaning's own reasons)
            st.stats.update({"source": source_name, "profile": spec["profile"]["name"],
                             "filtered_in": {"documents": docs_in, "characters": chars_in},
                             "edits": dict(sorted(filters.items()))})
    log.info("extract%s: %d pages read, %d documents kept, dropped %s", f" {source_name}" if spec else "",
             rstats.pages, kept, drops)
    return final


def _stream_range(source: Path, index: Path | None, shard: int, num_shards: int):
    """The :class:`~koroberta.corpus.multistream.StreamRange` a stream shard decodes (``index`` given), else None --
    after one warning when a sharded dump has no index, so each shard decodes all of it."""
    from koroberta.corpus.multistream import expected_index_name, shard_range
    from koroberta.corpus.sources import detect_format

    if index is not None:
        rng = shard_range(index, source, shard, num_shards)
        log.info("extract %d/%d: streams at bytes %s-%s of %s (%d pages, by %s)", shard, num_shards,
                 f"{rng.start:,}", f"{rng.end:,}", source.name, len(rng.page_ids), index.name)
        return rng
    if num_shards > 1 and source.is_file() and detect_format(source) == "dump":
        log.warning("%s: no stream index next to it (%s): each of the %d shards decodes the whole dump and keeps "
                    "every %d-th page (%dx the reader's CPU); use the multistream dump and its index (`koroberta "
                    "corpus download --multistream`) to have each shard decode only its own streams", source,
                    expected_index_name(source), num_shards, num_shards, num_shards)
    return None


# -- clean (merge + dedup) ---------------------------------------------------------------------------------------------
def _read_jsonl(path: Path) -> Iterator[dict]:
    with open(path, encoding="utf-8") as f:
        for line in f:
            yield json.loads(line)


def _read_jsonl_shard(path: Path, shard: int, num_shards: int) -> Iterator[tuple[int, dict]]:
    """(position, record) of the lines of shard ``shard`` of ``num_shards``: one shard, every line with its line
    index; several, the lines that start in the ``shard``-th of ``num_shards`` equal byte ranges of the file, each
    with its byte offset -- a shard reads its own range only (plus the end of the line running into it), and the
    offsets, like line indices, grow in document order, so the split's merge by them restores that order."""
    if num_shards == 1:
        with open(path, encoding="utf-8") as f:
            for i, line in enumerate(f):
                yield i, json.loads(line)
        return
    size = path.stat().st_size
    lo, hi = size * shard // num_shards, size * (shard + 1) // num_shards
    with open(path, "rb") as f:
        pos = lo
        if lo:
            f.seek(lo - 1)
            pos += len(f.readline()) - 1  # to the start of the first line starting at or after lo
        while pos < hi:
            line = f.readline()
            if not line:
                break
            yield pos, json.loads(line)
            pos += len(line)


def _shard_dirs(out_dir: Path, step: str, num_shards: int, stage: str, *, what: str | None = None,
                command: str | None = None) -> list[Path]:
    """The ``num_shards`` complete shard directories of ``step`` (``NAME-IIIII-of-NNNNN``), or one line naming the
    first missing shard and the command that makes it (``command``: the ``koroberta corpus`` arguments before
    ``--shard``; ``what``: the shards' name in the message, default ``step``)."""
    dirs = [out_dir / shard_name(step, i, num_shards) for i in range(num_shards)]
    missing = [i for i, d in enumerate(dirs) if (read_manifest(d) or {}).get("stage") != stage]
    if missing:
        raise InputError(f"{len(missing)} of {num_shards} {what or step} shard(s) incomplete (first: shard "
                         f"{missing[0]})", path=out_dir,
                         fix=f"run `koroberta corpus {command or step + ' ...'} --shard {missing[0]} "
                             f"--num-shards {num_shards}` for each missing shard, then run this command again")
    # shards cut in different ways (by ordinal and by streams, by line and by bytes) do not interleave
    kinds = [read_manifest(d)["config"].get("shard_by") for d in dirs]
    if len(set(kinds)) > 1:
        odd = next(i for i, k in enumerate(kinds) if k != kinds[0])
        raise InputError(f"{what or step} shards 0 and {odd} were cut differently (shard_by {kinds[0]} and "
                         f"{kinds[odd]}: one made with a stream index next to the dump and one without, or by another "
                         "koroberta version), so they do not interleave", path=out_dir,
                         fix=f"run `koroberta corpus {command or step + ' ...'} --shard I --num-shards {num_shards}` "
                             "again for every shard (those of the other kind are redone), then this command")
    return dirs


def clean(cfg: CorpusConfig, out_dir: str | Path, *, num_shards: int = 1, force: bool = False,
          overwrite: bool = False, decontaminate: Sequence[Path] = ()) -> Path:
    """Merge the extract shards in source order, drop exact duplicates (keep the first), and write
    ``docs.jsonl`` (id, title, text: one document per line), which the sentence step reads. A multi-source corpus
    (``cfg.sources``) is merged by :func:`clean_sources` (``decontaminate``: its evaluation files), from
    ``num_shards`` extract shards of every source."""
    out_dir = Path(out_dir)
    check_corpus_dir(out_dir, overwrite=overwrite)
    if cfg.sources:
        return clean_sources(cfg, out_dir, num_shards=num_shards, decontaminate=decontaminate, force=force,
                             overwrite=overwrite)
    if decontaminate:
        raise ConfigError("decontamination files are given, but the corpus has a single `source:`",
                          fix="list the source under `sources:` to use `decontaminate:`")
    shards = _shard_dirs(out_dir, "extract", num_shards, "corpus.extract")
    final = out_dir / "clean"
    conf = cfg.part(*CLEAN_FIELDS)
    inputs = {f"extract{i}": d for i, d in enumerate(shards)}
    if not must_redo(final) and skip_if_complete(final, "corpus.clean", conf, inputs, force=force, log=log):
        return final
    from koroberta.resources import corpus_step_needs

    _step_starts("clean", shards, out_dir, lambda: corpus_step_needs(cfg, "clean", out_dir))
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


def _add(d: dict[str, int], key: str, n: int = 1) -> None:
    d[key] = d.get(key, 0) + n


def memory_limit() -> int | None:
    """Bytes of memory this process may use: the smaller of the machine's RAM and a cgroup (v2 or v1) limit, as a
    SLURM job or a container sets one; None where neither can be read."""
    import os

    limits = []
    try:
        limits.append(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        pass
    for f in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            v = Path(f).read_text().strip()
        except OSError:
            continue
        if v.isdigit() and int(v) < 2 ** 60:  # "max" / a huge number: no limit
            limits.append(int(v))
    return min(limits) if limits else None


def check_dedup_memory(cfg: CorpusConfig, documents: int, where: Path) -> int:
    """The bytes the merge's dedup indexes will need for ``documents`` (at most: every extracted document indexed),
    logged; an :class:`InputError` before any work when that exceeds 90 % of :func:`memory_limit` -- the merge
    would otherwise run for hours and be killed by the kernel near its end. The per-document costs are measured
    (``koroberta.corpus.dedup``); a corpus past the limit turns near dedup off (exact dedup costs ~40x less)."""
    from koroberta.corpus.dedup import EXACT_BYTES_PER_DOC, NEAR_BYTES_PER_DOC

    need = documents * ((EXACT_BYTES_PER_DOC if cfg.dedup else 0) + (NEAR_BYTES_PER_DOC if cfg.near_dedup_on else 0))
    limit = memory_limit()
    log.info("clean: dedup indexes for up to %d documents need about %.2f GB (memory limit %s)", documents,
             need / 1e9, f"{limit / 1e9:.1f} GB" if limit else "unknown")
    if limit and need > 0.9 * limit:
        exact = documents * EXACT_BYTES_PER_DOC
        raise InputError(f"the dedup indexes for {documents:,} documents need about {need / 1e9:.1f} GB, more than "
                         f"this machine or job may use ({limit / 1e9:.1f} GB)", path=where,
                         fix=f"set corpus.near_dedup: false (exact dedup alone needs about {exact / 1e9:.1f} GB) or "
                             "run the clean step with more memory")
    return need


def _sum_extract_stats(shards: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """One source's extract stats over its shards, shaped as one unsharded extract's: the counts added up, the
    dictionaries sorted by key as :func:`extract` writes them (a key any shard has is there), so every number
    :func:`clean_sources` and the report take from them is the one-machine run's for any shard count."""
    def added(key: str) -> dict[str, int]:
        acc: dict[str, int] = {}
        for st in shards:
            for k, v in st.get(key, {}).items():
                _add(acc, k, v)
        return acc

    first = shards[0]
    out = {"profile": first.get("profile"), "documents": sum(st["documents"] for st in shards),
           "characters": sum(st["characters"] for st in shards),
           "dropped": dict(sorted(added("dropped").items())), "repaired": dict(sorted(added("repaired").items())),
           "edits": dict(sorted(added("edits").items()))}
    # filtered_in keeps extract's key order (documents, characters), not sorted; absent in a pre-profile extract
    out["filtered_in"] = added("filtered_in")
    return out


def clean_sources(cfg: CorpusConfig, out_dir: Path, *, num_shards: int = 1, decontaminate: Sequence[Path] = (),
                  force: bool = False, overwrite: bool = False) -> Path:
    """The merge of a multi-source corpus: the sources in priority order (``cfg.sources``), each in source order;
    a document is dropped when it contains a text of the ``decontaminate`` files (reason ``decontaminated``), when
    an earlier document has its :func:`~koroberta.corpus.dedup.dedup_key` (``duplicate``; ``cfg.dedup``) or when it
    near-duplicates an earlier kept document (``near_duplicate``; ``cfg.near_dedup_on``). Earlier = a
    higher-priority source, or earlier in the same source: the first of a group survives. Every drop is written to
    ``excluded.jsonl`` (id, source, reason, what it matched); the stats count everything per source.

    ``num_shards`` > 1 (the SLURM array): every source's ``extract-<name>-IIIII-of-NNNNN/`` shards are interleaved
    back into source order by ``ord`` (shard ``i`` holds the pages with ``ord % n == i``) and their stats added up,
    so the documents reach the dedup in the one-machine order and the output is byte-identical to it."""
    from koroberta.corpus.decontaminate import Decontaminator, load_items
    from koroberta.corpus.dedup import ExactDedup, NearDedup, dedup_key

    names = [s["name"] for s in cfg.sources]
    if num_shards == 1:
        dirs = {n: [out_dir / f"extract-{n}"] for n in names}
        missing = [n for n in names if (read_manifest(dirs[n][0]) or {}).get("stage") != "corpus.extract"]
        if missing:
            raise InputError(f"extract of source {missing[0]!r} missing or incomplete",
                             path=out_dir / f"extract-{missing[0]}",
                             fix="run `koroberta corpus build --config FILE.yaml OUT_DIR`, which extracts every "
                                 "source")
    else:
        dirs = {n: _shard_dirs(out_dir, f"extract-{n}", num_shards, "corpus.extract", what=f"source {n!r} extract",
                               command="extract --config FILE.yaml OUT_DIR") for n in names}
    final = out_dir / "clean"
    conf = {**cfg.part(*CLEAN_FIELDS), "sources": names, "dedup_key": "dedup.normalize"}
    if decontaminate:  # its key shortens character runs since issue 22 part 2: a merge made before is redone
        conf["decontamination_key"] = "normalize+runs2"
    # keyed by directory name: one machine's keys (extract-<name>) stay what they were, so its clean stays complete
    inputs: dict[str, Path] = {d.name: d for n in names for d in dirs[n]}
    inputs.update({f"decontaminate.{i}": Path(p) for i, p in enumerate(decontaminate)})
    if not must_redo(final) and skip_if_complete(final, "corpus.clean", conf, inputs, force=force, log=log):
        return final
    from koroberta.resources import corpus_step_needs

    _step_starts("clean", [d for n in names for d in dirs[n]], out_dir,
                 lambda: corpus_step_needs(cfg, "clean", out_dir))
    check_dedup_memory(cfg, sum(read_manifest(d)["stats"]["documents"] for n in names for d in dirs[n]), final)
    items = load_items([Path(p) for p in decontaminate]) if decontaminate else []
    decon = Decontaminator(items) if items else None
    exact = ExactDedup() if cfg.dedup else None
    near = NearDedup() if cfg.near_dedup_on else None
    per: dict[str, dict[str, Any]] = {}
    drops: dict[str, int] = {}
    repairs: dict[str, int] = {}
    kept = chars = 0
    with StageOutput(final, stage="corpus.clean", config=conf, inputs=inputs, overwrite=overwrite) as st:
        with open(st.tmp / "docs.jsonl", "w", encoding="utf-8", newline="\n") as dj, \
                open(st.tmp / "excluded.jsonl", "w", encoding="utf-8", newline="\n") as ex:
            for name in names:
                es = _sum_extract_stats([read_manifest(d)["stats"] for d in dirs[name]])
                for k, v in es["dropped"].items():
                    _add(drops, k, v)
                for k, v in es["repaired"].items():
                    _add(repairs, k, v)
                edits = es["edits"]
                ps = per[name] = {
                    "profile": es["profile"], "in": es["filtered_in"],
                    "extracted": {"documents": es["documents"], "characters": es["characters"]},
                    "dropped": dict(es["dropped"]), "edits": edits,
                    "pii_replaced": sum(v for k, v in edits.items() if k.startswith("pii_")),
                    "duplicates_of": {}, "near_duplicates_of": {}, "decontaminated": 0,
                    "kept": {"documents": 0, "characters": 0}}
                shards = [_read_jsonl(d / "docs.jsonl") for d in dirs[name]]
                for rec in heapq.merge(*shards, key=lambda r: r["ord"]) if len(shards) > 1 else shards[0]:
                    text, why = rec["text"], None
                    hit = decon.match(text) if decon is not None else None
                    if hit is not None:
                        why = {"reason": "decontaminated", "matched": f"{hit.file}:{hit.line}", "text": text}
                        ps["decontaminated"] += 1
                    elif exact is not None and (first := exact.seen(dedup_key(text), rec["id"], name)) is not None:
                        why = {"reason": "duplicate", "of": first[1]}
                        _add(ps["duplicates_of"], first[0])
                    elif near is not None and (first := near.match(rec["id"], name, text)) is not None:
                        why = {"reason": "near_duplicate", "of": first[1], "text": text}
                        _add(ps["near_duplicates_of"], first[0])
                    if why is not None:
                        _add(drops, why["reason"])
                        _add(ps["dropped"], why["reason"])
                        ex.write(json.dumps({"id": rec["id"], "source": name, **why}, ensure_ascii=False) + "\n")
                        continue
                    dj.write(json.dumps({"id": rec["id"], "title": rec["title"], "text": text, "source": name},
                                        ensure_ascii=False) + "\n")
                    kept += 1
                    chars += len(text)
                    ps["kept"]["documents"] += 1
                    ps["kept"]["characters"] += len(text)
                ps["dropped"] = dict(sorted(ps["dropped"].items()))
        st.stats.update({"documents": kept, "characters": chars, "dropped": dict(sorted(drops.items())),
                         "repaired": dict(sorted(repairs.items())), "sources": per,
                         "decontamination": decon.stats() if decon is not None else None})
    log.info("clean: %d documents from %d sources, dropped %s", kept, len(names), drops)
    # the dedup indexes are the stage's largest memory, and datasketch's LSH holds reference cycles: dropping the
    # names does not free it, only the cyclic collector does. Collect now, before the kss step forks its workers,
    # which would otherwise carry it (bench/results/corpus_stage.md: the main process kept 100 % of the clean
    # step's growth after returning, 4 % after gc.collect()).
    del exact, near, decon
    gc.collect()
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


def _split_doc(task: tuple[int, str, str, str, str, str | None]) -> tuple[int, str, str, list[str], str | None]:
    idx, pid, title, text, backend, source = task
    return idx, pid, title, split_lines(text.split("\n"), backend), source


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
    """kss-split the documents of shard ``shard`` of ``clean/docs.jsonl`` (:func:`_read_jsonl_shard`: one shard reads
    all of it, several read a byte range each); writes ``sentences.jsonl`` with ``{"idx","id","sentences"}`` per
    document, ``idx`` its position in ``docs.jsonl`` (the split merges the shards by it; empty documents are kept
    as such)."""
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
    if num_shards > 1:  # byte ranges and byte-offset idx: a shard cut by line index % n (before) is redone
        conf["shard_by"] = "bytes"
    inputs = {"clean": clean_dir}
    if not must_redo(final) and skip_if_complete(final, "corpus.sentences", conf, inputs, force=force, log=log):
        return final
    from koroberta.resources import corpus_step_needs

    _step_starts("sentences", [clean_dir], out_dir,
                 lambda: corpus_step_needs(cfg, "sentences", out_dir, workers=workers, num_shards=num_shards))
    total = clean_manifest["stats"]["documents"]
    n_sent = n_docs = 0
    with StageOutput(final, stage="corpus.sentences", config=conf, inputs=inputs, overwrite=overwrite) as st:
        tasks = ((i, r["id"], r["title"], r["text"], cfg.backend, r.get("source"))
                 for i, r in _read_jsonl_shard(clean_dir / "docs.jsonl", shard, num_shards))
        # a byte range's document count is known once it is read
        bar = _progress(f"sentences {shard}/{num_shards} ({cfg.backend})", "doc",
                        total=total if num_shards == 1 else None)
        with open(st.tmp / "sentences.jsonl", "w", encoding="utf-8", newline="\n") as out, \
                _pool(workers, init_kss) as pool:
            results = pool.imap(_split_doc, tasks, chunksize=8) if pool else map(_split_doc, tasks)
            for idx, pid, title, sents, source in results:
                # the title travels with the sentences for split/hf/*.parquet (the .txt files have no place for it);
                # the source too, for the split's weights -- only in a multi-source corpus, so a single source's
                # bytes stay what they were
                rec = {"idx": idx, "id": pid, "title": title, "sentences": sents}
                if source is not None:
                    rec["source"] = source
                out.write(json.dumps(rec, ensure_ascii=False) + "\n")
                n_sent += len(sents)
                n_docs += 1
                bar.update(1)
        bar.close()
        st.stats.update({"documents": n_docs, "sentences": n_sent,
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


def train_copies(n: int, weight: float) -> tuple[int, int]:
    """How a source of ``weight`` with ``n`` train documents is written to train: ``k = floor(weight * n + 0.5)``
    documents (round half up: ``round`` would round 2.5 to 2), as ``(full, extra)``: every document ``full = k // n``
    times, and the ``extra = k - full * n`` top-ranked ones once more (ranked by :func:`train_rank`). Weight 0.5 of
    7 documents: (0, 4); weight 2: (2, 0); weight 1.5 of 3: (1, 2)."""
    if n <= 0:
        return 0, 0
    k = math.floor(weight * n + 0.5)
    return k // n, k - (k // n) * n


def train_rank(salt: str, source: str, doc_id: str) -> bytes:
    """The rank of a train document within its source for the weights: a hash of (salt, source, id), so which
    documents a weight keeps depends on neither order nor sharding, and differs from the split's own hash."""
    return hashlib.sha256(f"{salt}\0weight\0{source}\0{doc_id}".encode("utf-8")).digest()


def split(cfg: CorpusConfig, out_dir: str | Path, *, num_shards: int = 1, force: bool = False,
          overwrite: bool = False) -> Path:
    """Merge the sentence shards in document order and write ``train.txt``/``valid.txt``/``test.txt`` (one
    sentence per line, one blank line between documents, final newline), the same documents as a Hugging Face
    dataset in ``hf/{train,valid,test}.parquet`` (see :mod:`koroberta.corpus.parquet_out`), plus the report.

    A multi-source corpus (``cfg.sources``): valid/test are assigned by the document hash as for one source (never
    weighted); train writes each source's documents by its weight (:func:`train_copies`) in passes -- pass ``c``
    writes, in document order, every document with more than ``c`` copies -- so two copies of a document never sit
    side by side (an MLM block holding a document twice would let the model copy the masked tokens). The Parquet
    rows then carry ``source``, and the stats count documents per source and split."""
    from koroberta.corpus import parquet_out

    out_dir = Path(out_dir)
    check_corpus_dir(out_dir, overwrite=overwrite)
    shards = _shard_dirs(out_dir, "sentences", num_shards, "corpus.sentences")
    final = out_dir / "split"
    # the Parquet format version is part of the config: a split made before (or with another) hf/ is redone
    conf = {**cfg.part(*SPLIT_FIELDS), "backend": cfg.backend, "hf_parquet": parquet_out.FORMAT_VERSION}
    multi = bool(cfg.sources)
    if multi:
        conf["weights"] = {s["name"]: s["weight"] for s in cfg.sources}
        conf["per_source_valid"] = 1  # valid_<name>.txt: a split made before they existed is redone
    inputs = {f"sentences{i}": d for i, d in enumerate(shards)}
    if skip_if_complete(final, "corpus.split", conf, inputs, force=force, log=log):
        _prune(cfg, out_dir)
        return final
    from koroberta.resources import corpus_step_needs

    _step_starts("split", shards, out_dir, lambda: corpus_step_needs(cfg, "split", out_dir))
    clean_m = read_manifest(out_dir / "clean")
    extract_drops = (clean_m or {}).get("stats", {}).get("dropped", {})
    extract_repairs = (clean_m or {}).get("stats", {}).get("repaired", {})

    def records() -> Iterator[tuple[dict, str]]:
        for rec in heapq.merge(*(_read_jsonl(d / "sentences.jsonl") for d in shards), key=lambda r: r["idx"]):
            yield rec, assign_split(str(rec["id"]), cfg.split_salt, cfg.valid_fraction, cfg.test_fraction)

    copies: dict[str, tuple[int, int, set[str]]] = {}  # source -> (full, extra, ids written once more)
    per: dict[str, dict[str, Any]] = {}
    if multi:  # pass 0: each source's train documents, to rank them for its weight
        ranks: dict[str, list[tuple[bytes, str]]] = {s["name"]: [] for s in cfg.sources}
        for rec, part in records():
            if rec["sentences"] and part == "train":
                ranks[rec["source"]].append((train_rank(cfg.split_salt, rec["source"], str(rec["id"])),
                                             str(rec["id"])))
        for s in cfg.sources:
            full, extra = train_copies(len(ranks[s["name"]]), s["weight"])
            copies[s["name"]] = (full, extra, {i for _, i in sorted(ranks[s["name"]])[:extra]})
            per[s["name"]] = {"weight": s["weight"], "documents": {x: 0 for x in SPLITS}, "train_written": 0,
                              "characters": {x: 0 for x in SPLITS}}
    passes = max((full + (1 if extra else 0) for full, extra, _ in copies.values()), default=1)

    def n_copies(rec: dict) -> int:
        full, extra, more = copies[rec["source"]]
        return full + (1 if str(rec["id"]) in more else 0)

    docs = {s: 0 for s in SPLITS}
    sents = {s: 0 for s in SPLITS}
    chars = {s: 0 for s in SPLITS}
    empty_docs = 0
    doc_lens = sent_lens = None
    if cfg.report:
        from koroberta.corpus.report import LengthStats

        # streamed into fixed-size bucket counts: a list of Python ints per sentence (~36 bytes each, then sorted
        # copies and matplotlib's conversion) grew with the corpus, tens of millions of them at full kowiki
        doc_lens, sent_lens = LengthStats(), LengthStats()
    with StageOutput(final, stage="corpus.split", config=conf, inputs=inputs, overwrite=overwrite) as st:
        files = {s: open(st.tmp / f"{s}.txt", "w", encoding="utf-8", newline="\n") for s in SPLITS}
        # each source's own valid documents (the same ones, in the same order, as in valid.txt), so that training
        # can report a loss per domain (fairseq subset valid_<name>)
        files.update({f"valid_{n}": open(st.tmp / f"valid_{n}.txt", "w", encoding="utf-8", newline="\n")
                      for n in per})
        src_docs = {n: 0 for n in per}
        (st.tmp / "hf").mkdir()
        tables = {s: parquet_out.SplitParquetWriter(st.tmp / "hf" / f"{s}.parquet", with_source=multi)
                  for s in SPLITS}
        try:
            for c in range(passes):
                for rec, part in records():
                    ss = rec["sentences"]
                    if not ss:
                        if c == 0:
                            empty_docs += 1
                        continue
                    if c > 0 and part != "train":
                        continue  # valid/test: written once, in pass 0
                    lens = [len(s) for s in ss]
                    if multi:
                        ps = per[rec["source"]]
                        if c == 0:  # each document counted once per split, whatever its copies
                            ps["documents"][part] += 1
                            ps["characters"][part] += sum(lens)
                        if part == "train":
                            if n_copies(rec) <= c:
                                continue
                            ps["train_written"] += 1
                    f = files[part]
                    f.write(("\n" if docs[part] else "") + "\n".join(ss) + "\n")
                    if multi and part == "valid":
                        name = rec["source"]
                        files[f"valid_{name}"].write(("\n" if src_docs[name] else "") + "\n".join(ss) + "\n")
                        src_docs[name] += 1
                    docs[part] += 1
                    sents[part] += len(ss)
                    chars[part] += sum(lens)
                    # a sentence shard written before titles were recorded has none: the title is then null
                    tables[part].add(str(rec["id"]), rec.get("title"), ss, sum(lens), source=rec.get("source"))
                    if cfg.report:
                        doc_lens.add(sum(lens))
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
        if multi:
            # documents per split count each document once; train_written counts train's copies (the weight)
            st.stats["sources"] = per
        if cfg.report:
            from koroberta.corpus.report import write_report

            write_report(st.tmp, st.stats, doc_lens, sent_lens,
                         clean_sources=(clean_m or {}).get("stats", {}).get("sources") if multi else None)
    log.info("split: documents %s, sentences %s", docs, sents)
    _prune(cfg, out_dir)
    return final


def _prune(cfg: CorpusConfig, out_dir: Path) -> None:
    """The whole stage is complete once split/ is: its intermediates go unless the user keeps them
    (:mod:`koroberta.corpus.prune`)."""
    if not cfg.keep_intermediates:
        prune_intermediates(out_dir)
