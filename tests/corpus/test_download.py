"""``koroberta corpus download`` against real HTTP servers on 127.0.0.1 that reproduce the dumps.wikimedia.org layout:
an index of dated directories, dumpstatus.json per dump, sha1sums/md5sums, ``latest/`` with its rss feed. Faults
(a cut connection, a server ignoring Range, a 503, a corrupted body) are injected by the server, not by patching
our code. Nothing here touches the real network."""

from __future__ import annotations

import bz2
import hashlib
import http.server
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from koroberta.corpus.download import download_dump, sidecar_path
from koroberta.errors import ConfigError, DownloadError

REPO = Path(__file__).resolve().parents[2]
WIKI = "kowiki"
BODY = (REPO / "tests" / "fixtures" / "kowiki-tiny.xml.bz2").read_bytes()  # a real bz2 dump, ~250 KB
OLD_BODY = bz2.compress(b"<mediawiki><page><title>older dump</title></page></mediawiki>\n" * 500)
DONE_OLD, DONE, RUNNING = "20261101", "20261120", "20261201"
# urllib3 backs off for real; keep its sleeps in the milliseconds
FAST = {"retries": 3, "backoff_factor": 0.01, "timeout": 5.0}


def name(date: str) -> str:
    return f"{WIKI}-{date}-pages-articles.xml.bz2"


def path_of(date: str) -> str:
    return f"/{WIKI}/{date}/{name(date)}"


def layout(*, hashes: bool = True, sums: bool = True, rss: bool = True, status: bool = True) -> dict[str, bytes]:
    """The files of one dump server: {url path: bytes}."""
    dumps = {DONE_OLD: ("done", OLD_BODY), DONE: ("done", BODY), RUNNING: ("in-progress", BODY[:1000])}
    files: dict[str, bytes] = {}
    links = "".join(f'<a href="{d}/">{d}/</a>                                          {d[6:]}-Nov-2026 03:12    -\n'
                    for d in [*dumps, "latest"])
    files[f"/{WIKI}/"] = (f"<html>\r\n<head><title>Index of /{WIKI}/</title></head>\r\n<body>\r\n<h1>Index of /{WIKI}/"
                          f"</h1><hr><pre><a href=\"../\">../</a>\n{links}</pre><hr></body>\r\n</html>\r\n").encode()
    for date, (state, body) in dumps.items():
        stub = f"{WIKI}-{date}-stub-articles.xml.gz"
        stub_sha1, stub_md5 = hashlib.sha1(b"stub").hexdigest(), hashlib.md5(b"stub").hexdigest()
        art_files = {}
        if state == "done":
            entry = {"size": len(body), "url": path_of(date)}
            if hashes:
                entry |= {"md5": hashlib.md5(body).hexdigest(), "sha1": hashlib.sha1(body).hexdigest()}
            art_files[name(date)] = entry
            files[path_of(date)] = body
        doc = {"jobs": {"xmlstubsdump": {"status": "done", "updated": f"{date[:4]}-11-02 01:00:00",
                                         "files": {stub: {"size": 4, "url": f"/{WIKI}/{date}/{stub}"}}},
                        "articlesdump": {"status": state, "updated": f"{date[:4]}-11-02 05:00:00", "files": art_files}},
               "version": "0.8"}
        if status:
            files[f"/{WIKI}/{date}/dumpstatus.json"] = json.dumps(doc).encode()
        if sums:  # like the real lists: one line per finished file, the articles dump only once it is done
            sha1_lines = [f"{stub_sha1}  {stub}"] + ([f"{hashlib.sha1(body).hexdigest()}  {name(date)}"]
                                                     if state == "done" else [])
            md5_lines = [f"{stub_md5}  {stub}"] + ([f"{hashlib.md5(body).hexdigest()}  {name(date)}"]
                                                   if state == "done" else [])
            files[f"/{WIKI}/{date}/{WIKI}-{date}-sha1sums.txt"] = ("\n".join(sha1_lines) + "\n").encode()
            files[f"/{WIKI}/{date}/{WIKI}-{date}-md5sums.txt"] = ("\n".join(md5_lines) + "\n").encode()
    # latest/ holds undated copies; no checksum list names them (why we resolve to the dated file)
    files[f"/{WIKI}/latest/{WIKI}-latest-pages-articles.xml.bz2"] = BODY
    if rss:
        files[f"/{WIKI}/latest/{WIKI}-latest-pages-articles.xml.bz2-rss.xml"] = f"""\
<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0">
  <channel>
    <title>{WIKI} dump progress on pages-articles.xml.bz2</title>
    <link>https://dumps.wikimedia.org/{WIKI}/latest/</link>
    <description>{WIKI} dump updates</description>
    <lastBuildDate>Sat, 21 Nov 2026 09:12:31 GMT</lastBuildDate>
    <item>
      <title>https://dumps.wikimedia.org/{WIKI}/{DONE}/{name(DONE)}</title>
      <link>https://dumps.wikimedia.org/{WIKI}/{DONE}</link>
      <description>&lt;a href="https://dumps.wikimedia.org/{WIKI}/{DONE}/{name(DONE)}"&gt;{name(DONE)}&lt;/a&gt;
      </description>
      <pubDate>Sat, 21 Nov 2026 09:12:31 GMT</pubDate>
    </item>
  </channel>
</rss>
""".encode()
    return files


class DumpServer:
    """A real HTTP server (http.server in a thread) with injectable faults; records every request it answers."""

    def __init__(self, files: dict[str, bytes]):
        self.files = files
        self.log: list[tuple[str, str | None, int]] = []  # (path, Range header, status sent)
        self.cut_once: dict[str, int] = {}  # path -> send only this many body bytes, then drop the connection, once
        self.fail_once: dict[str, int] = {}  # path -> answer this status once
        self.always_fail: dict[str, int] = {}  # path -> answer this status every time
        self.cut_every: dict[str, int] = {}  # path -> every answer sends at most this many body bytes
        self.ignore_range = False
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def _send(self, code: int, body: bytes = b"", headers: dict | None = None, limit: int | None = None):
                server.log.append((self.path, self.headers.get("Range"), code))
                self.send_response(code)
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body if limit is None else body[:limit])

            def do_GET(self):
                path = self.path
                if path in server.fail_once or path in server.always_fail:
                    return self._send(server.fail_once.pop(path, None) or server.always_fail[path], b"busy")
                data = server.files.get(path)
                if data is None:
                    return self._send(404, b"not found")
                rng = self.headers.get("Range")
                code, start, headers = 200, 0, {}
                if rng and not server.ignore_range:
                    start = int(rng.removeprefix("bytes=").split("-")[0])
                    if start >= len(data):
                        return self._send(416, headers={"Content-Range": f"bytes */{len(data)}"})
                    code, headers = 206, {"Content-Range": f"bytes {start}-{len(data) - 1}/{len(data)}"}
                # HTTP/1.0 handler: returning after a short write closes the socket = a connection cut mid-body
                limit = server.cut_once.pop(path, None)
                self._send(code, data[start:], headers, limit=server.cut_every.get(path, limit))

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        # a short poll interval: shutdown() waits up to one interval, per server, per test
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def hits(self, path: str) -> list[tuple[str | None, int]]:
        return [(r, c) for p, r, c in self.log if p == path]

    def stop(self) -> None:
        if self.thread.is_alive():
            self.httpd.shutdown()
            self.httpd.server_close()


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch):
    # requests honours *_proxy variables; a proxy must never see (or break) traffic to the local test servers
    for k in ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")


@pytest.fixture()
def servers():
    started: list[DumpServer] = []

    def start(**kw) -> DumpServer:
        s = DumpServer(layout(**kw))
        started.append(s)
        return s

    yield start
    for s in started:
        s.stop()


@pytest.fixture()
def main(servers) -> DumpServer:
    return servers()


def get(server: DumpServer, date: str, out: Path, checksums: DumpServer | None = None, **kw) -> Path:
    return download_dump(WIKI, date, out, base_url=server.url, checksum_base_url=(checksums or server).url,
                         **{**FAST, **kw})


def test_latest_resolves_to_the_dated_file_and_verifies(main, tmp_path):
    p = get(main, "latest", tmp_path)
    assert p == tmp_path / name(DONE) and p.read_bytes() == BODY
    rec = json.loads(sidecar_path(p).read_text())
    assert rec["date"] == DONE and rec["requested_date"] == "latest" and rec["resolved_from"] == "rss"
    assert rec["sha1"] == hashlib.sha1(BODY).hexdigest() and rec["bytes"] == len(BODY) and rec["sha1_verified"]
    assert rec["checksum_source"] == f"{main.url}/{WIKI}/{DONE}/dumpstatus.json"
    assert rec["url"] == main.url + path_of(DONE)
    assert not main.hits(f"/{WIKI}/latest/{WIKI}-latest-pages-articles.xml.bz2")  # never the undated copy
    assert sorted(q.name for q in tmp_path.iterdir()) == sorted([p.name, sidecar_path(p).name])  # no .part left

    # a rerun resolves latest again but fetches no body
    n = len(main.log)
    assert get(main, "latest", tmp_path) == p
    assert not any(path.endswith(".bz2") for path, _, _ in main.log[n:])
    # with the date spelled out, a verified file needs no network at all
    n = len(main.log)
    assert get(main, DONE, tmp_path) == p and len(main.log) == n


def test_latest_without_rss_takes_the_newest_finished_dump(servers, tmp_path):
    s = servers(rss=False)
    p = get(s, "latest", tmp_path)
    assert p.name == name(DONE) and p.read_bytes() == BODY  # RUNNING (newer, in progress) is skipped
    assert json.loads(sidecar_path(p).read_text())["resolved_from"] == "index+dumpstatus"
    assert s.hits(f"/{WIKI}/{RUNNING}/dumpstatus.json")


def test_dated_dump(main, tmp_path):
    p = get(main, DONE_OLD, tmp_path)
    assert p.name == name(DONE_OLD) and p.read_bytes() == OLD_BODY
    rec = json.loads(sidecar_path(p).read_text())
    assert (rec["date"], rec["requested_date"], rec["resolved_from"]) == (DONE_OLD, DONE_OLD, "--date")


def test_sha1sums_used_when_dumpstatus_has_no_hashes(servers, tmp_path):
    s = servers(hashes=False)
    p = get(s, DONE, tmp_path)
    assert json.loads(sidecar_path(p).read_text())["checksum_source"] == \
        f"{s.url}/{WIKI}/{DONE}/{WIKI}-{DONE}-sha1sums.txt"


def test_mirror_without_checksums_uses_the_main_server(main, servers, tmp_path):
    mirror = servers(hashes=False, sums=False)
    p = get(mirror, "latest", tmp_path, checksums=main)
    assert p.read_bytes() == BODY
    rec = json.loads(sidecar_path(p).read_text())
    assert rec["checksum_source"] == f"{main.url}/{WIKI}/{DONE}/dumpstatus.json"
    assert rec["url"] == mirror.url + path_of(DONE)
    assert mirror.hits(path_of(DONE)) and not main.hits(path_of(DONE))  # body from the mirror only


def test_mirror_without_checksums_refused_when_none_published(servers, tmp_path):
    mirror = servers(hashes=False, sums=False)
    bare = servers(hashes=False, sums=False)  # a "main server" that publishes no checksums either
    with pytest.raises(DownloadError,
                       match=r"no published SHA-1 for kowiki-20261120.*sha1sums.*fix: .*--checksum-base-url"):
        get(mirror, DONE, tmp_path, checksums=bare)
    gone = servers()
    gone.stop()  # a checksum server that cannot be reached at all
    with pytest.raises(DownloadError, match=r"no published SHA-1.*127\.0\.0\.1.*(refused|retries)"):
        get(mirror, DONE, tmp_path, checksums=gone)
    assert not mirror.hits(path_of(DONE))  # refused before fetching the body
    assert list(tmp_path.iterdir()) == []


def test_cut_transfer_resumes_with_range(main, tmp_path):
    half = len(BODY) // 2
    main.cut_once[path_of(DONE)] = half
    p = get(main, DONE, tmp_path)
    assert p.read_bytes() == BODY
    assert main.hits(path_of(DONE)) == [(None, 200), (f"bytes={half}-", 206)]
    assert not (tmp_path / (name(DONE) + ".part")).exists()


def test_many_cuts_each_making_progress_complete(main, tmp_path):
    main.cut_every[path_of(DONE)] = 40_000
    assert get(main, DONE, tmp_path, max_resumes=2).read_bytes() == BODY  # budget counts cuts *without* new data
    ranges = [r for r, _ in main.hits(path_of(DONE))]
    assert ranges == [None] + [f"bytes={k}-" for k in range(40_000, len(BODY), 40_000)]


def test_cuts_without_progress_give_up(main, tmp_path):
    (tmp_path / (name(DONE) + ".part")).write_bytes(BODY[:5000])
    main.cut_every[path_of(DONE)] = 0
    with pytest.raises(DownloadError, match=r"connection lost 3 times in a row .*5,000 bytes kept in .*\.part.*fix: "
                                            r"rerun"):
        get(main, DONE, tmp_path, max_resumes=2)
    assert len(main.hits(path_of(DONE))) == 3
    assert (tmp_path / (name(DONE) + ".part")).read_bytes() == BODY[:5000]  # kept for the next run
    assert not (tmp_path / name(DONE)).exists()


def test_kept_part_resumed_on_rerun(main, tmp_path):
    (tmp_path / (name(DONE) + ".part")).write_bytes(BODY[:1000])
    assert get(main, DONE, tmp_path).read_bytes() == BODY
    assert main.hits(path_of(DONE)) == [("bytes=1000-", 206)]


def test_dump_without_dumpstatus_checked_by_sha1sums(servers, tmp_path):
    # older dumps (and partial mirrors) have no dumpstatus.json: the published checksum shows the file is finished,
    # and with no published size a complete .part is detected by the server's 416 to our Range request
    s = servers(status=False)
    (tmp_path / (name(DONE) + ".part")).write_bytes(BODY)
    p = get(s, DONE, tmp_path)
    assert p.read_bytes() == BODY and s.hits(path_of(DONE)) == [(f"bytes={len(BODY)}-", 416)]
    assert json.loads(sidecar_path(p).read_text())["checksum_source"].endswith(f"{WIKI}-{DONE}-sha1sums.txt")
    with pytest.raises(DownloadError, match=rf"no dump dated 20250101 .*{DONE_OLD}, {DONE}, {RUNNING}"):
        get(s, "20250101", tmp_path)


def test_server_ignoring_range_restarts_instead_of_appending(main, tmp_path):
    main.ignore_range = True
    (tmp_path / (name(DONE) + ".part")).write_bytes(b"not the start of the dump" * 40)
    assert get(main, DONE, tmp_path).read_bytes() == BODY
    assert main.hits(path_of(DONE)) == [("bytes=1000-", 200)]
    # and a cut transfer on such a server starts over too
    cut = len(OLD_BODY) // 2
    main.cut_once[path_of(DONE_OLD)] = cut
    assert get(main, DONE_OLD, tmp_path).read_bytes() == OLD_BODY
    assert main.hits(path_of(DONE_OLD)) == [(None, 200), (f"bytes={cut}-", 200)]


def test_corrupted_body_refused_and_part_removed(main, tmp_path):
    bad = bytearray(BODY)
    bad[len(bad) // 2] ^= 0xFF  # same size, one flipped byte
    main.files[path_of(DONE)] = bytes(bad)
    with pytest.raises(DownloadError, match=rf"{name(DONE)}: SHA-1 [0-9a-f]{{40}} does not match the published "
                                            rf"{hashlib.sha1(BODY).hexdigest()}.*deleted.*fix:"):
        get(main, DONE, tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_longer_body_refused_by_size(main, tmp_path):
    main.files[path_of(DONE)] = BODY + b"trailing junk"
    with pytest.raises(DownloadError, match=r"\.part: .* bytes but .*dumpstatus.json says"):
        get(main, DONE, tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_dump_in_progress_refused(main, tmp_path):
    with pytest.raises(DownloadError, match=rf"kowiki dump {RUNNING} is not finished .*'in-progress'.*fix: .*--date"):
        get(main, RUNNING, tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_503_once_then_success(main, tmp_path):
    main.fail_once[path_of(DONE)] = 503
    main.fail_once[f"/{WIKI}/{DONE}/dumpstatus.json"] = 503
    assert get(main, DONE, tmp_path).read_bytes() == BODY
    assert main.hits(path_of(DONE)) == [(None, 503), (None, 200)]
    assert [c for _, c in main.hits(f"/{WIKI}/{DONE}/dumpstatus.json")] == [503, 200]


def test_persistent_503_is_a_one_line_error(main, tmp_path):
    main.always_fail[path_of(DONE)] = 503
    with pytest.raises(DownloadError, match=r"HTTP 503.*fix:") as e:
        get(main, DONE, tmp_path)
    assert "\n" not in str(e.value)
    assert len(main.hits(path_of(DONE))) == FAST["retries"] + 1  # urllib3 retried, then gave up
    assert not (tmp_path / name(DONE)).exists()


def test_date_not_on_server_lists_the_dates(main, tmp_path):
    with pytest.raises(DownloadError, match=rf"no dump dated 20250101 .*dates there: {DONE_OLD}, {DONE}, {RUNNING}"):
        get(main, "20250101", tmp_path)
    with pytest.raises(DownloadError, match=r"no wiki 'jawiki'"):
        download_dump("jawiki", "latest", tmp_path, base_url=main.url, checksum_base_url=main.url, **FAST)


@pytest.mark.parametrize("wiki,date,base", [("ko", "latest", None), ("Ko wiki", "latest", None),
                                            ("kowiki", "june", None), ("kowiki", "20261340", None),
                                            ("kowiki", "latest", "ftp://mirror.example/")])
def test_bad_arguments_are_config_errors(wiki, date, base, tmp_path):
    with pytest.raises(ConfigError, match="fix:"):
        download_dump(wiki, date, tmp_path, base_url=base or "http://127.0.0.1:9", **FAST)


def test_file_changed_after_verification_refused(main, tmp_path):
    p = get(main, DONE, tmp_path)
    p.write_bytes(BODY[:-1] + b"\0")
    with pytest.raises(DownloadError, match=rf"{p}: SHA-1 .*changed on disk.*fix: delete"):
        get(main, DONE, tmp_path)


def test_no_verify_is_explicit_and_recorded(servers, tmp_path, caplog):
    mirror = servers(hashes=False, sums=False)
    bare = servers(hashes=False, sums=False)
    with caplog.at_level("WARNING", logger="koroberta.corpus"):
        p = get(mirror, DONE, tmp_path, checksums=bare, verify=False)
    assert p.read_bytes() == BODY and "NOT be checked" in caplog.text
    rec = json.loads(sidecar_path(p).read_text())
    assert rec["sha1_verified"] is False and rec["checksum_source"] is None
    # a later verifying run does not trust that record: it still needs a published checksum
    with pytest.raises(DownloadError, match="no published SHA-1"):
        get(mirror, DONE, tmp_path, checksums=bare)


def _cli(*args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    return subprocess.run([sys.executable, "-m", "koroberta", "corpus", "download", *args], capture_output=True,
                          text=True, env={**env, "NO_PROXY": "127.0.0.1"}, cwd=REPO, timeout=120)


def test_cli(main, tmp_path):
    r = _cli(str(tmp_path), "--date", RUNNING, "--base-url", main.url, "--checksum-base-url", main.url)
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and RUNNING in lines[0] and "--date" in lines[0]
    assert "Traceback" not in r.stderr and r.stdout == ""

    r = _cli(str(tmp_path), "--date", "latest", "--base-url", main.url, "--checksum-base-url", main.url)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().splitlines()[-1] == str(tmp_path / name(DONE))  # what users put into `source:`
    assert (tmp_path / name(DONE)).read_bytes() == BODY
