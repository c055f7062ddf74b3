"""Masked-token accuracy of several checkpoints of one run against the unigram baseline: is the model still learning?

    .venv/bin/python bench/mlm_curve.py --workdir bench/out/quality/pipeline bench/out/quality/curve/checkpoint_*.pt

Each checkpoint is exported with ``koroberta convert --no-parity`` into a temporary directory and scored by the
pipeline's learning check (``koroberta.eval.mlm.masked_lm_check``) on the first ``--lines`` lines of the run's valid
split, with the same seeded masks for every checkpoint. Prints a markdown table.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoints", nargs="+", help="fairseq checkpoints of one run")
    ap.add_argument("--workdir", required=True, help="the run's workdir (spm/, data-bin/, corpus/split/valid.txt)")
    ap.add_argument("--lines", type=int, default=1000, help="valid lines to score")
    ap.add_argument("--max-length", type=int, default=128, help="tokens per line (the run's tokens_per_sample)")
    a = ap.parse_args()
    wd = Path(a.workdir)
    from koroberta.eval.mlm import masked_lm_check

    def updates(p: str) -> int:
        m = re.search(r"(\d+)\.pt$", p)
        return int(m.group(1)) if m else sys.maxsize  # checkpoint_last.pt: the newest

    print("| checkpoint | masked-token accuracy | unigram accuracy | loss (bits) | unigram loss (bits) | masked |")
    print("|---|---:|---:|---:|---:|---:|")
    for ck in sorted(a.checkpoints, key=updates):
        with tempfile.TemporaryDirectory() as tmp:
            hf = Path(tmp) / "hf"
            r = subprocess.run([str(ROOT / ".venv/bin/koroberta"), "convert", ck, str(wd / "spm"), str(hf),
                                "--no-parity"], capture_output=True, text=True)
            if r.returncode != 0:
                sys.exit(f"mlm_curve: {ck}: convert failed: {r.stderr.strip().splitlines()[-1]}")
            c = masked_lm_check(hf, wd / "corpus/split/valid.txt", wd / "data-bin", max_lines=a.lines,
                                max_length=a.max_length)
        print(f"| {Path(ck).name} | {c.accuracy:.3f} | {c.unigram_accuracy:.3f} | {c.loss_bits:.2f} | "
              f"{c.unigram_loss_bits:.2f} | {c.masked:,} |", flush=True)


if __name__ == "__main__":
    main()
