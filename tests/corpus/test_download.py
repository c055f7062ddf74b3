import hashlib
import http.server
import threading
from pathlib import Path

import pytest

from koroberta.corpus.download import download_dump
from koroberta.errors import DownloadError

BODY = Path(__file__).resolve().parents[1].joinpath("fixtures", "kowiki-tiny.xml.bz2").read_bytes()
NAME = "kowiki-20250601-pages-articles.xml.bz2"


class Handler(http.server.BaseHTTPRequestHandler):
    files: dict = {}
    log: list = []
    cut_at: int | None = None

    def log_message(self, *a):
        pass

    def do_GET(self):
        key = self.path.split("/")[-1]
        Handler.log.append((key, self.headers.get("Range")))
        data = Handler.files.get(key)
        if data is None:
            self.send_error(404)
            return
        start = 0
        rng = self.headers.get("Range")
        if rng and rng.startswith("bytes="):
            start = int(rng[6:].split("-")[0])
            if start >= len(data):
                self.send_response(416)
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        body = data[start:]
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if Handler.cut_at is not None and key.endswith(".bz2"):
            self.wfile.write(body[:Handler.cut_at])
            self.wfile.flush()
            self.connection.close()
            return
        self.wfile.write(body)


@pytest.fixture()
def server():
    Handler.files = {NAME: BODY, "kowiki-20250601-sha1sums.txt":
                     f"{hashlib.sha1(BODY).hexdigest()}  {NAME}\n0000  other.xml.bz2\n".encode()}
    Handler.log = []
    Handler.cut_at = None
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    th = threading.Thread(target=srv.serve_forever, daemon=True)
    th.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()


def test_download_and_verify(server, tmp_path):
    p = download_dump("kowiki", "20250601", tmp_path, base_url=server)
    assert p.name == NAME and p.read_bytes() == BODY
    assert not (tmp_path / (NAME + ".part")).exists()
    n = len(Handler.log)
    assert download_dump("kowiki", "20250601", tmp_path, base_url=server) == p  # verified, body not fetched again
    assert all(k != NAME for k, _ in Handler.log[n:])


def test_resume_with_range(server, tmp_path):
    (tmp_path / (NAME + ".part")).write_bytes(BODY[:1000])
    p = download_dump("kowiki", "20250601", tmp_path, base_url=server)
    assert p.read_bytes() == BODY
    assert (NAME, "bytes=1000-") in Handler.log


def test_interrupted_then_resumed(server, tmp_path):
    Handler.cut_at = 5000
    with pytest.raises(DownloadError, match="resumes|again"):
        download_dump("kowiki", "20250601", tmp_path, base_url=server)
    assert (tmp_path / (NAME + ".part")).stat().st_size == 5000 and not (tmp_path / NAME).exists()
    Handler.cut_at = None
    assert download_dump("kowiki", "20250601", tmp_path, base_url=server).read_bytes() == BODY


def test_checksum_mismatch_refused(server, tmp_path):
    Handler.files[NAME] = BODY[:-1] + b"x"
    with pytest.raises(DownloadError, match="SHA-1"):
        download_dump("kowiki", "20250601", tmp_path, base_url=server)
    assert not (tmp_path / NAME).exists() and not (tmp_path / (NAME + ".part")).exists()


def test_missing_dump_and_bad_args(server, tmp_path):
    from koroberta.errors import ConfigError

    with pytest.raises(DownloadError, match="404"):
        download_dump("kowiki", "20990101", tmp_path, base_url=server)
    with pytest.raises(ConfigError):
        download_dump("kowiki", "june", tmp_path, base_url=server)
