"""The ratios behind :mod:`koroberta.resources` (issue 24, item 5): what each stage writes and holds, per unit of
what is known before it runs. Prints a JSON object; bench/results/resources.md records a run.

    nice .venv/bin/python bench/resources_sizing.py [--corpus bench/out/corpus_stage/full/corpus]
        [--dump ../shared/data/kowiki/kowiki-sample.xml.bz2] [--xz ../shared/data/kowiki-text/kowiki-extracted-AA.txt.xz]
        [--split bench/out/preprocess_hf/split --vocab bench/out/preprocess_hf/spm-vocab] [--out FILE.json]

Parts (each skipped when its input is missing):

* ``corpus``: the files of a finished corpus directory (every step's data file, the split's text and Parquet) in
  bytes per byte of cleaned text (the UTF-8 of ``clean/docs.jsonl``'s texts), UTF-8 bytes per character, and
  characters per sentence of each source (``sentences/sentences.jsonl``).
* ``dump``: the extract step on a ``.xml.bz2`` dump in a temporary directory: cleaned text per compressed byte and
  per decompressed XML byte, cleaned characters per raw wikitext character of the pages the reader yields.
* ``xz``: a WikiExtractor ``.txt.xz``: decompressed bytes per compressed byte, the size
  :func:`koroberta.resources.xz_size` reads from the container's index (must be equal), and the same text's ratio
  under ``bzip2 -9`` and ``gzip -6`` (text sources compressed otherwise).
* ``preprocess``: ``koroberta preprocess run`` in a child process per (workers, chunk_lines): its peak RSS, and
  characters per token of the split.
* ``processes``: the peak RSS of a fresh interpreter after importing what convert / import-hf (torch, fairseq,
  transformers) and finetune (torch, transformers) import, and the bytes of an exported tokenizer per vocab row.
"""

from __future__ import annotations

import argparse
import bz2
import json
import lzma
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"


def _text_bytes(docs_jsonl: Path) -> tuple[int, int]:
    """(UTF-8 bytes, characters) of the ``text`` fields of a docs.jsonl."""
    b = c = 0
    with open(docs_jsonl, encoding="utf-8") as f:
        for line in f:
            t = json.loads(line)["text"]
            b += len(t.encode("utf-8"))
            c += len(t)
    return b, c


def corpus_part(corpus: Path) -> dict:
    text_b, text_c = _text_bytes(corpus / "clean" / "docs.jsonl")

    def size(pattern: str) -> int:
        return sum(p.stat().st_size for p in corpus.glob(pattern) if p.is_file())

    files = {"extract docs.jsonl": size("extract*/docs.jsonl"), "extract excluded.jsonl": size("extract*/excluded.jsonl"),
             "clean docs.jsonl": size("clean/docs.jsonl"), "clean excluded.jsonl": size("clean/excluded.jsonl"),
             "sentences.jsonl": size("sentences*/sentences.jsonl"),
             "split *.txt (train/valid/test)": sum(size(f"split/{s}.txt") for s in ("train", "valid", "test")),
             "split valid_<name>.txt": size("split/valid_*.txt"), "split hf/*.parquet": size("split/hf/*.parquet")}
    per_source: dict[str, list[int]] = {}
    with open(next(corpus.glob("sentences*/sentences.jsonl")), encoding="utf-8") as f:
        for line in f:
            r = json.loads(line)
            acc = per_source.setdefault(r.get("source") or "all", [0, 0])
            acc[0] += sum(len(s) for s in r["sentences"])
            acc[1] += len(r["sentences"])
    extracts = {}
    for d in sorted(corpus.glob("extract*/")):
        b, c = _text_bytes(d / "docs.jsonl")
        src = Path(json.loads((d / "manifest.json").read_text())["inputs"]["source"]["path"])
        extracts[d.name] = {"cleaned_text_bytes": b, "cleaned_chars": c, "source": str(src),
                            "source_bytes_now": src.stat().st_size if src.is_file() else None}
    return {"dir": str(corpus), "cleaned_text_bytes": text_b, "cleaned_chars": text_c, "extracts": extracts,
            "utf8_bytes_per_char": round(text_b / text_c, 4),
            "files": files, "bytes_per_cleaned_byte": {k: round(v / text_b, 4) for k, v in files.items()},
            "chars_per_sentence": {k: round(c / n, 2) for k, (c, n) in per_source.items() if n}}


def dump_part(dump: Path) -> dict:
    from koroberta.corpus import steps
    from koroberta.corpus.config import CorpusConfig
    from koroberta.corpus.sources import ReadStats, iter_source

    xml = 0
    with bz2.open(dump, "rb") as f:
        while chunk := f.read(1 << 22):
            xml += len(chunk)
    raw_chars = pages = 0
    for p in iter_source(dump, ReadStats(), dbname=""):
        if p.ns == 0 and not p.redirect and p.text.strip():
            raw_chars += len(p.text)
            pages += 1
    with tempfile.TemporaryDirectory(dir=ROOT / "bench" / "out") as tmp:
        t0 = time.perf_counter()
        d = steps.extract(CorpusConfig(dbname=""), dump, Path(tmp) / "corpus", workers=1)
        secs = time.perf_counter() - t0
        text_b, text_c = _text_bytes(d / "docs.jsonl")
        docs = json.loads((d / "manifest.json").read_text())["stats"]["documents"]
        jsonl = (d / "docs.jsonl").stat().st_size
    comp = dump.stat().st_size
    return {"file": str(dump), "compressed_bytes": comp, "xml_bytes": xml, "pages_yielded": pages,
            "raw_wikitext_chars": raw_chars, "documents_kept": docs, "cleaned_text_bytes": text_b,
            "cleaned_chars": text_c, "docs_jsonl_bytes": jsonl, "extract_s": round(secs, 1),
            "cleaned_bytes_per_compressed_byte": round(text_b / comp, 4),
            "cleaned_bytes_per_xml_byte": round(text_b / xml, 4),
            "cleaned_chars_per_raw_char": round(text_c / raw_chars, 4),
            "raw_chars_per_page": round(raw_chars / pages, 1)}


def xz_part(path: Path) -> dict:
    from koroberta.resources import xz_size

    n = 0
    with lzma.open(path, "rb") as f:
        while chunk := f.read(1 << 22):
            n += len(chunk)
    data = lzma.open(path, "rb").read()
    import gzip

    b, g = len(bz2.compress(data, 9)), len(gzip.compress(data, 6))
    return {"file": str(path), "compressed_bytes": path.stat().st_size, "decompressed_bytes": n,
            "index_size": xz_size(path), "ratio": round(n / path.stat().st_size, 4),
            "same_text_bz2_9_bytes": b, "bz2_ratio": round(n / b, 4),
            "same_text_gzip_6_bytes": g, "gzip_ratio": round(n / g, 4)}


def preprocess_part(split: Path, vocab: Path) -> dict:
    rows = []
    chars = sum(len(line) - 1 for s in ("train", "valid", "test")
                for line in open(split / f"{s}.txt", encoding="utf-8"))
    lines = sum(1 for s in ("train", "valid", "test") for _ in open(split / f"{s}.txt", "rb"))
    for workers, chunk in ((1, 20000), (2, 20000), (2, 5000), (2, 80000)):
        with tempfile.TemporaryDirectory(dir=ROOT / "bench" / "out") as tmp:
            code = ("import resource, sys\nfrom koroberta.cli import main\nrc = main(sys.argv[1:])\n"
                    "print('PEAK_KB', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)\nsys.exit(rc)")
            r = subprocess.run([sys.executable, "-c", code, "preprocess", "run", str(split), str(vocab),
                                f"{tmp}/db", "--workers", str(workers), "--chunk-lines", str(chunk)],
                               capture_output=True, text=True, cwd=ROOT)
            if r.returncode != 0:
                raise SystemExit(r.stderr[-2000:])
            peak = int(r.stdout.split("PEAK_KB")[1].split()[0])
            m = json.loads(Path(f"{tmp}/db/manifest.json").read_text())
            size = sum(p.stat().st_size for p in Path(f"{tmp}/db").glob("*.[bi][id][nx]"))
            tokens = sum(m["stats"]["tokens"].values())
            rows.append({"workers": workers, "chunk_lines": chunk, "peak_rss_mb": round(peak / 1024, 1),
                         "tokens": tokens, "bin_idx_bytes": size, "dtype": m["stats"]["dtype"]})
    with tempfile.TemporaryDirectory(dir=ROOT / "bench" / "out") as tmp:
        r = subprocess.run([sys.executable, "-m", "koroberta", "preprocess", "encode", "--spm-model",
                            str(vocab / "spm.model"), str(split / "train.txt"), f"{tmp}/train.spm"],
                           capture_output=True, text=True, cwd=ROOT)
        if r.returncode != 0:
            raise SystemExit(r.stderr[-2000:])
        pieces = Path(f"{tmp}/train.spm").stat().st_size
    text = (split / "train.txt").stat().st_size
    return {"split": str(split), "vocab": str(vocab), "chars": chars, "lines": lines, "runs": rows,
            "chars_per_token": round(chars / rows[0]["tokens"], 4), "train_text_bytes": text,
            "train_piece_text_bytes": pieces, "piece_text_per_text_byte": round(pieces / text, 4)}


def _peak_of(code: str) -> float:
    r = subprocess.run([sys.executable, "-c", code + "\nimport resource\n"
                        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"],
                       capture_output=True, text=True, cwd=ROOT, env={**os.environ, "TRANSFORMERS_OFFLINE": "1"})
    if r.returncode != 0:
        raise SystemExit(r.stderr[-2000:])
    return round(int(r.stdout.split()[-1]) / 1024, 1)


def processes_part(vocab: Path | None) -> dict:
    out = {"torch+fairseq+transformers_mb": _peak_of("import torch, fairseq.models.roberta, transformers\n"
                                                    "transformers.RobertaForMaskedLM"),
           "torch+transformers_mb": _peak_of("import torch, transformers\ntransformers.RobertaForMaskedLM")}
    with tempfile.TemporaryDirectory() as small:
        # a 2,000-piece vocab as tests/conftest.py's tiny_vocab makes it: the fixed part of the files (normaliser)
        from koroberta.spm.config import SpmConfig
        from koroberta.spm.train import train_vocab

        text = Path(small) / "train.txt"
        text.write_text((ROOT / "tests/fixtures/kowiki-docs.txt").read_text(encoding="utf-8"), encoding="utf-8")
        train_vocab(SpmConfig(vocab_size=2000, character_coverage=0.995, threads=1), text, Path(small) / "v")
        out["vocabs"] = [_vocab_sizes(Path(small) / "v")] + ([_vocab_sizes(vocab)] if vocab is not None else [])
    if len(out["vocabs"]) == 2:
        (a, b) = out["vocabs"]
        for key in ("vocab_dir_bytes", "tokenizer_files_bytes"):
            per = (b[key] - a[key]) / (b["rows"] - a["rows"])
            out[key + "_fit"] = {"per_row": round(per, 1), "fixed": round(a[key] - per * a["rows"])}
    return out


def _vocab_sizes(vocab: Path) -> dict:
    """Rows, the vocab directory's files (spm.model, spm.vocab, dict.txt) and the exported tokenizer's files
    (tokenizer.json, tokenizer_config.json, special_tokens_map.json, spm.model)."""
    from koroberta.convert.export import export_tokenizer
    from koroberta.convert.vocab import resolve_vocab
    from koroberta.layout import read_dict_symbols

    rows = len(read_dict_symbols(vocab / "dict.txt")) + 5  # 4 specials + the <mask> dict.txt does not list
    with tempfile.TemporaryDirectory() as tmp:
        export_tokenizer(resolve_vocab(vocab, rows), Path(tmp), 512)
        size = sum(p.stat().st_size for p in Path(tmp).iterdir()) + (vocab / "spm.model").stat().st_size
    return {"dir": str(vocab), "rows": rows, "tokenizer_files_bytes": size,
            "vocab_dir_bytes": sum((vocab / f).stat().st_size for f in ("spm.model", "spm.vocab", "dict.txt"))}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--corpus", type=Path, default=ROOT / "bench/out/corpus_stage/full/corpus")
    ap.add_argument("--dump", type=Path, nargs="*", default=[SHARED / "kowiki/kowiki-sample.xml.bz2",
                                                             ROOT / "data/demo/kowiki-demo.xml.bz2"])
    ap.add_argument("--xz", type=Path, default=SHARED / "kowiki-text/kowiki-extracted-AA.txt.xz")
    ap.add_argument("--split", type=Path, default=ROOT / "bench/out/preprocess_hf/split")
    ap.add_argument("--vocab", type=Path, default=ROOT / "bench/out/preprocess_hf/spm-vocab")
    ap.add_argument("--parts", default="corpus,dump,xz,preprocess,processes")
    ap.add_argument("--out", type=Path)
    a = ap.parse_args()
    parts = a.parts.split(",")
    res: dict = {"date": time.strftime("%Y-%m-%d %H:%M"), "cpus": os.cpu_count(), "loadavg": os.getloadavg()}
    if "corpus" in parts and (a.corpus / "clean" / "docs.jsonl").is_file():
        res["corpus"] = corpus_part(a.corpus)
    if "dump" in parts:
        res["dump"] = [dump_part(d) for d in a.dump if d.is_file()]
    if "xz" in parts and a.xz.is_file():
        res["xz"] = xz_part(a.xz)
    if "preprocess" in parts and (a.split / "train.txt").is_file() and (a.vocab / "spm.model").is_file():
        res["preprocess"] = preprocess_part(a.split, a.vocab)
    if "processes" in parts:
        res["processes"] = processes_part(a.vocab if (a.vocab / "spm.model").is_file() else None)
    text = json.dumps(res, indent=1, ensure_ascii=False)
    print(text)
    if a.out:
        a.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
