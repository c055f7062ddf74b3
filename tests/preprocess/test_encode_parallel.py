"""The spm encoder's worker processes (koroberta.preprocess.encode): the same bytes as one thread and as spm itself,
in input order whichever chunk finishes first, and the reader's errors (message, line number) unchanged."""

from __future__ import annotations

import filecmp
import io
import time
from pathlib import Path

import numpy as np
import pytest

import koroberta.preprocess.encode as encode
from koroberta.errors import InputError
from koroberta.layout import EOS, OFFSET, UNK, load_processor
from koroberta.preprocess.build import preprocess
from koroberta.preprocess.config import PreprocessConfig
from koroberta.preprocess.encode import SpmEncoder, encode_pieces, encode_to_mmap

CHUNK = 25  # lines per chunk: the texts below make dozens of chunks
# (threads, processes): one thread; the in-process path with spm's own threads; worker processes
PATHS = [(1, False), (2, False), (2, True), (4, True)]
EDGES = [(1, False), (4, True)]  # the two ends, for the error paths


@pytest.fixture(scope="module")
def sp(kowiki_vocab):
    return load_processor(kowiki_vocab / "spm.model")


@pytest.fixture(scope="module")
def uneven(tmp_path_factory, kowiki_line_list) -> Path:
    """Chunks of very different cost, alternating: 25 lines of 10 paragraphs each, then 25 short or blank lines.
    With several workers the short chunk after a long one finishes first; the output must not notice. Also
    unknown characters (spm <unk>) and a last line without its newline; nothing the reader repairs (a bad line is
    added where a test wants one)."""
    paras = [" ".join(p.split()) for p in kowiki_line_list if p.strip()]
    lines: list[str] = []
    for k in range(16):  # 800 lines, 32 chunks
        lines += [" ".join(paras[(k * CHUNK + i) % len(paras):][:10]) for i in range(CHUNK)]
        lines += [paras[(k * 7 + i) % len(paras)][:12] if i % 5 else "" for i in range(CHUNK)]
    lines[30] = "𓀀𓀁 상형문자 😀 " + lines[30]
    p = tmp_path_factory.mktemp("uneven") / "train.txt"
    p.write_text("\n".join(lines), encoding="utf-8")
    return p


def _expected(sp, path: Path) -> tuple[np.ndarray, np.ndarray]:
    """What fairseq's Dictionary.encode_line makes of each line's pieces: spm id + OFFSET (<unk> -> UNK), then eos."""
    ids, sizes = [], []
    for line in path.read_text(encoding="utf-8").split("\n"):
        row = [UNK if i == 0 else i + OFFSET for i in sp.encode(line, out_type=int)] + [EOS]
        ids += row
        sizes.append(len(row))
    return np.array(ids, dtype=np.int64), np.array(sizes, dtype=np.int64)


def _run(sp, path: Path, threads: int, processes: bool, **kw):
    sizes: list[np.ndarray] = []
    bin_out, pieces = io.BytesIO(), io.StringIO()
    stats = encode_to_mmap(SpmEncoder(sp, threads, processes=processes), path, bin_out, np.uint16,
                           chunk_lines=CHUNK, on_sizes=sizes.append, pieces_out=pieces, **kw)
    return bin_out.getvalue(), np.concatenate(sizes), pieces.getvalue(), stats


def test_every_path_gives_spm_ids_in_input_order(sp, uneven):
    want_ids, want_sizes = _expected(sp, uneven)
    first = None
    for threads, processes in PATHS:
        data, sizes, pieces, stats = _run(sp, uneven, threads, processes)
        assert np.array_equal(np.frombuffer(data, dtype=np.uint16), want_ids), (threads, processes)
        assert np.array_equal(sizes, want_sizes)
        got = (data, pieces, stats.to_dict(), stats.max_id)
        assert stats.unk > 0 and stats.max_id == int(want_ids.max())
        if first is None:
            first = got
        assert got == first, (threads, processes)
    # the piece-text writer (`preprocess encode`, method: fairseq) takes the same paths
    for threads, processes in PATHS:
        dst = uneven.parent / f"pieces-{threads}-{processes}.spm"
        stats = encode_pieces(SpmEncoder(sp, threads, processes=processes), uneven, dst, chunk_lines=CHUNK)
        assert dst.read_text(encoding="utf-8") == first[1] and stats.to_dict() == first[2]


def test_stage_bytes_do_not_depend_on_workers(kowiki_vocab, uneven, kowiki_line_list, tmp_path, monkeypatch):
    """The whole stage, worker processes for every split: .bin/.idx byte-identical for 1, 2 and 4 workers."""
    monkeypatch.setattr(encode, "PROCESS_MIN_BYTES", 0)
    monkeypatch.setattr(encode, "PROCESS_MIN_THREADS", 2)
    split = tmp_path / "split"
    split.mkdir()
    (split / "train.txt").write_bytes(uneven.read_bytes())
    (split / "valid.txt").write_text("\n".join(kowiki_line_list[:130]) + "\n", encoding="utf-8")
    (split / "test.txt").write_text("\n".join(kowiki_line_list[130:170]), encoding="utf-8")
    outs = [preprocess(PreprocessConfig(chunk_lines=CHUNK), split, kowiki_vocab, tmp_path / f"w{w}", workers=w)
            for w in (1, 2, 4)]
    for name in ("train.bin", "train.idx", "valid.bin", "valid.idx", "test.bin", "test.idx"):
        for o in outs[1:]:
            assert filecmp.cmp(outs[0] / name, o / name, shallow=False), (o.name, name)


def test_threads_and_input_size_pick_the_path(sp, uneven, monkeypatch):
    """Worker processes from PROCESS_MIN_BYTES and PROCESS_MIN_THREADS on; a smaller input, or fewer threads, stay
    in-process."""
    size = uneven.stat().st_size
    assert encode.PROCESS_MIN_THREADS == 3
    for limit, threads, ahead in ((size, 3, 6), (size, 4, 8), (size + 1, 3, 1), (0, 2, 1), (0, 1, 1)):
        monkeypatch.setattr(encode, "PROCESS_MIN_BYTES", limit)
        enc = SpmEncoder(sp, threads)
        seen: list[int] = []
        encode_to_mmap(enc, uneven, io.BytesIO(), np.uint16, chunk_lines=CHUNK,
                       on_sizes=lambda s: seen.append(enc.ahead))
        assert set(seen) == {ahead}, (limit, threads)


@pytest.mark.parametrize("bad, message", [
    (b"bad \xff\xfe bytes", "line 613 is not valid UTF-8"),
    ("a literal <mask> here".encode(), "line 613 contains a literal '<mask>'"),
    ("tab\there".encode(), "line 613 contains control/whitespace character"),
])
def test_a_bad_line_is_the_same_error_on_every_path(sp, uneven, tmp_path, bad, message):
    raw = uneven.read_bytes().split(b"\n")
    raw[612] = bad  # line 613: chunk 25 of 25 lines, with chunks already in flight ahead of it
    p = tmp_path / "bad.txt"
    p.write_bytes(b"\n".join(raw))
    errors = set()
    for threads, processes in EDGES:
        with pytest.raises(InputError, match=message) as e:
            _run(sp, p, threads, processes, policy="error")
        errors.add(str(e.value))
    assert len(errors) == 1 and str(p) in errors.pop()
    # repaired instead: the same counts and the same line named
    repaired = [_run(sp, p, threads, processes)[3].repairs.to_dict() for threads, processes in EDGES]
    assert all(r == repaired[0] for r in repaired) and repaired[0]["examples"][0].startswith("line 613:")


def test_interrupt_stops_the_workers_and_the_encoder_can_run_again(sp, uneven):
    """Ctrl-C in the writer (a KeyboardInterrupt between chunks): it propagates as itself, promptly (chunks not yet
    started are dropped), and the encoder's next use starts fresh workers and writes the same bytes."""
    enc = SpmEncoder(sp, 2, processes=True)
    calls = []

    def interrupt(sizes: np.ndarray) -> None:
        calls.append(len(sizes))
        if len(calls) == 2:
            raise KeyboardInterrupt

    t = time.perf_counter()
    with pytest.raises(KeyboardInterrupt):
        encode_to_mmap(enc, uneven, io.BytesIO(), np.uint16, chunk_lines=CHUNK, on_sizes=interrupt)
    assert len(calls) == 2 and time.perf_counter() - t < 30
    out = io.BytesIO()
    encode_to_mmap(enc, uneven, out, np.uint16, chunk_lines=CHUNK, on_sizes=lambda s: None)
    assert out.getvalue() == _run(sp, uneven, 1, False)[0]
