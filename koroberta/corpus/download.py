"""``koroberta corpus download``: fetch ``<wiki>-<date>-pages-articles.xml.bz2`` with resume and SHA-1 check.

Layout on dumps.wikimedia.org (and its mirrors)::

    {base_url}/{wiki}/{date}/{wiki}-{date}-pages-articles.xml.bz2
    {base_url}/{wiki}/{date}/{wiki}-{date}-sha1sums.txt        "<sha1>  <file name>" per line

``date`` may be ``latest`` (the files are then named ``{wiki}-latest-...``). A partial download is kept as
``NAME.part`` and resumed with an HTTP ``Range`` request; a server that ignores Range (200 instead of 206) makes
us start over rather than append a second copy. The file is renamed into place only after its SHA-1 matches the
published checksum; a mismatch deletes the ``.part`` (it cannot be repaired by resuming) and raises.
"""

from __future__ import annotations

import logging
import os
import re
import urllib.error
import urllib.request
from pathlib import Path

from koroberta.artifacts import file_digest
from koroberta.errors import ConfigError, DownloadError

log = logging.getLogger("koroberta.corpus")

DEFAULT_BASE_URL = "https://dumps.wikimedia.org"
_CHUNK = 1 << 20


def dump_urls(wiki: str, date: str, base_url: str = DEFAULT_BASE_URL) -> tuple[str, str, str]:
    """(dump URL, sha1sums URL, dump file name)."""
    if not re.fullmatch(r"[a-z0-9_]+", wiki):
        raise ConfigError(f"--wiki {wiki!r} is not a wiki database name", fix="use e.g. kowiki")
    if date != "latest" and not re.fullmatch(r"\d{8}", date):
        raise ConfigError(f"--date {date!r} must be YYYYMMDD or 'latest'", fix="e.g. --date 20250601")
    base = base_url.rstrip("/")
    name = f"{wiki}-{date}-pages-articles.xml.bz2"
    return f"{base}/{wiki}/{date}/{name}", f"{base}/{wiki}/{date}/{wiki}-{date}-sha1sums.txt", name


def _open(url: str, headers: dict[str, str] | None = None, timeout: float = 60.0):
    req = urllib.request.Request(url, headers={"User-Agent": "koroberta-corpus/1.0", **(headers or {})})
    try:
        return urllib.request.urlopen(req, timeout=timeout)
    except urllib.error.HTTPError as e:
        if e.code == 416:
            return e  # Range not satisfiable: caller handles
        raise DownloadError(f"{url}: HTTP {e.code} {e.reason}",
                            fix="check --wiki/--date (see the dump index) or --base-url") from None
    except (urllib.error.URLError, OSError) as e:
        raise DownloadError(f"{url}: {getattr(e, 'reason', e)}",
                            fix="check the network or use a mirror with --base-url; rerun to resume") from None


def fetch_sha1(sums_url: str, name: str) -> str:
    """The published SHA-1 of ``name`` from a ``sha1sums.txt``."""
    with _open(sums_url) as r:
        text = r.read().decode("utf-8", errors="replace")
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].lstrip("*") == name and re.fullmatch(r"[0-9a-f]{40}", parts[0]):
            return parts[0]
    raise DownloadError(f"{sums_url}: no checksum for {name}",
                        fix="the dump may still be in progress; pick a finished --date")


def download_dump(wiki: str = "kowiki", date: str = "latest", out_dir: str | Path = ".", *,
                  base_url: str = DEFAULT_BASE_URL, verify: bool = True, timeout: float = 60.0) -> Path:
    """Download (or resume) the pages-articles dump into ``out_dir`` and verify its SHA-1; returns the file path.
    An already complete, verified file is returned without network traffic for the body."""
    from tqdm import tqdm

    url, sums_url, name = dump_urls(wiki, date, base_url)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    final, part = out / name, out / (name + ".part")
    expected = fetch_sha1(sums_url, name) if verify else None
    if final.is_file():
        if expected is None or file_digest(final, "sha1") == expected:
            log.info("%s already downloaded%s", final, " and verified" if expected else "")
            return final
        raise DownloadError(f"{final}: exists but its SHA-1 does not match {sums_url}",
                            fix="delete it and run the download again")
    have = part.stat().st_size if part.is_file() else 0
    headers = {"Range": f"bytes={have}-"} if have else {}
    r = _open(url, headers, timeout)
    status = getattr(r, "status", None) or r.getcode()
    if status == 416:  # the part is already the whole file
        r.close()
    else:
        with r:
            if have and status != 206:
                log.warning("%s: server ignored the Range request; restarting the download", url)
                have = 0
            length = r.headers.get("Content-Length")
            total = have + int(length) if length else None
            mode = "ab" if have else "wb"
            with open(part, mode) as f, tqdm(total=total, initial=have, unit="B", unit_scale=True, desc=name,
                                              disable=None) as bar:
                while True:
                    try:
                        b = r.read(_CHUNK)
                    except OSError as e:
                        raise DownloadError(f"{url}: connection lost after {f.tell():,} bytes ({e})",
                                            fix="run the same command again: it resumes from the .part file") from None
                    if not b:
                        break
                    f.write(b)
                    bar.update(len(b))
            if total is not None and part.stat().st_size != total:
                raise DownloadError(f"{url}: got {part.stat().st_size:,} of {total:,} bytes",
                                    fix="run the same command again: it resumes from the .part file")
    if expected is not None:
        got = file_digest(part, "sha1")
        if got != expected:
            part.unlink()
            raise DownloadError(f"{final}: SHA-1 {got} does not match the published {expected} ({sums_url}); "
                                f"the partial file was deleted", fix="download again (or use another --base-url mirror)")
    os.replace(part, final)
    log.info("downloaded %s (%s bytes)", final, f"{final.stat().st_size:,}")
    return final
