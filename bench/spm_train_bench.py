"""spm training time and peak RSS at N sampled sentences (bench, not a test).

    .venv/bin/python bench/spm_train_bench.py --text bench/out/spm/kowiki-AA.sent.txt --copies 2 --sample 1000000

``--copies K`` concatenates the text K times (the 105 MB kowiki file has ~0.74M rough sentences; 1M/5M samples
need 2/7 copies). Each run is a fresh process, so ru_maxrss is this training's peak.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--text", required=True)
    ap.add_argument("--copies", type=int, default=1)
    ap.add_argument("--sample", type=int, default=0)
    ap.add_argument("--vocab", type=int, default=32000)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--model-type", default="unigram")
    ap.add_argument("--out", default="bench/out/spm/vocab")
    a = ap.parse_args()
    from koroberta.artifacts import read_manifest
    from koroberta.spm.config import SpmConfig
    from koroberta.spm.train import train_vocab

    src = Path(a.text)
    if a.copies > 1:
        cat = src.with_name(f"{src.stem}.x{a.copies}.txt")
        if not cat.exists():
            with open(cat, "wb") as o:
                for _ in range(a.copies):
                    with open(src, "rb") as f:
                        shutil.copyfileobj(f, o)
        src = cat
    cfg = SpmConfig(vocab_size=a.vocab, input_sentence_size=a.sample, shuffle=True, threads=a.threads,
                    model_type=a.model_type)
    t = time.perf_counter()
    out = train_vocab(cfg, src, a.out, force=True, overwrite=True)
    wall = time.perf_counter() - t
    timing = json.loads((out / "timing.json").read_text())
    stats = read_manifest(out)["stats"]
    print(json.dumps({"text": str(src), "bytes": src.stat().st_size, "sentences_read": stats["sentences_read"],
                      "sample": a.sample, "vocab": a.vocab, "threads": timing["threads"], "cpus": os.cpu_count(),
                      "train_s": timing["train_s"], "wall_s": round(wall, 1), "peak_rss_mb": timing["peak_rss_mb"]}))


if __name__ == "__main__":
    main()
