"""How configs/demo.yaml's training recipe was chosen (issue 25): train variants on the demo's data-bin, score each.

    .venv/bin/python bench/demo_recipe.py --workdir runs/demo --out bench/out/demo_recipe [--variants F2,G2]

``make demo`` first (its ``runs/demo/data-bin`` is what every variant trains on). Each variant is
``koroberta train configs/demo.yaml DATA_BIN OUT/<name> <its options>`` with every knob that differs between the
variants spelled out, one CPU thread each (two variants can run side by side on 2 cores; the chosen one's wall time
is measured by ``make demo`` itself, with the config's 2 threads). A finished variant is not retrained.

The score is the learning check's measure computed on the fairseq checkpoint, without a conversion: on the first
1,000 items of the data-bin's valid split, 15 % of the tokens (seeded, never ``<s>``/``</s>``) are replaced by
``<mask>``; masked-token accuracy and loss in bits against the unigram model of ``train.bin`` (always the most
frequent token; add-one frequencies as probabilities), as :mod:`koroberta.eval.mlm` does on the HF export. The positions
differ from the pipeline's check (its mask draws are over tokenized text lines), so its figures differ a little;
BENCHMARKS.md gives both for the chosen recipe. Results: ``OUT/results.json`` and a table on stdout.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

#: what every variant spells out; a variant's options are these with its changes
BASE = {"--arch": "roberta_prenorm", "--layernorm-embedding": None, "--dropout": "0", "--attention-dropout": "0",
        "--mask-prob": "0.25", "--tokens-per-sample": "128", "--max-positions": "128", "--batch-size": "16",
        "--lr": "0.002", "--warmup-updates": "100", "--max-update": "2000", "--encoder-attention-heads": "2",
        "--sample-break-mode": "complete", "--cpu-threads": "1"}
#: name -> (what it tests, its changes to BASE); in the order they were run
VARIANTS: dict[str, tuple[str, dict[str, Any]]] = {
    "before": ("the demo before issue 25: post-LN, dropout 0.1, 15 % masking, 1,200 x 8 x 256",
               {"--arch": "roberta_base", "--dropout": "0.1",  # post-LN RoBERTa has the embedding LayerNorm
                "--attention-dropout": "0.1", "--mask-prob": "0.15", "--tokens-per-sample": "256",
                "--max-positions": "256", "--batch-size": "8", "--lr": "0.001", "--warmup-updates": "60",
                "--max-update": "1200"}),
    "B": ("pre-LN at lr 6e-3, 1,500 updates", {"--lr": "0.006", "--max-update": "1500"}),
    "E1": ("2,400 updates of 8 x 128 (the same tokens as A, twice the updates)",
           {"--batch-size": "8", "--max-update": "2400"}),
    "E3": ("E1 at lr 3e-3", {"--batch-size": "8", "--max-update": "2400", "--lr": "0.003"}),
    "F1": ("2,000 x 16 x 128", {}),
    "F2": ("F1 with 4 heads", {"--encoder-attention-heads": "4"}),
    "G1": ("F2 at lr 3e-3", {"--encoder-attention-heads": "4", "--lr": "0.003"}),
    "G2": ("F2 with 40 % masking (chosen)", {"--encoder-attention-heads": "4", "--mask-prob": "0.4"}),
    "H1": ("G2 with sample_break_mode none (blocks start mid-sentence)",
           {"--encoder-attention-heads": "4", "--mask-prob": "0.4", "--sample-break-mode": "none"}),
    "H2": ("F2 with 50 % masking", {"--encoder-attention-heads": "4", "--mask-prob": "0.5"}),
}


def options(changes: dict[str, Any]) -> list[str]:
    out: list[str] = []
    for k, v in {**BASE, **changes}.items():
        if v is None:  # a switch
            out.append(k)
        else:
            out += [k, str(v)]
    return out


def train(name: str, changes: dict[str, Any], data_bin: Path, out: Path) -> Path:
    save = out / name
    if (save / "_COMPLETE").exists():  # koroberta train's marker: the variant is done
        return save
    cmd = [str(ROOT / ".venv/bin/koroberta"), "train", str(ROOT / "configs/demo.yaml"), str(data_bin), str(save),
           # validation every 600 updates, as in the runs BENCHMARKS.md reports (not measured to be result-neutral)
           "--no-tensorboard", "--log-interval", "100", "--save-interval-updates", "600",
           "--validate-interval-updates", "600", *options(changes)]
    with open(out / f"{name}.log", "w", encoding="utf-8") as log:
        rc = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT).returncode
    if rc != 0:
        sys.exit(f"demo_recipe: variant {name} failed (exit {rc}); see {out / f'{name}.log'}")
    return save


def score(checkpoint: Path, data_bin: Path, lines: int = 1000, mask_prob: float = 0.15, seed: int = 0
          ) -> dict[str, float]:
    """The learning check's measure on a fairseq checkpoint (module docstring)."""
    os.environ.setdefault("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")  # our own checkpoint (fairseq's loader)
    import numpy as np
    import torch
    from fairseq import checkpoint_utils
    from fairseq.data import data_utils

    from koroberta.eval.mlm import unigram_counts, unigram_model

    torch.set_num_threads(1)
    models, _, task = checkpoint_utils.load_model_ensemble_and_task([str(checkpoint)],
                                                                    arg_overrides={"data": str(data_bin)})
    model, d = models[0].eval(), task.source_dictionary
    mask = d.index("<mask>")
    valid = data_utils.load_indexed_dataset(str(data_bin / "valid"), d)
    counts = unigram_counts(data_bin, len(d) - 1).astype(np.float64)[: len(d)]
    top, log2p = unigram_model(counts, [*range(d.nspecial), mask])  # <s> <pad> </s> <unk> <mask>
    rng = np.random.default_rng(seed)
    n = hits = top_hits = 0
    nats = top_bits = 0.0
    with torch.no_grad():
        for i in range(min(lines, len(valid))):
            toks = torch.cat([torch.tensor([d.bos()]), valid[i][: model.max_positions() - 2].long()])
            if toks[-1] != d.eos():  # cut to the positions: close the sequence as the model saw it in training
                toks = torch.cat([toks, torch.tensor([d.eos()])])
            sel = [j for j in np.flatnonzero(rng.random(len(toks)) < mask_prob) if 0 < j < len(toks) - 1]
            if not sel:
                continue
            x = toks.clone()
            x[sel] = mask
            logp = torch.log_softmax(model(x[None])[0][0, sel].float(), -1)
            gold = toks[sel]
            hits += int((logp.argmax(-1) == gold).sum())
            nats += float(-logp[torch.arange(len(sel)), gold].sum())
            top_hits += int((gold == top).sum())
            top_bits += float(-log2p[gold.numpy()].sum())
            n += len(sel)
    acc, uacc = hits / n, top_hits / n
    bits, ubits = nats / n / math.log(2), top_bits / n
    return {"masked": n, "accuracy": round(acc, 4), "unigram_accuracy": round(uacc, 4), "loss_bits": round(bits, 4),
            "unigram_loss_bits": round(ubits, 4), "accuracy_ratio": round(acc / uacc, 3),
            "bits_below_unigram": round(ubits - bits, 3)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workdir", default="runs/demo", help="a finished demo run (its data-bin is trained on)")
    ap.add_argument("--out", required=True, help="where the variants' checkpoints and results go")
    ap.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated names (default: all)")
    a = ap.parse_args()
    data_bin = Path(a.workdir).resolve() / "data-bin"
    if not (data_bin / "dict.txt").is_file():
        sys.exit(f"demo_recipe: {data_bin}: no data-bin; run `make demo` first or pass --workdir")
    names = [v.strip() for v in a.variants.split(",") if v.strip()]
    unknown = [v for v in names if v not in VARIANTS]
    if unknown:
        sys.exit(f"demo_recipe: unknown variant(s) {', '.join(unknown)}; choose from {', '.join(VARIANTS)}")
    out = Path(a.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    results_path = out / "results.json"
    results: dict[str, Any] = json.loads(results_path.read_text()) if results_path.exists() else {}
    for name in names:
        what, changes = VARIANTS[name]
        save = train(name, changes, data_bin, out)
        results[name] = {"what": what, "options": options(changes),
                         **score(save / "checkpoint_last.pt", data_bin)}
        results_path.write_text(json.dumps(results, indent=1, ensure_ascii=False) + "\n")
        r = results[name]
        print(f"| {name} | {what} | {r['accuracy']:.3f} vs {r['unigram_accuracy']:.3f} ({r['accuracy_ratio']:.2f}x) "
              f"| {r['loss_bits']:.2f} vs {r['unigram_loss_bits']:.2f} ({r['bits_below_unigram']:.2f} lower) |",
              flush=True)


if __name__ == "__main__":
    main()
