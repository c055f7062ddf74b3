"""``koroberta corpus download``: fetch a dated ``<wiki>-<date>-pages-articles.xml.bz2``, resumably, SHA-1 verified
(``--multistream``: ``...-pages-articles-multistream.xml.bz2`` and its ``...-multistream-index.txt.bz2``, from the
``articlesmultistreamdump`` job of the same run, each fetched and verified the same way).

The layout of dumps.wikimedia.org (mirrors copy it under their own root, ``--base-url``)::

    {base}/{wiki}/                                   HTML index: one link per dump directory (20261101/, ..., latest/)
    {base}/{wiki}/{date}/dumpstatus.json             per-job status ("done", "in-progress", ...), file sizes, hashes
    {base}/{wiki}/{date}/{wiki}-{date}-sha1sums.txt  "<sha1>  <file name>" per line
    {base}/{wiki}/{date}/{wiki}-{date}-pages-articles.xml.bz2
    {base}/{wiki}/latest/{wiki}-latest-pages-articles.xml.bz2-rss.xml   its <item><link> names the dated directory

``--date latest`` is resolved to a concrete date first (the rss feed, else the newest directory in the index whose
``dumpstatus.json`` says the articles job is done). We never download ``latest/``'s own file: its name appears in
no checksum list, ``latest`` moves while a transfer is being resumed, and a dated name says which dump a corpus was
built from. A dump whose articles job is not "done" is refused.

Checksums come from the server we download from (``dumpstatus.json``, then ``sha1sums.txt``); a mirror that publishes
none is checked against ``--checksum-base-url`` (default: the main server). With no SHA-1 anywhere the download is
refused: skipping the check takes an explicit ``verify=False`` (``--no-verify``), which is logged as a warning.

The body goes to ``NAME.part``; a cut transfer is resumed with an HTTP ``Range`` request, a server that ignores Range
(200 instead of 206) makes us start over rather than append a second copy. Connection errors and 429/5xx answers are
retried with exponential backoff by urllib3's ``Retry``. The file is renamed into place only after its size and
SHA-1 match; a mismatch deletes the ``.part`` (resuming cannot repair it). ``NAME.json`` next to the dump records
the resolved date, size, SHA-1 and where the checksum came from; a rerun that finds a verified file downloads
nothing.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import os
import re
import sys
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from koroberta.artifacts import file_digest, read_json, write_json
from koroberta.errors import ConfigError, DependencyError, DownloadError, OutputError

log = logging.getLogger("koroberta.corpus")

DEFAULT_BASE_URL = "https://dumps.wikimedia.org"
USER_AGENT = "koroberta-corpus/1.0 (Korean RoBERTa corpus download; python-requests)"
_CHUNK = 1 << 20
# urllib3 Retry: these answers mean "try again later" (429: Wikimedia's per-IP connection limit; 5xx: overload or a
# restarting backend). 404 and friends are final and surface at once.
_RETRY_STATUSES = (429, 500, 502, 503, 504)
# the dump job that writes pages-articles; bigger wikis split it and add "articlesdumprecombine" for the single file
_ARTICLE_JOBS = ("articlesdump", "articlesdumprecombine")
# the job that writes the multistream dump and its index (both files in one job); "...recombine" as above
_MULTISTREAM_JOBS = ("articlesmultistreamdump", "articlesmultistreamdumprecombine")
#: the files of a dump run we fetch: kind -> file name suffix after ``<wiki>-<date>-``
_SUFFIX = {"articles": "pages-articles.xml.bz2", "multistream": "pages-articles-multistream.xml.bz2",
           "multistream-index": "pages-articles-multistream-index.txt.bz2"}


# -- arguments ------------------------------------------------------------------------------------------------------
def dump_name(wiki: str, date: str, kind: str = "articles") -> str:
    """The file name of a dump file: ``kind`` ``articles`` (one bz2 stream), ``multistream`` (the same XML as
    streams of 100 pages, which the SLURM array's extract shards read apart) or ``multistream-index`` (its index,
    named as :func:`koroberta.corpus.multistream.index_for` finds it)."""
    return f"{wiki}-{date}-{_SUFFIX[kind]}"


def check_args(wiki: str, date: str, *base_urls: str) -> None:
    """ConfigError for a value that cannot name a dump, before any network traffic."""
    if not re.fullmatch(r"[a-z][a-z0-9_]*", wiki or ""):
        raise ConfigError(f"--wiki {wiki!r} is not a wiki database name (lowercase letters, digits, _)",
                          fix="use e.g. --wiki kowiki")
    if "wik" not in wiki:  # every Wikimedia database name does: kowiki, kowiktionary, kowikisource, commonswiki
        raise ConfigError(f"--wiki {wiki!r} is a language code, not a wiki database name", fix=f"use --wiki {wiki}wiki")
    if date != "latest":
        try:
            ok = bool(re.fullmatch(r"\d{8}", date)) and _dt.datetime.strptime(date, "%Y%m%d").year >= 2001
        except ValueError:
            ok = False
        if not ok:
            raise ConfigError(f"--date {date!r} must be a dump date YYYYMMDD or 'latest'",
                              fix="e.g. --date latest or --date 20261101 (see the dates under <base-url>/<wiki>/)")
    for url in base_urls:
        if not re.match(r"https?://[^/\s]+", url or ""):
            raise ConfigError(f"{url!r} is not an http(s) URL", fix="e.g. --base-url https://dumps.wikimedia.org")


# -- HTTP -------------------------------------------------------------------------------------------------------------
def _requests():
    try:
        import requests
        from requests.adapters import HTTPAdapter
        from urllib3.util.retry import Retry
    except ImportError as e:
        raise DependencyError(f"`koroberta corpus download` needs requests/urllib3 ({e})",
                              fix="pip install requests") from None
    return requests, HTTPAdapter, Retry


def make_session(retries: int = 5, backoff_factor: float = 1.0):
    """A requests session whose every request is retried by urllib3 (connection errors, 429/5xx) with exponential
    backoff (backoff_factor * 2**(n-1) seconds, Retry-After honoured). A body cut *after* the headers is not urllib3's
    to retry on a streamed response; :func:`_transfer` resumes those from the .part file."""
    requests, HTTPAdapter, Retry = _requests()
    retry = Retry(total=retries, connect=retries, read=retries, status=retries, backoff_factor=backoff_factor,
                  status_forcelist=_RETRY_STATUSES, allowed_methods=frozenset({"GET", "HEAD"}),
                  respect_retry_after_header=True,
                  raise_on_status=False)  # hand back the last 5xx so the error names its status, not "RetryError"
    s = requests.Session()
    adapter = HTTPAdapter(max_retries=retry)
    s.mount("http://", adapter)
    s.mount("https://", adapter)
    s.headers["User-Agent"] = USER_AGENT  # Wikimedia's policy asks for an identifying agent and blocks blank ones
    return s


def _reason(e: BaseException) -> str:
    """The innermost cause of a requests/urllib3 error, in one line (their str() nests whole reprs)."""
    msg = str(getattr(e, "reason", None) or e)
    for pat in (r"Failed to establish a new connection: \[Errno -?\d+\] ([^'\")]+)", r"\[Errno -?\d+\] ([^'\")]+)",
                r"(Read timed out)", r"(Max retries exceeded)", r"(Connection broken: [^'\"(]+)"):
        m = re.search(pat, msg)
        if m:
            return m.group(1).strip().rstrip(",")
    return msg.splitlines()[0][:200] if msg else type(e).__name__


@dataclass
class _Server:
    """One dump server (the download base, or the checksum base); caches what it fetched."""

    session: Any
    base: str
    timeout: Any

    def __post_init__(self) -> None:
        self.base = self.base.rstrip("/")
        self._cache: dict[str, str | None] = {}

    def url(self, *parts: str) -> str:
        return "/".join([self.base, *parts])

    def text(self, url: str) -> str | None:
        """Body of a small file; None when the server says it is not there (404/410)."""
        if url in self._cache:
            return self._cache[url]
        requests, _, _ = _requests()
        log.debug("GET %s", url)
        try:
            r = self.session.get(url, timeout=self.timeout, headers={"Accept-Encoding": "identity"})
        except requests.RequestException as e:
            raise DownloadError(f"{url}: {_reason(e)} (after retries)",
                                fix="check the network, or use another mirror with --base-url") from None
        with r:
            if r.status_code in (404, 410):
                self._cache[url] = None
                return None
            if r.status_code != 200:
                raise DownloadError(f"{url}: HTTP {r.status_code} {r.reason}",
                                    fix="try again later, or use another mirror with --base-url")
            r.encoding = r.encoding or "utf-8"
            self._cache[url] = r.text
        return self._cache[url]

    def dates(self, wiki: str) -> list[str] | None:
        """Dump dates linked from the wiki's index page, oldest first; None if the wiki has no directory here."""
        html = self.text(self.url(wiki, ""))
        if html is None:
            return None
        # the index is a plain autoindex page: dump directories are the 8-digit hrefs ("latest/" and "../" are not)
        return sorted(set(re.findall(r'href="(?:\./)?(\d{8})/?"', html)))

    def status_doc(self, wiki: str, date: str) -> tuple[dict | None, str]:
        url = self.url(wiki, date, "dumpstatus.json")
        text = self.text(url)
        if text is None:
            return None, url
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as e:
            raise DownloadError(f"{url}: not valid JSON ({e.msg} at line {e.lineno})",
                                fix="the mirror may be mid-sync; retry later or use another --base-url") from None
        return (doc if isinstance(doc, dict) else None), url

    def rss_date(self, wiki: str, suffix: str = "pages-articles.xml.bz2") -> str | None:
        """The dated directory ``latest`` points at, from the rss feed of the file ``suffix`` (its name after
        ``<wiki>-latest-``); None if absent/unreadable."""
        url = self.url(wiki, "latest", f"{wiki}-latest-{suffix}-rss.xml")
        text = self.text(url)
        if text is None:
            return None
        try:
            root = ET.fromstring(text)
        except ET.ParseError as e:
            log.debug("%s: unreadable rss (%s); using the index instead", url, e)
            return None
        for link in root.iter("link"):
            # the channel's own link is .../latest/; the item's link is .../<wiki>/<date> (always the main server's
            # host, even on a mirror: only the date is taken from it)
            m = re.search(rf"/{re.escape(wiki)}/(\d{{8}})/?$", (link.text or "").strip())
            if m:
                return m.group(1)
        return None

    def sha1_from_sums(self, wiki: str, date: str, name: str) -> tuple[str | None, str]:
        url = self.url(wiki, date, f"{wiki}-{date}-sha1sums.txt")
        text = self.text(url)
        for line in (text or "").splitlines():
            parts = line.split()
            if len(parts) == 2 and parts[1].lstrip("*") == name and re.fullmatch(r"[0-9a-fA-F]{40}", parts[0]):
                return parts[0].lower(), url
        return None, url


def _file_entry(doc: dict | None, name: str,
                fallback: tuple[str, ...] = _ARTICLE_JOBS) -> tuple[str | None, dict | None]:
    """(status of the job listing ``name``, else of the ``fallback`` job -- the one that writes it; the file's entry
    or None)."""
    jobs = (doc or {}).get("jobs") or {}
    if not isinstance(jobs, dict):
        return None, None
    for job in jobs.values():
        files = (job or {}).get("files") or {}
        if isinstance(files, dict) and isinstance(files.get(name), dict):
            return job.get("status"), files[name]
    for key in fallback:  # a dump in progress lists no files for jobs that have not run yet
        if isinstance(jobs.get(key), dict):
            return jobs[key].get("status"), None
    return None, None


@dataclass
class _Dump:
    wiki: str
    date: str
    resolved_from: str
    status: str | None = None
    status_url: str | None = None
    size: int | None = None
    entry: dict | None = None
    kind: str = "articles"

    @property
    def name(self) -> str:
        return dump_name(self.wiki, self.date, self.kind)

    @property
    def jobs(self) -> tuple[str, ...]:
        return _ARTICLE_JOBS if self.kind == "articles" else _MULTISTREAM_JOBS


def _status_doc(main: _Server, csum: _Server, wiki: str, date: str) -> tuple[dict | None, str | None]:
    """dumpstatus.json from the download server, else from the checksum server (a mirror may not copy it: the
    status of a dump run is the same wherever its files are served)."""
    doc, url = main.status_doc(wiki, date)
    if doc is not None or csum is main:
        return doc, (url if doc is not None else None)
    try:
        doc, url = csum.status_doc(wiki, date)
    except DownloadError as e:
        log.debug("no dumpstatus from %s: %s", csum.base, e)
        return None, None
    return doc, (url if doc is not None else None)


def _not_there(main: _Server, wiki: str, date: str) -> DownloadError:
    dates = main.dates(wiki)
    if dates is None:
        return DownloadError(f"{main.url(wiki, '')}: not found: no wiki {wiki!r} on this server",
                             fix="check --wiki (a database name such as kowiki) and --base-url")
    return DownloadError(f"{wiki}: no dump dated {date} at {main.url(wiki, '')} (dates there: "
                         f"{', '.join(dates) or 'none'})", fix="pass one of those dates with --date, or --date latest")


def _describe(main: _Server, csum: _Server, wiki: str, date: str, resolved_from: str,
              kind: str = "articles") -> _Dump:
    """Status and size of one file (``kind``, see :func:`dump_name`) of a dated dump; refuses a dump that is not
    finished or not on the server."""
    dump = _Dump(wiki, date, resolved_from, kind=kind)
    doc, dump.status_url = _status_doc(main, csum, wiki, date)
    if doc is None:
        dates = main.dates(wiki)
        if dates is None or date not in dates:
            raise _not_there(main, wiki, date)
        # an old dump or a partial mirror without dumpstatus.json: a published checksum then shows the file is done
        log.warning("%s: no dumpstatus.json; relying on the published checksum to show the dump is complete",
                    main.url(wiki, date, ""))
        return dump
    dump.status, dump.entry = _file_entry(doc, dump.name, dump.jobs)
    if dump.status != "done":
        raise DownloadError(f"{wiki} dump {date} is not finished ({dump.jobs[0]} job status {dump.status!r} in "
                            f"{dump.status_url})", fix="use --date latest (the newest finished dump) or an earlier "
                            f"date from {main.url(wiki, '')}")
    if dump.entry is None:
        raise DownloadError(f"{dump.status_url}: lists no {dump.name} (the articles dump may be split into parts)",
                            fix="use a wiki/date that has a single pages-articles.xml.bz2 file")
    size = dump.entry.get("size")
    dump.size = int(size) if isinstance(size, int) and size > 0 else None
    return dump


def _resolve_latest(main: _Server, csum: _Server, wiki: str, kind: str = "articles") -> _Dump:
    """``latest`` -> the newest finished dated dump of ``kind``: the rss feed first (it is what ``latest/`` points
    at), else the index scanned newest first for a dumpstatus.json whose job for that file is done."""
    jobs = _Dump(wiki, "", "", kind=kind).jobs
    rss = main.rss_date(wiki, _SUFFIX[kind])
    if rss is not None:
        doc, url = _status_doc(main, csum, wiki, rss)
        status = _file_entry(doc, dump_name(wiki, rss, kind), jobs)[0] if doc is not None else None
        if doc is None or status == "done":
            log.info("%s latest = %s (from the rss feed of %s)", wiki, rss, main.url(wiki, "latest", ""))
            return _describe(main, csum, wiki, rss, "rss", kind)
        log.warning("%s: the rss feed names %s but its articles job is %r; looking for the newest finished dump",
                    wiki, rss, status)
    dates = main.dates(wiki)
    if dates is None:
        raise _not_there(main, wiki, "latest")
    seen = []
    for date in reversed(dates):
        doc, _ = _status_doc(main, csum, wiki, date)
        status = _file_entry(doc, dump_name(wiki, date, kind), jobs)[0] if doc is not None else "no dumpstatus.json"
        if status == "done":
            log.info("%s latest = %s (newest finished dump in %s)", wiki, date, main.url(wiki, ""))
            return _describe(main, csum, wiki, date, "index+dumpstatus", kind)
        seen.append(f"{date}: {status}")
    raise DownloadError(f"{wiki}: no finished dump at {main.url(wiki, '')} ({'; '.join(seen) or 'no dates'})",
                        fix="pass the date of a finished dump with --date YYYYMMDD")


def _published_sha1(main: _Server, csum: _Server, dump: _Dump) -> tuple[str, str]:
    """(sha1, where it came from). The download server's own dumpstatus/sha1sums first, then the checksum server's;
    refuses when none has one — an unverifiable dump is never accepted silently."""
    tried = []
    for server in (main, csum) if csum is not main else (main,):
        try:
            doc, status_url = server.status_doc(dump.wiki, dump.date)
            sha1 = str((_file_entry(doc, dump.name)[1] or {}).get("sha1") or "").lower()
            if re.fullmatch(r"[0-9a-f]{40}", sha1):
                return sha1, status_url
            tried.append(status_url)
            sha1, sums_url = server.sha1_from_sums(dump.wiki, dump.date, dump.name)
            if sha1:
                return sha1, sums_url
            tried.append(sums_url)
        except DownloadError as e:
            if server is main:
                raise
            tried.append(f"{server.base} ({str(e).split(' — fix:')[0]})")
    raise DownloadError(f"no published SHA-1 for {dump.name}: looked in {', '.join(tried)}",
                        fix="point --checksum-base-url at a server that publishes checksums for this dump "
                            "(e.g. https://dumps.wikimedia.org), or use another --base-url mirror")


# -- the transfer -----------------------------------------------------------------------------------------------------
class _Progress:
    """Bytes, rate and ETA: a tqdm bar on a terminal; a log line every ``every`` seconds otherwise (a bar's carriage
    returns would turn a batch job's log into one endless line)."""

    def __init__(self, name: str, total: int | None, initial: int, every: float = 30.0):
        from koroberta.progress import progress_bar

        self.tty = sys.stderr.isatty()
        self.name, self.total, self.initial, self.n = name, total, initial, initial
        self.every, self.t0 = every, time.monotonic()
        self.last = self.t0
        self.bar = progress_bar(name, "B", total=total, initial=initial, enabled=self.tty)

    def sync(self, have: int) -> None:
        """Follow the .part after a restart from byte 0 (the rate and ETA start afresh)."""
        if have != self.n:
            self.bar.reset(total=self.total)
            self.bar.update(have)
            self.n = self.initial = have
            self.t0 = self.last = time.monotonic()

    def update(self, k: int) -> None:
        self.bar.update(k)
        self.n += k
        now = time.monotonic()
        if not self.tty and now - self.last >= self.every:
            self.last = now
            elapsed = now - self.t0
            rate = (self.n - self.initial) / elapsed if elapsed > 0 else None
            log.info("%s", self.bar.format_meter(self.n, self.total, elapsed, prefix=self.name, unit="B",
                                                   unit_scale=True, unit_divisor=1024, rate=rate, ncols=0))

    def close(self) -> None:
        self.bar.close()


def _content_range_start(value: str | None) -> int | None:
    m = re.fullmatch(r"\s*bytes\s+(\d+)-\d+/(?:\d+|\*)\s*", value or "")
    return int(m.group(1)) if m else None


def _transfer(session, url: str, part: Path, size: int | None, timeout, max_resumes: int,
              backoff_factor: float) -> None:
    """Fill ``part`` with the body of ``url``, resuming what is already there. Returns when the server has sent
    everything (the caller verifies); raises DownloadError when the connection keeps failing."""
    requests, _, Retry = _requests()
    from urllib3.exceptions import HTTPError as Urllib3Error, MaxRetryError, ProtocolError

    # errors of the *reading* side only (writes are handled apart: a full disk is not a network problem)
    network_errors = (requests.RequestException, Urllib3Error, OSError)
    # A cut mid-body comes after urllib3 handed us the response, so its adapter Retry cannot see it. Resumes get
    # their own urllib3 Retry: the same exponential backoff, a budget of ``max_resumes`` cuts in a row without new
    # bytes (a long transfer over a flaky link may need many resumes, each of which makes progress).
    fresh = Retry(total=max_resumes, backoff_factor=backoff_factor)
    resume, best = fresh, -1
    progress: _Progress | None = None
    try:
        while True:
            have = part.stat().st_size if part.is_file() else 0
            if size is not None and have > size:  # longer than the published size: not a prefix of this file
                log.warning("%s: %s bytes, more than the published %s; starting over", part, f"{have:,}", f"{size:,}")
                part.unlink()
                have = 0
            if size is not None and have == size:
                return
            # identity: a transparently gzipped body would make byte offsets (Range, .part size) meaningless
            headers = {"Accept-Encoding": "identity"}
            if have:
                headers["Range"] = f"bytes={have}-"
            log.info("downloading %s%s", url, f" (resuming at byte {have:,})" if have else "")
            try:
                r = session.get(url, headers=headers, stream=True, timeout=timeout)
            except requests.RequestException as e:
                raise DownloadError(f"{url}: {_reason(e)} (after retries; {have:,} bytes kept in {part})",
                                    fix="check the network or use another --base-url mirror, then rerun the same "
                                        "command: it resumes from the .part file") from None
            cut: BaseException | None = None
            total = size
            with r:
                if r.status_code == 416 and have:
                    return  # nothing past our last byte: the .part is the whole file (verification decides)
                if r.status_code not in (200, 206):
                    raise DownloadError(f"{url}: HTTP {r.status_code} {r.reason}",
                                        fix="try again later, or use another --base-url mirror")
                if r.status_code == 200 and have:
                    log.warning("%s: the server ignored the Range request (HTTP 200, not 206); restarting from "
                                "byte 0 instead of appending a second copy", url)
                    have = 0
                elif r.status_code == 206 and _content_range_start(r.headers.get("Content-Range")) != have:
                    # not the bytes we asked for: appending them would corrupt the file
                    cut = ProtocolError(f"Range bytes={have}- answered with {r.headers.get('Content-Range')!r}")
                    part.unlink()
                if cut is None:
                    length = r.headers.get("Content-Length")
                    if total is None and length and length.isdigit():
                        total = have + int(length)
                    if progress is None:
                        progress = _Progress(part.name[:-len(".part")], total, have)
                    progress.sync(have)
                    cut = _receive(r, part, have, progress, network_errors)
            got = part.stat().st_size if part.is_file() else 0
            if cut is None and (total is None or got >= total):
                return
            if cut is None:
                cut = ProtocolError(f"the server closed the connection after {got:,} of {total:,} bytes")
            if got > best:  # new bytes: the budget starts afresh
                resume, best = fresh, got
            try:
                resume = resume.increment(method="GET", url=url, error=cut)
            except MaxRetryError:
                raise DownloadError(f"{url}: connection lost {max_resumes + 1} times in a row without new data "
                                    f"({_reason(cut)}); {got:,} bytes kept in {part}",
                                    fix="rerun the same command later: it resumes from the .part file (or use "
                                        "another --base-url mirror)") from None
            log.warning("%s: connection lost after %s bytes (%s); resuming with a Range request",
                        url, f"{got:,}", _reason(cut))
            resume.sleep()
    finally:
        if progress is not None:
            progress.close()


def _receive(r, part: Path, have: int, progress: _Progress, network_errors) -> BaseException | None:
    """Append the response body to ``part`` (or write it from byte 0 when ``have`` is 0); returns the error that
    cut the connection, None when the body ended normally."""
    try:
        f = open(part, "ab" if have else "wb")
    except OSError as e:
        raise OutputError(f"{part}: cannot write ({e.strerror})", fix="check the output directory") from None
    # read1 hands over whatever has arrived (up to _CHUNK): when the connection drops, everything received so far is
    # already in the .part. requests' iter_content waits to fill a whole chunk and drops it with the IncompleteRead,
    # losing up to a chunk per cut. decode_content=False: the raw bytes of the file are what the SHA-1 is about.
    read = getattr(r.raw, "read1", None) or r.raw.read  # urllib3 < 2.1 has no read1
    with f:
        while True:
            try:
                block = read(_CHUNK, decode_content=False)
            except network_errors as e:  # connection cut mid-body: keep what arrived, the caller resumes
                return e
            if not block:
                return None
            try:
                f.write(block)
            except OSError as e:
                raise OutputError(f"{part}: cannot write ({e.strerror})", fix="free disk space (or choose another "
                                  "directory) and rerun: it resumes from the .part file") from None
            progress.update(len(block))


# -- the sidecar ------------------------------------------------------------------------------------------------------
def sidecar_path(dump_file: str | Path) -> Path:
    p = Path(dump_file)
    return p.with_name(p.name + ".json")


def _verified_record(final: Path) -> dict | None:
    """The sidecar of ``final`` if it records a verified download of exactly this file's size, else None."""
    side = sidecar_path(final)
    if not (final.is_file() and side.is_file()):
        return None
    try:
        rec = read_json(side)
    except (OSError, ValueError):
        return None
    if not (isinstance(rec, dict) and rec.get("sha1_verified") is True and rec.get("file") == final.name
            and rec.get("bytes") == final.stat().st_size):
        return None
    return rec


def _recheck(final: Path, rec: dict) -> Path:
    """A verified download is re-hashed (seconds, no network) so a file changed on disk since is not trusted."""
    got = file_digest(final, "sha1")
    if got != rec.get("sha1"):
        raise DownloadError(f"{final}: SHA-1 {got} differs from {rec.get('sha1')} recorded when it was verified "
                            f"({sidecar_path(final).name}); the file changed on disk",
                            fix=f"delete {final} and {sidecar_path(final)} and run the download again")
    log.info("%s: already downloaded; SHA-1 matches %s (%s)", final, rec.get("checksum_source"), rec.get("date"))
    return final


def _write_sidecar(final: Path, dump: _Dump, url: str, sha1: str, source: str | None, requested: str) -> None:
    write_json(sidecar_path(final), {
        "wiki": dump.wiki,
        "date": dump.date,
        "requested_date": requested,
        "resolved_from": dump.resolved_from,
        "file": final.name,
        "bytes": final.stat().st_size,
        "sha1": sha1,
        "sha1_verified": source is not None,
        "checksum_source": source,
        "url": url,
    })


# -- entry point ------------------------------------------------------------------------------------------------------
def download_dump(wiki: str = "kowiki", date: str = "latest", out_dir: str | Path = ".", *,
                  base_url: str = DEFAULT_BASE_URL, checksum_base_url: str = DEFAULT_BASE_URL, verify: bool = True,
                  retries: int = 5, backoff_factor: float = 1.0, timeout: float | tuple[float, float] = (30.0, 120.0),
                  max_resumes: int = 10, multistream: bool = False) -> Path:
    """Download (or resume) ``<wiki>-<date>-pages-articles.xml.bz2`` into ``out_dir``, verify its SHA-1, write the
    ``.json`` sidecar and return the file's path. ``date`` is ``YYYYMMDD`` or ``latest`` (resolved to the newest
    finished dump). A file already verified here is re-hashed and returned without downloading anything.

    ``multistream``: the ``...-pages-articles-multistream.xml.bz2`` dump (the same pages, as bz2 streams of 100)
    and its ``...-multistream-index.txt.bz2``, both from the same dump run, each resumed and verified the same way;
    returns the dump's path. With the index next to it, each extract shard of a SLURM array decodes only its own
    streams (:mod:`koroberta.corpus.multistream`)."""
    check_args(wiki, date, base_url, checksum_base_url)
    if retries < 0 or max_resumes < 0:
        raise ConfigError(f"--retries {retries} / max_resumes {max_resumes} must be >= 0", fix="e.g. --retries 5")
    _requests()  # a missing dependency is reported before anything is created
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OutputError(f"{out}: cannot create the download directory ({e.strerror})",
                          fix="choose a writable directory") from None
    kinds = ("multistream", "multistream-index") if multistream else ("articles",)
    if date != "latest":  # a dated dump never changes: files verified earlier need no network at all
        recs = [(out / dump_name(wiki, date, k), _verified_record(out / dump_name(wiki, date, k))) for k in kinds]
        if all(rec is not None for _, rec in recs):
            return [_recheck(f, rec) for f, rec in recs][0]  # type: ignore[arg-type]
    if not verify:
        log.warning("--no-verify: the dump will NOT be checked against a published SHA-1; a corrupt or truncated "
                    "file will only show up when extract fails on it")
    with make_session(retries, backoff_factor) as session:
        main = _Server(session, base_url, timeout)
        csum = main if checksum_base_url.rstrip("/") == main.base else _Server(session, checksum_base_url, timeout)
        dump = (_resolve_latest(main, csum, wiki, kinds[0]) if date == "latest" else
                _describe(main, csum, wiki, date, "--date", kinds[0]))
        # the index comes from the dump's own run (the date just resolved): an index of another run does not fit
        files = [dump] + [_describe(main, csum, wiki, dump.date, dump.resolved_from, k) for k in kinds[1:]]
        return [_fetch(session, main, csum, f, out, verify=verify, requested=date, timeout=timeout,
                       max_resumes=max_resumes, backoff_factor=backoff_factor) for f in files][0]


def _fetch(session, main: _Server, csum: _Server, dump: _Dump, out: Path, *, verify: bool, requested: str, timeout,
           max_resumes: int, backoff_factor: float) -> Path:
    """One described file into ``out``: returned at once when verified before, else resumed from its ``.part``,
    checked against the published size and SHA-1, renamed into place and recorded in its sidecar."""
    final, part = out / dump.name, out / (dump.name + ".part")
    url = main.url(dump.wiki, dump.date, dump.name)  # not dumpstatus's "url": it is relative to the main server's root
    rec = _verified_record(final)
    if rec is not None:
        return _recheck(final, rec)
    expected, source = _published_sha1(main, csum, dump) if verify else (None, None)
    if final.is_file():  # downloaded before the sidecar existed (or by hand): verify it like a fresh download
        got = file_digest(final, "sha1")
        if expected is not None and got != expected:
            raise DownloadError(f"{final}: SHA-1 {got} does not match the published {expected} ({source})",
                                fix=f"delete {final} and run the download again")
        _write_sidecar(final, dump, url, got, source, requested)
        log.info("%s: already downloaded%s", final, f"; SHA-1 matches {source}" if expected else "")
        return final
    _transfer(session, url, part, dump.size, timeout, max_resumes, backoff_factor)
    got_size = part.stat().st_size
    if dump.size is not None and got_size != dump.size:
        part.unlink()
        raise DownloadError(f"{part}: {got_size:,} bytes but {dump.status_url} says {dump.size:,}; the partial file "
                            f"was deleted", fix="run the download again (or use another --base-url mirror)")
    log.info("%s: computing SHA-1 of %s bytes", part, f"{got_size:,}")
    got = file_digest(part, "sha1")
    if expected is not None and got != expected:
        part.unlink()  # resuming cannot repair a wrong byte somewhere in the middle
        raise DownloadError(f"{final}: SHA-1 {got} does not match the published {expected} ({source}); the "
                            f"downloaded .part was deleted", fix="run the download again (or use another --base-url "
                                                                 "mirror)")
    os.replace(part, final)
    _write_sidecar(final, dump, url, got, source, requested)
    if expected is not None:
        log.info("%s: %s bytes, SHA-1 %s verified against %s", final, f"{got_size:,}", got, source)
    else:
        log.warning("%s: %s bytes, SHA-1 %s NOT verified (--no-verify)", final, f"{got_size:,}", got)
    return final
