"""The split's report lengths and ``corpus backends``' sample are streamed: memory does not grow with the corpus
(issue "Real size", item 7)."""

import random
import sys
import tracemalloc
import types
from pathlib import Path

import pytest

from koroberta.corpus.bench import sample_paragraphs
from koroberta.corpus.report import LengthStats, histogram, percentile, write_report

DOCS = Path(__file__).resolve().parents[1] / "fixtures" / "kowiki-docs.txt"
QS = (0, .01, .1, .25, .5, .75, .9, .99, .999, 1)


def _fixture_lengths() -> tuple[list[int], list[int]]:
    """(document lengths, paragraph lengths) of the real kowiki fixture: paragraphs are lines, documents blocks."""
    docs, paras, cur = [], [], 0
    for line in DOCS.read_text(encoding="utf-8").splitlines():
        if line:
            paras.append(len(line))
            cur += len(line)
        elif cur:
            docs.append(cur)
            cur = 0
    return docs + ([cur] if cur else []), paras


def test_length_stats_memory_does_not_grow_with_the_values():
    """1.18M values (long documents and many sentences): the collector's traced memory after 196,608 and after
    1,179,648 values (both whole buffers, so the buffer is empty at each) is the same -- no Python int or list slot
    per value -- and its footprint stays the fixed bucket array plus at most one buffer."""
    rng = random.Random(0)
    chunk = [rng.randrange(1, 1 << rng.randrange(1, 40)) for _ in range(1024)]
    st = LengthStats()
    fixed = st.nbytes
    peak = 0
    tracemalloc.start()
    try:
        for _ in range(192):
            st.extend(chunk)
        at_small = tracemalloc.get_traced_memory()[0]
        for _ in range(960):
            st.extend(chunk)
            peak = max(peak, st.nbytes)
        at_large = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert st.count == 1_179_648
    # a list of these values would have grown by ~35 MB (an 8-byte slot and a 28-byte int each)
    assert abs(at_large - at_small) < 4 << 10
    assert peak <= fixed + (1 << 16) * 8 * 1.2 < 2 << 20


def test_percentiles_agree_with_the_sorted_lengths_on_the_real_fixture():
    """Exact below 2**exact_bits (the report's defaults: every length in the fixture); with a small exact range the
    streamed percentile is at most 2**(1 - mantissa_bits) of the exact one below it."""
    for values in _fixture_lengths():
        ordered = sorted(values)
        st = LengthStats()
        st.extend(values)
        assert (st.count, st.min, st.max) == (len(values), ordered[0], ordered[-1])
        assert [st.percentile(q) for q in QS] == [percentile(ordered, q) for q in QS]
        coarse = LengthStats(exact_bits=6, mantissa_bits=5)  # resolution 2**-4: most values are above 64
        coarse.extend(values)
        for q in QS:
            exact, approx = percentile(ordered, q), coarse.percentile(q)
            assert 0 <= exact - approx <= exact * 2 ** -4, (q, exact, approx)
        assert coarse.max == ordered[-1]


def test_bucket_edges_hold_every_int64():
    """Across bit lengths 17..63 (float rounding at 2**53 and the largest int64 included) each value's bucket starts
    at most 2**-10 of it below it."""
    rng = random.Random(1)
    values = [(1 << b) - 1 for b in range(17, 64)] + [1 << b for b in range(16, 63)] + [2 ** 53 + 1, 2 ** 63 - 1]
    values += [rng.randrange(1 << 16, 1 << 63) for _ in range(200)]
    for v in values:
        st = LengthStats()
        st.extend([0, v, 0])  # min 0 and max v: the middle bucket is v's own, unclipped from below
        lows, counts = st.buckets()
        assert counts.tolist() == [2, 1] and 0 <= v - int(lows[1]) <= v * 2 ** -10, v
        if v < 2 ** 63 - 1:  # v no longer the max, so not clamped from above: its bucket's own start shows
            st.add(2 ** 63 - 1)
            assert 0 <= v - st.percentile(0.5) <= v * 2 ** -10, v
    st = LengthStats()
    st.extend([3, -1])
    with pytest.raises(ValueError, match="non-negative"):
        st.count


def test_report_png_and_table_are_those_of_the_sorted_lists(tmp_path):
    """Fewer values than the buffer (never binned until read) and the real fixture: the histogram PNG is byte for
    byte the one matplotlib drew from the list of lengths (the code before streaming), and report.md's table gives
    the sorted list's percentiles with no approximation note."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def listed(values, path):  # report.histogram as it was: matplotlib given the list of Python ints
        fig, ax = plt.subplots(figsize=(6, 3.5), dpi=100)
        hi = max(1, percentile(values, 0.99))
        ax.hist([min(v, hi) for v in values], bins=50, color="#4477aa")
        ax.set_title("t")
        ax.set_xlabel("x")
        ax.set_ylabel("count")
        fig.tight_layout()
        fig.savefig(path, format="png", metadata={"Software": None})
        plt.close(fig)

    docs, paras = _fixture_lengths()
    for values in (docs, paras):
        st = LengthStats()
        st.extend(values)
        listed(sorted(values), tmp_path / "list.png")
        histogram(st, tmp_path / "stream.png", "t", "x")
        histogram(sorted(values), tmp_path / "seq.png", "t", "x")  # the public function still takes a list
        assert (tmp_path / "stream.png").read_bytes() == (tmp_path / "list.png").read_bytes()
        assert (tmp_path / "seq.png").read_bytes() == (tmp_path / "list.png").read_bytes()

    stats = {"backend": "punct", "documents": {s: 1 for s in ("train", "valid", "test")},
             "sentences": {s: 1 for s in ("train", "valid", "test")},
             "characters": {s: 1 for s in ("train", "valid", "test")}, "dropped": {}}
    ds, ps = LengthStats(), LengthStats()
    ds.extend(docs)
    ps.extend(paras)
    write_report(tmp_path, stats, ds, ps)
    md = (tmp_path / "report.md").read_text(encoding="utf-8")
    row = [percentile(sorted(docs), q) for q in (.1, .5, .9, .99)] + [max(docs)]
    assert "| document (chars) | " + " | ".join(map(str, row)) + " |" in md and "Percentiles of" not in md
    # a corpus whose p99 document is past the exact range says how exact its numbers are
    big = LengthStats()
    big.extend([70_001] * 100)
    write_report(tmp_path, stats, big, ps)
    md = (tmp_path / "report.md").read_text(encoding="utf-8")
    assert "Percentiles of 65,536 characters or more are up to 0.10% below" in md and "| 70001 |" in md


LINE = "한국어 문장은 여기에서 끝난다. 다음 문장도 있다.\n"
HEAD = (LINE * (1_000_000 // len(LINE.encode()))).encode()  # ~1 MB of text, then bytes that are not UTF-8


@pytest.fixture(scope="module")
def big_file(tmp_path_factory) -> Path:
    """100 MB: ~1 MB of Korean lines, then 0xFF bytes, so that any read past the text fails to decode."""
    path = tmp_path_factory.mktemp("backends") / "big.txt"
    with open(path, "wb") as f:
        f.write(HEAD)
        f.write(b"\xff" * (100_000_000 - len(HEAD)))
    return path


def test_sample_reads_only_the_sample(big_file, monkeypatch):
    """Sampling 200k characters of the 100 MB file stops within the text (a whole-file read would fail to decode):
    the bytes read are the sample's and at most a read-ahead chunk more; the lines are read_text().splitlines()'s."""
    from koroberta.corpus import bench

    pos = []

    class Spy:  # the file sample_paragraphs opens, its position noted when it closes it
        def __init__(self, *a, **k):
            self.f = open(*a, **k)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            pos.append(self.f.buffer.tell())
            self.f.close()

        def __iter__(self):
            return iter(self.f)

    monkeypatch.setattr(bench, "open", Spy, raising=False)
    paras, n = sample_paragraphs(big_file, 200_000)
    assert n >= 200_000 and n - 200_000 < len(LINE) and all(p == LINE.rstrip("\n") for p in paras)
    sample_bytes = sum(len(p.encode()) + 1 for p in paras)
    assert sample_bytes <= pos[0] < sample_bytes + (64 << 10) < len(HEAD)
    monkeypatch.undo()

    odd = big_file.parent / "odd.txt"
    odd.write_bytes("가 나\r\n\r\n다\u2028라\x0c마\n\n  \n바\r사\n".encode())
    expected = [x for x in odd.read_text(encoding="utf-8").splitlines() if x.strip()]
    assert sample_paragraphs(odd, 10**6) == (expected, sum(map(len, expected)))


def test_backends_command_on_a_large_file(big_file, monkeypatch, capsys):
    """``koroberta corpus backends`` on the 100 MB file measures its sample and never reads the rest (the invalid
    bytes would fail it). kss is replaced by a splitter at ". " here: importing it takes ~10 s, and what is tested
    is the command's reading, not kss."""
    from koroberta import cli
    from koroberta.corpus import steps

    monkeypatch.setitem(sys.modules, "kss", types.ModuleType("kss"))
    monkeypatch.setattr(steps, "init_kss", lambda: None)
    monkeypatch.setattr(steps, "check_backend", lambda b: None)
    monkeypatch.setattr(steps, "split_lines", lambda paras, b: [s for p in paras for s in p.split(". ")])
    assert cli.main(["corpus", "backends", str(big_file), "--backends", "punct", "--max-chars", "20000"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("20,0") and "| punct | 1,430 |" in out, out
