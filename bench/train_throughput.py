"""Training throughput benchmark (issue #7): tokens/s, MFU and peak memory of the real training path.

Each named configuration runs ``N`` updates of exactly the command ``koroberta train`` builds
(:func:`koroberta.train.command.fairseq_args`, launched through :mod:`koroberta.train.entry`), with checkpointing
and validation switched off, on a synthetic data-bin (Zipf-distributed ids over a 32k vocab in the koroberta dict
layout, sentences of 8-64 tokens, documents of 4-40 sentences) or on a data-bin you pass. Throughput is fairseq's
own ``wps`` (all-reduced tokens/s) averaged over the ``train_inner`` intervals after the first (warm-up).

Configurations (``--configs``; the first is the anchor every ratio is measured against, in the same run):

* ``stock``: the base recipe per GPU — batch 16 x 512 tokens, update_freq 1, fairseq's default 1 loader worker,
  ``sample_break_mode complete``, fp16 on CUDA (fp32 on CPU), vocab padded to a multiple of 8.
* ``bs8_uf2`` / ``bs32_uf1`` / ``bs4_uf4``: batch per GPU vs update_freq (tokens per update differ; tokens/s compares).
* ``workers0`` / ``workers4``: ``--num-workers``.
* ``break_none``: ``sample_break_mode none`` (no padding: full 512-token blocks).
* ``pad64``: the same data with dict fillers so the embedding has a multiple-of-64 rows.
* ``amp``: ``--amp`` instead of ``--fp16`` (CUDA only).
* ``fused_adam``: fairseq uses FusedAdam automatically when apex is importable on CUDA; reported as n/a otherwise.

CPU smoke run (proves the path works; the numbers are not GPU results)::

    .venv/bin/python bench/train_throughput.py --tiny --updates 12 --out bench/results/train.md

GPU run (roberta_base)::

    python bench/train_throughput.py --updates 60 --out bench/results/train-gpu.md
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from koroberta.spm.layout import FAIRSEQ_SPECIALS, filler, n_fillers, read_dict_symbols  # noqa: E402
from koroberta.train import child_env  # noqa: E402
from koroberta.train.command import fairseq_args  # noqa: E402
from koroberta.train.config import TrainConfig  # noqa: E402
from koroberta.train.flops import flops_per_token, gpu_peak_flops, mfu, shape_from_config  # noqa: E402
from koroberta.train.logs import parse_lines  # noqa: E402

VARIANTS: dict[str, dict] = {
    "stock": {},
    "bs8_uf2": {"batch_size": 8, "update_freq": 2},
    "bs4_uf4": {"batch_size": 4, "update_freq": 4},
    "bs32_uf1": {"batch_size": 32},
    "workers0": {"num_workers": 0},
    "workers4": {"num_workers": 4},
    "break_none": {"sample_break_mode": "none"},
    "pad64": {"_pad_to": 64},
    "amp": {"precision": "amp", "_cuda_only": True},
    "fused_adam": {"_needs_apex": True},
}
DEFAULT_CONFIGS = ["stock", "bs8_uf2", "bs32_uf1", "workers0", "workers4", "break_none", "pad64", "amp",
                   "fused_adam"]


def synth_databin(out: Path, *, vocab: int, tokens: int, pad_to: int, seed: int = 0) -> Path:
    """A fairseq data-bin of Zipf(1.1)-distributed ids with koroberta's dict layout (spm ids 3..V-1 + fillers)."""
    rng = np.random.default_rng(seed)
    out.mkdir(parents=True, exist_ok=True)
    pieces = [f"▁p{i}" for i in range(3, vocab)]
    dict_lines = [f"{p} {vocab - i}" for i, p in enumerate(pieces, start=3)]
    dict_lines += [f"{filler(i)} 0" for i in range(n_fillers(vocab, pad_to))]
    (out / "dict.txt").write_text("\n".join(dict_lines) + "\n", encoding="utf-8")
    text = out / "raw.txt"
    with open(text, "w", encoding="utf-8") as f:
        n = 0
        while n < tokens:
            for _ in range(int(rng.integers(4, 41))):
                ln = int(rng.integers(8, 65))
                ids = np.minimum(rng.zipf(1.1, ln), len(pieces)) - 1
                f.write(" ".join(pieces[i] for i in ids) + "\n")
                n += ln
            f.write("\n")
    subprocess.run([str(Path(sys.executable).parent / "fairseq-preprocess"), "--only-source", "--srcdict",
                    str(out / "dict.txt"), "--trainpref", str(text), "--destdir", str(out),
                    "--dataset-impl", "mmap", "--workers", "2"], check=True, capture_output=True)
    for ext in ("bin", "idx"):  # runs use --disable-validation: valid only has to exist, no second binarization
        shutil.copyfile(out / f"train.{ext}", out / f"valid.{ext}")
    text.unlink()
    return out


def with_dict_padding(src: Path, dst: Path, pad_to: int) -> Path:
    """Same binarized data, dict.txt with extra fillers (ids of real pieces are unchanged: fillers are at the end)."""
    shutil.copytree(src, dst, dirs_exist_ok=True)
    lines = [l for l in (src / "dict.txt").read_text(encoding="utf-8").splitlines() if not l.startswith("madeupword")]
    v = len(lines) + 3  # spm vocab size
    lines += [f"{filler(i)} 0" for i in range(n_fillers(v, pad_to))]
    (dst / "dict.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return dst


def run_one(name: str, cfg: TrainConfig, data_bin: Path, work: Path, *, cuda: bool, world: int) -> dict:
    save = work / f"save-{name}"
    args = fairseq_args(cfg, data_bin, save, cuda=cuda)
    args += ["--no-save", "--disable-validation"]
    env = child_env(cpu_threads=0 if cuda else cfg.cpu_threads)
    env["KOROBERTA_MEMORY_REPORT"] = str(work / f"mem-{name}")
    if world > 1:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(world),
               "-m", "koroberta.train.entry", *args]
    else:
        cmd = [sys.executable, "-m", "koroberta.train.entry", *args]
    t0 = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=REPO)
    wall = time.perf_counter() - t0
    if r.returncode != 0:
        return {"name": name, "error": (r.stdout + r.stderr).strip().splitlines()[-1][:200]}
    tlog = parse_lines(r.stdout.splitlines() + r.stderr.splitlines())
    _, wps = tlog.series("inner", "wps")
    steady = wps[1:] if len(wps) > 1 else wps
    if not steady:  # nothing to measure (e.g. --updates below the log interval): an error row, not a crash later
        return {"name": name, "error": f"no train_inner log line in {tlog.updates} updates (raise --updates)"}
    mems = [json.loads(p.read_text()) for p in sorted(work.glob(f"mem-{name}.rank*.json"))]
    return {"name": name, "tokens_per_s": float(np.mean(steady)), "wall_s": wall,
            "updates": tlog.updates, "intervals": len(steady),
            "peak_rss_mib": max(m["max_rss_mib"] for m in mems) if mems else None,
            "peak_cuda_mib": max((m["cuda_max_allocated_mib"] or 0) for m in mems) if mems and cuda else None}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--configs", nargs="+", default=DEFAULT_CONFIGS, choices=sorted(VARIANTS))
    ap.add_argument("--updates", type=int, default=60, help="updates per configuration")
    ap.add_argument("--log-interval", type=int, default=0, help="default: updates // 6 (>= 1)")
    ap.add_argument("--tiny", action="store_true",
                    help="CPU smoke model: 2 layers, dim 128, ffn 512, 2 heads, batch 4 (still 512 tokens)")
    ap.add_argument("--data-bin", help="use this data-bin instead of a synthetic one")
    ap.add_argument("--vocab", type=int, default=32000, help="synthetic vocab size (spm pieces)")
    ap.add_argument("--tokens", type=int, default=0, help="synthetic train tokens (default: enough for the run)")
    ap.add_argument("--ngpus", type=int, default=1, help="processes (GPUs) per run, torchrun when > 1")
    ap.add_argument("--cpu-threads", type=int, default=0, help="CPU: OMP threads per process (0 = torch default)")
    ap.add_argument("--peak-tflops", type=float, help="peak TFLOP/s per device (default: from the GPU name)")
    ap.add_argument("--out", help="append a markdown section with the results to this file")
    a = ap.parse_args(argv)

    import torch

    cuda = torch.cuda.is_available()
    device = torch.cuda.get_device_name(0) if cuda else f"CPU ({platform.processor() or platform.machine()}, " \
                                                           f"{os.cpu_count()} cores)"
    peak = a.peak_tflops * 1e12 if a.peak_tflops else (gpu_peak_flops(device) if cuda else None)
    base = dict(tokens_per_sample=512, max_positions=512, batch_size=16, update_freq=1, lr=5e-4,
                warmup_updates=max(1, a.updates // 10), max_update=a.updates, num_workers=1,
                log_interval=a.log_interval or max(1, a.updates // 6), tensorboard=False,
                device="cuda" if cuda else "cpu", ngpus=a.ngpus, launcher="torchrun" if a.ngpus > 1 else "local",
                cpu_threads=a.cpu_threads, min_free_disk_gb=0.0)
    if a.tiny:
        base.update(encoder_layers=2, encoder_embed_dim=128, encoder_ffn_embed_dim=512, encoder_attention_heads=2,
                    batch_size=4)
    work = Path(tempfile.mkdtemp(prefix="koroberta-bench-"))
    try:
        if a.data_bin:
            data = Path(a.data_bin)
        else:
            # the largest variant (bs32_uf1) reads 32 x 512 tokens per process per update; +20% for padding
            need = a.tokens or int(32 * 512 * a.ngpus * a.updates * 1.2) + 100_000
            t0 = time.perf_counter()
            data = synth_databin(work / "data-bin", vocab=a.vocab, tokens=min(need, 50_000_000), pad_to=8)
            print(f"synthetic data-bin: {need:,} tokens, vocab {a.vocab} in {time.perf_counter() - t0:.0f} s",
                  flush=True)
        n_dict = len((data / "dict.txt").read_text(encoding="utf-8").splitlines())
        rows = []
        for name in a.configs:
            v = dict(VARIANTS[name])
            if v.pop("_cuda_only", False) and not cuda:
                rows.append({"name": name, "skipped": "needs CUDA"})
                continue
            if v.pop("_needs_apex", False):
                try:
                    import apex  # noqa: F401
                except ImportError:
                    rows.append({"name": name, "skipped": "apex not installed (fairseq uses FusedAdam only via apex)"})
                    continue
                if not cuda:
                    rows.append({"name": name, "skipped": "needs CUDA"})
                    continue
            pad_to = v.pop("_pad_to", None)
            d = with_dict_padding(data, work / f"data-pad{pad_to}", pad_to) if pad_to else data
            cfg = TrainConfig(**{**base, **v})
            vocab_rows = len(FAIRSEQ_SPECIALS) + len(read_dict_symbols(d / "dict.txt")) + 1  # + <mask>
            f_tok = flops_per_token(shape_from_config(cfg, vocab_rows), cfg.tokens_per_sample, cfg.mask_prob)
            print(f"[{name}] {cfg.batch_size} x {cfg.update_freq} x {a.ngpus}, vocab rows {vocab_rows} ...", flush=True)
            r = run_one(name, cfg, d, work, cuda=cuda, world=a.ngpus)
            r.update(flops_per_token=f_tok, vocab_rows=vocab_rows, batch=f"{cfg.batch_size}x{cfg.update_freq}",
                     break_mode=cfg.sample_break_mode, workers=cfg.num_workers)
            if r.get("tokens_per_s") and peak:
                r["mfu"] = mfu(r["tokens_per_s"], f_tok, peak, a.ngpus)
            r["achieved_tflops"] = (r["tokens_per_s"] * f_tok / 1e12) if r.get("tokens_per_s") else None
            rows.append(r)
            print(json.dumps(r), flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    anchor = next((r for r in rows if r.get("tokens_per_s")), None)
    model = "tiny (2 layers, dim 128, ffn 512)" if a.tiny else "roberta_base (12 layers, dim 768)"
    cmd = "python bench/train_throughput.py " + " ".join(argv if argv is not None else sys.argv[1:])
    lines = [f"## train throughput — {device} — {datetime.date.today().isoformat()}", "",
             ("**CPU smoke figures: they prove the benchmark path works; they are not GPU results.**\n"
              if not cuda else ""),
             f"Command: `{cmd}`  ",
             f"Model: {model}, 512 tokens/sample, {a.updates} updates per config, {a.ngpus} process(es), "
             f"dict {n_dict} symbols; torch {torch.__version__}; peak "
             f"{'n/a' if not peak else f'{peak / 1e12:.0f} TFLOP/s'}; anchor = `{anchor['name'] if anchor else '-'}`.",
             "",
             "| config | batch x uf | break | workers | vocab rows | tokens/s | vs anchor | model TFLOP/s | MFU | "
             "peak mem (MiB) |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if "skipped" in r or "error" in r:
            lines.append(f"| {r['name']} | | | | | {r.get('skipped') or 'error: ' + r['error']} | | | | |")
            continue
        ratio = r["tokens_per_s"] / anchor["tokens_per_s"] if anchor and r.get("tokens_per_s") else None
        mem = r["peak_cuda_mib"] if cuda else r["peak_rss_mib"]
        lines.append(f"| {r['name']} | {r['batch']} | {r['break_mode']} | {r['workers']} | {r['vocab_rows']} | "
                     f"{r['tokens_per_s']:,.0f} | {ratio:.2f}x | {r['achieved_tflops']:.4f} | "
                     f"{'n/a' if r.get('mfu') is None else format(r['mfu'], '.1%')} | "
                     f"{mem:,.0f} {'(CUDA max allocated)' if cuda else '(max RSS)'} |")
    lines += ["", "FLOPs/token = 6 N_nonembedding + 12 L T d + 6 mask_prob (d^2 + d V) "
                  "(koroberta/train/flops.py); tokens/s = fairseq wps after the first log interval.", ""]
    text = "\n".join(lines)
    print(text)
    if a.out:
        with open(a.out, "a", encoding="utf-8") as f:
            f.write(text + "\n")
    return 0 if all("error" not in r for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
