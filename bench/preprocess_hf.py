"""preprocess with an imported HF tokenizer vs with spm: throughput on the same text, same run (bench, not a test).

    .venv/bin/python bench/preprocess_hf.py --mb 20 --repeat 3 --out bench/results/preprocess_hf.json

Text: the first ``--mb`` MB (decompressed, cut after the next ``</doc>``) of the real kowiki WikiExtractor shard
``../shared/data/kowiki-text/kowiki-extracted-AA.txt.xz``: ``<doc ...>`` lines and the title line after them
dropped, ``</doc>`` -> a blank line (document boundary), blank lines inside a document dropped, one paragraph per
line. Without the shard: the test fixture's 3,000 kowiki lines, repeated to ``--mb``.

Tokenizers, trained on that text once and kept under ``--work`` (git-ignored ``bench/out/``), not timed:

* ``hf``: a WordPiece of 32,000 tokens in the ``klue/roberta-base`` layout (``[CLS] [PAD] [SEP] [UNK] [MASK]`` at
  ids 0-4; the settings of ``tests/hf_models.py``), saved with transformers' ``save_pretrained`` and turned into an
  imported vocab dir by the import's tokenizer half (``koroberta.importhf.vocab.write_vocab``, 32,000 rows);
* ``spm``: ``koroberta spm train`` (unigram 32,000, the stage's defaults, 2 threads; ``hard_vocab_limit: false``
  so that a smoke run on a small slice works, fewer pieces then).

Timed, the cases interleaved in every one of ``--repeat`` rounds, min kept (the box is shared: single timings vary
by up to +-30 %), wall and CPU (``process_time``: all threads of this process):

1. the stage: ``preprocess()`` (``method: fused``, the default) with train = the text, valid/test = its first 2,000
   lines, for spm and hf at 1 and 2 workers; rates over all three files; hf/spm ratio at the same worker count.
   The hf data-bins of 1 and 2 workers are compared byte for byte.
2. the batch calls alone, on the in-memory lines in the stage's 20,000-line chunks (no reading, cleaning or
   writing): spm ``encode(out_type=int, num_threads=1)``; HF ``encode_batch`` vs ``encode_batch_fast`` (+ ``.ids``,
   serial: ``TOKENIZERS_PARALLELISM=false``); the HF encoder's own 2 slices in 2 Python threads vs the library's
   rayon pool (``TOKENIZERS_PARALLELISM=true``, pool of ``os.cpu_count()`` threads) -- the choice
   ``koroberta.preprocess.encode`` documents.
"""

from __future__ import annotations

import argparse
import json
import lzma
import os
import platform
import shutil
import sys
import time
from pathlib import Path
from typing import Any, Callable

REPO = Path(__file__).resolve().parents[1]
SHARD = REPO.parent / "shared" / "data" / "kowiki-text" / "kowiki-extracted-AA.txt.xz"
WP_SPECIALS = ["[CLS]", "[PAD]", "[SEP]", "[UNK]", "[MASK]"]


def prepare_text(mb: float, out: Path) -> dict[str, Any]:
    """``out`` = the benchmark text (see the module docstring); returns where it came from."""
    budget = int(mb * 1e6)
    if SHARD.is_file():
        n = 0
        with lzma.open(SHARD, "rt", encoding="utf-8") as f, open(out, "w", encoding="utf-8") as w:
            title_next = False
            for line in f:
                n += len(line.encode("utf-8"))
                line = line.strip()
                if line.startswith("<doc "):
                    title_next = True
                elif title_next:
                    title_next = False
                elif line == "</doc>":
                    w.write("\n")
                    if n >= budget:
                        break
                elif line:
                    w.write(line + "\n")
        return {"source": str(SHARD.relative_to(REPO.parent)), "read_mb": round(n / 1e6, 2)}
    sys.path.insert(0, str(REPO / "tests"))
    from conftest import kowiki_lines

    block = "\n".join(kowiki_lines()) + "\n\n"
    out.write_text(block * max(1, budget // len(block.encode("utf-8"))), encoding="utf-8")
    return {"source": "tests/fixtures/spm-kowiki-lines.txt.xz, repeated (no kowiki shard found)"}


def build_vocabs(text: Path, work: Path) -> tuple[Path, Path]:
    """(hf vocab dir, spm vocab dir), trained on ``text`` unless ``work`` has them from an earlier run."""
    from koroberta.spm.config import SpmConfig
    from koroberta.spm.train import train_vocab

    hf_vocab, hf_dir = work / "hf-vocab", work / "hf-wordpiece"
    if not (hf_vocab / "vocab.json").is_file():
        import transformers as tf
        from tokenizers import BertWordPieceTokenizer

        from koroberta.importhf.vocab import write_vocab

        lines = [l for l in text.read_text(encoding="utf-8").split("\n") if l.strip()]
        bw = BertWordPieceTokenizer(lowercase=False, strip_accents=False, clean_text=True, handle_chinese_chars=True)
        bw.train_from_iterator(lines, vocab_size=32000, min_frequency=2, special_tokens=WP_SPECIALS,
                               wordpieces_prefix="##", show_progress=False)
        tok = tf.BertTokenizerFast(tokenizer_object=bw._tokenizer, cls_token="[CLS]", pad_token="[PAD]",
                                   sep_token="[SEP]", unk_token="[UNK]", mask_token="[MASK]", bos_token="[CLS]",
                                   eos_token="[SEP]", do_lower_case=False, model_max_length=512)
        shutil.rmtree(hf_dir, ignore_errors=True)
        tok.save_pretrained(str(hf_dir))
        rows = -(-len(tok) // 8) * 8
        shutil.rmtree(hf_vocab, ignore_errors=True)
        write_vocab(hf_dir, hf_vocab, rows=rows)
    # hard_vocab_limit off: a small --mb slice (a smoke run) cannot support 32,000 pieces; the manifest says how many
    spm_vocab = train_vocab(SpmConfig(vocab_size=32000, threads=2, hard_vocab_limit=False), text, work / "spm-vocab")
    return hf_vocab, spm_vocab


def timed(fn: Callable[[], Any]) -> tuple[float, float]:
    t, c = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - t, time.process_time() - c


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mb", type=float, default=20.0, help="MB of the decompressed shard to read (default 20)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--work", default="bench/out/preprocess_hf")
    ap.add_argument("--out", default="bench/results/preprocess_hf.json")
    a = ap.parse_args()
    os.environ.setdefault("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
    import numpy as np
    import tokenizers

    from koroberta.artifacts import sha256_file
    from koroberta.hfvocab import load_hf_vocab
    from koroberta.layout import load_processor
    from koroberta.preprocess.build import preprocess
    from koroberta.preprocess.config import PreprocessConfig
    from koroberta.preprocess.encode import HFEncoder

    work = Path(a.work)
    work.mkdir(parents=True, exist_ok=True)
    split = work / "split"
    split.mkdir(exist_ok=True)
    text = split / "train.txt"
    t0 = time.perf_counter()
    res: dict[str, Any] = {"command": "python " + " ".join(sys.argv), "date": time.strftime("%Y-%m-%d %H:%M"),
                           "machine": {"cpus": os.cpu_count(), "affinity": len(os.sched_getaffinity(0)),
                                       "python": platform.python_version(), "tokenizers": tokenizers.__version__,
                                       "loadavg_start": [round(x, 2) for x in os.getloadavg()]}}
    res["text"] = prepare_text(a.mb, text)
    lines = text.read_text(encoding="utf-8").split("\n")[:-1]
    head = "".join(l + "\n" for l in lines[:2000])
    for s in ("valid", "test"):
        (split / f"{s}.txt").write_text(head, encoding="utf-8")
    files = [split / f"{s}.txt" for s in ("train", "valid", "test")]
    n_bytes = sum(p.stat().st_size for p in files)
    n_lines = len(lines) + 4000
    res["text"].update({"train_lines": len(lines), "train_mb": round(text.stat().st_size / 1e6, 2),
                        "documents": sum(1 for l in lines if not l), "all_splits_lines": n_lines,
                        "all_splits_mb": round(n_bytes / 1e6, 2)})
    t = time.perf_counter()
    vocabs = dict(zip(("hf", "spm"), build_vocabs(text, work)))
    res["vocab_build_s"] = round(time.perf_counter() - t, 1)
    hf = load_hf_vocab(vocabs["hf"])
    res["vocabs"] = {"hf": {"tokenizer": "WordPiece (klue layout)", "tokens": hf.record["tokenizer_tokens"],
                            "rows": hf.rows},
                     "spm": {"tokenizer": "spm unigram"}}

    # 1 + 2, interleaved per round
    cases = [(k, w) for w in (1, 2) for k in ("spm", "hf")]
    stage: dict[str, list[tuple[float, float]]] = {f"{k}_w{w}": [] for k, w in cases}
    chunks = [lines[i:i + 20000] for i in range(0, len(lines), 20000)]
    sp = load_processor(vocabs["spm"] / "spm.model")
    tok = hf.tokenizer()

    def serial(fn: Callable) -> Callable[[], None]:
        def run() -> None:
            os.environ["TOKENIZERS_PARALLELISM"] = "false"
            for c in chunks:
                [e.ids for e in fn(c, add_special_tokens=False)]
        return run

    def rayon() -> None:
        os.environ["TOKENIZERS_PARALLELISM"] = "true"  # the library's own pool (started on first use, then kept)
        for c in chunks:
            [e.ids for e in tok.encode_batch_fast(c, add_special_tokens=False)]
        os.environ.pop("TOKENIZERS_PARALLELISM")

    def ours(threads: int) -> Callable[[], None]:
        def run() -> None:
            with HFEncoder(hf, threads) as enc:
                for c in chunks:
                    enc.submit(c)()
        return run

    bare_fns: dict[str, Callable[[], None]] = {
        "spm_encode_int_1thread": lambda: [sp.encode(c, out_type=int, num_threads=1) for c in chunks],
        "hf_encode_batch_serial": serial(tok.encode_batch),
        "hf_encode_batch_fast_serial": serial(tok.encode_batch_fast),
        "hf_encoder_1thread": ours(1),
        "hf_encoder_2threads": ours(2),
        "hf_encode_batch_fast_rayon": rayon,
    }
    bare: dict[str, list[tuple[float, float]]] = {k: [] for k in bare_fns}
    for r in range(a.repeat):
        for k, w in cases:
            out = work / f"db-{k}-w{w}"
            stage[f"{k}_w{w}"].append(timed(lambda: preprocess(PreprocessConfig(), split, vocabs[k], out, workers=w,
                                                               force=True, overwrite=True)))
        for name, fn in bare_fns.items():
            if name.endswith("rayon") and r == 0:
                fn()  # warm-up: the pool's start is a one-off cost, not throughput
            bare[name].append(timed(fn))
        print(f"round {r + 1}/{a.repeat} done, {time.perf_counter() - t0:.0f} s", flush=True)

    def best(runs: list[tuple[float, float]]) -> dict[str, Any]:
        i = int(np.argmin([w for w, _ in runs]))
        return {"wall_s": round(runs[i][0], 3), "cpu_s": round(runs[i][1], 3),
                "wall_s_all": [round(w, 3) for w, _ in runs], "cpu_s_all": [round(c, 3) for _, c in runs]}

    res["stage"] = {}
    for key, runs in stage.items():
        b = best(runs)
        b.update({"lines_per_s": round(n_lines / b["wall_s"]), "mb_per_s": round(n_bytes / 1e6 / b["wall_s"], 2)})
        res["stage"][key] = b
    for w in (1, 2):
        st = res["stage"]
        st[f"hf_vs_spm_w{w}"] = round(st[f"spm_w{w}"]["wall_s"] / st[f"hf_w{w}"]["wall_s"], 3)  # hf rate / spm rate
    res["stage"]["hf_w2_speedup_over_w1"] = round(res["stage"]["hf_w1"]["wall_s"] / res["stage"]["hf_w2"]["wall_s"], 3)
    res["stage"]["spm_w2_speedup_over_w1"] = round(res["stage"]["spm_w1"]["wall_s"] / res["stage"]["spm_w2"]["wall_s"],
                                                   3)
    res["hf_data_bins_identical_w1_w2"] = all(
        sha256_file(work / "db-hf-w1" / f) == sha256_file(work / "db-hf-w2" / f)
        for f in ("dict.txt", "train.bin", "train.idx", "valid.bin", "valid.idx", "test.bin", "test.idx"))
    for k in ("hf", "spm"):
        res["vocabs"][k]["vocab_size"] = json.loads((work / f"db-{k}-w1" / "manifest.json").read_text())["stats"][
            "vocab_size"]
    res["tokens"] = {k: json.loads((work / f"db-{k}-w1" / "manifest.json").read_text())["stats"]["tokens"]["train"]
                     for k in ("hf", "spm")}
    res["bare_calls_train_only"] = {k: best(v) for k, v in bare.items()}
    bc = res["bare_calls_train_only"]
    res["bare_ratios"] = {
        "fast_vs_batch_cpu": round(bc["hf_encode_batch_fast_serial"]["cpu_s"] / bc["hf_encode_batch_serial"]["cpu_s"],
                                   3),
        "fast_vs_batch_wall": round(bc["hf_encode_batch_fast_serial"]["wall_s"]
                                    / bc["hf_encode_batch_serial"]["wall_s"], 3),
        "ours_2threads_speedup": round(bc["hf_encoder_1thread"]["wall_s"] / bc["hf_encoder_2threads"]["wall_s"], 3),
        "rayon_speedup_over_ours_1thread": round(bc["hf_encoder_1thread"]["wall_s"]
                                                 / bc["hf_encode_batch_fast_rayon"]["wall_s"], 3),
        "hf_serial_vs_spm_1thread_wall": round(bc["spm_encode_int_1thread"]["wall_s"]
                                               / bc["hf_encode_batch_fast_serial"]["wall_s"], 3),
    }
    res["machine"]["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    res["total_s"] = round(time.perf_counter() - t0, 1)
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(res, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(json.dumps({k: res[k] for k in ("text", "stage", "bare_ratios", "hf_data_bins_identical_w1_w2")}, indent=1,
                     ensure_ascii=False))


if __name__ == "__main__":
    main()
