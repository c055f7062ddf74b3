"""Training throughput benchmark (issue #7): tokens/s, MFU and peak memory of the real training path.

Each named configuration runs ``N`` updates of exactly the command ``koroberta train`` builds
(:func:`koroberta.train.command.fairseq_args`, launched through :mod:`koroberta.train.entry`), with checkpointing
and validation switched off, on a synthetic data-bin (Zipf-distributed ids over a 32k vocab in the koroberta dict
layout, sentences of 8-64 tokens, documents of 4-40 sentences) or on a data-bin you pass. Throughput is fairseq's
own ``wps`` (all-reduced tokens/s) averaged over the ``train_inner`` intervals after the first (warm-up).

Configurations (``--configs``; the first is the anchor every ratio is measured against, in the same run):

* ``stock``: the base recipe per GPU — batch 16 x 512 tokens, update_freq ``--update-freq`` (1 by default; the
  recipe's 16 on a GPU), fairseq's default 1 loader worker, ``sample_break_mode complete``, fp16 on CUDA (fp32 on
  CPU), vocab padded to a multiple of 8.
* ``bs8_uf2`` / ``bs32_uf1`` / ``bs4_uf4``: batch per GPU vs update_freq (tokens per update differ; tokens/s compares).
* ``bs32`` / ``bs64`` / ``bs128`` / ``bs256``: that batch per GPU with update_freq lowered so the sequences per
  update stay stock's (16 x ``--update-freq``; at least 1).
* ``workers0`` / ``workers2`` / ``workers4``: ``--num-workers``.
* ``break_none``: ``sample_break_mode none`` (no padding: full 512-token blocks, so no key padding mask either).
* ``pad64``: the same data with dict fillers so the embedding has a multiple-of-64 rows.
* ``amp``: ``--amp`` instead of ``--fp16`` (CUDA only).
* ``rsl8``: ``--required-seq-len-multiple 8``. fairseq 0.12.3 reads it only in the translation task, so for
  masked_lm it should measure as stock (kept to show that, not as a knob).
* ``fused_adam``: fairseq uses FusedAdam automatically when apex is importable on CUDA; reported as n/a otherwise.
* ``A+B+...``: the variants combined, left to right (e.g. ``bs64+break_none+workers2+pad64``).

For a device with a time limit: ``--deadline`` (Unix time) stops starting configurations that cannot finish and
cuts a running one at the deadline (its finished log intervals still count, marked partial); ``--jsonl`` appends
each row as soon as it is measured, so a killed run still leaves its results.

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
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from koroberta.layout import FAIRSEQ_SPECIALS, filler, n_fillers, read_dict_symbols  # noqa: E402
from koroberta.train.launch import child_env  # noqa: E402
from koroberta.train.command import fairseq_args  # noqa: E402
from koroberta.train.config import TrainConfig  # noqa: E402
from koroberta.train.flops import flops_per_token, gpu_peak_flops, mfu, shape_from_config  # noqa: E402
from koroberta.train.logs import parse_lines  # noqa: E402

VARIANTS: dict[str, dict] = {
    "stock": {},
    "bs8_uf2": {"batch_size": 8, "update_freq": 2},
    "bs4_uf4": {"batch_size": 4, "update_freq": 4},
    "bs32_uf1": {"batch_size": 32, "update_freq": 1},
    "bs32": {"_batch_same_seqs": 32},
    "bs64": {"_batch_same_seqs": 64},
    "bs128": {"_batch_same_seqs": 128},
    "bs256": {"_batch_same_seqs": 256},
    "workers0": {"num_workers": 0},
    "workers2": {"num_workers": 2},
    "workers4": {"num_workers": 4},
    "break_none": {"sample_break_mode": "none"},
    "pad64": {"_pad_to": 64},
    "amp": {"precision": "amp", "_cuda_only": True},
    "rsl8": {"extra_args": ["--required-seq-len-multiple", "8"]},
    "fused_adam": {"_needs_apex": True},
}
DEFAULT_CONFIGS = ["stock", "bs8_uf2", "bs32_uf1", "workers0", "workers4", "break_none", "pad64", "amp",
                   "fused_adam"]


def variant(name: str) -> dict:
    """The settings of a configuration name: one key of VARIANTS, or several joined by ``+`` (later ones win)."""
    out: dict = {}
    for part in name.split("+"):
        if part not in VARIANTS:
            raise argparse.ArgumentTypeError(f"unknown configuration {part!r} in {name!r}; "
                                             f"choose from {', '.join(sorted(VARIANTS))} (join with +)")
        for k, v in VARIANTS[part].items():
            out[k] = out.get(k, []) + v if k == "extra_args" else v
    return out


def config_name(name: str) -> str:
    variant(name)  # argparse type: reject unknown names before any work
    return name


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


def _run_until(cmd: list[str], env: dict[str, str], timeout: float | None) -> tuple[int | None, str]:
    """Run ``cmd`` in its own process group; at ``timeout`` send SIGINT (fairseq's loader workers get it too, and
    koroberta.train.entry still writes its memory report), then SIGKILL after 20 s. Returns (rc or None, output)."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=REPO,
                            start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=timeout)
        return proc.returncode, out
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            out, _ = proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out, _ = proc.communicate()
        return None, out


def base_settings(updates: int, *, update_freq: int = 1, log_interval: int = 0, tiny: bool = False,
                  cuda: bool = False, ngpus: int = 1, cpu_threads: int = 0) -> dict:
    """TrainConfig fields of ``stock``: the base recipe per GPU, checkpointing and tensorboard off."""
    base = dict(tokens_per_sample=512, max_positions=512, batch_size=16, update_freq=update_freq, lr=5e-4,
                warmup_updates=max(1, updates // 10), max_update=updates, num_workers=1,
                log_interval=log_interval or max(1, updates // 6), tensorboard=False,
                device="cuda" if cuda else "cpu", ngpus=ngpus, launcher="torchrun" if ngpus > 1 else "local",
                cpu_threads=cpu_threads, min_free_disk_gb=0.0)
    if tiny:
        base.update(encoder_layers=2, encoder_embed_dim=128, encoder_ffn_embed_dim=512, encoder_attention_heads=2,
                    batch_size=4)
    return base


def build_config(name: str, base: dict, data: Path, work: Path, *, cuda: bool
                 ) -> tuple[TrainConfig | None, Path | None, str | None]:
    """``(config, data-bin, None)`` for configuration ``name``, or ``(None, None, why it is skipped)``.
    A padded-vocab variant gets its data-bin copy under ``work`` (made once, shared by every config using it)."""
    v = variant(name)
    if v.pop("_cuda_only", False) and not cuda:
        return None, None, "needs CUDA"
    if v.pop("_needs_apex", False):
        try:
            import apex  # noqa: F401
        except ImportError:
            return None, None, "apex not installed (fairseq uses FusedAdam only via apex)"
        if not cuda:
            return None, None, "needs CUDA"
    if "_batch_same_seqs" in v:
        bs = v.pop("_batch_same_seqs")
        v.update(batch_size=bs, update_freq=max(1, base["batch_size"] * base["update_freq"] // bs))
    pad_to = v.pop("_pad_to", None)
    d = data
    if pad_to:
        d = work / f"data-pad{pad_to}"
        if not d.exists():
            with_dict_padding(data, d, pad_to)
    return TrainConfig(**{**base, **v}), d, None


def run_one(name: str, cfg: TrainConfig, data_bin: Path, work: Path, *, cuda: bool, world: int,
            timeout: float | None = None, log_dir: Path | None = None) -> dict:
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
    rc, out = _run_until(cmd, env, timeout)
    wall = time.perf_counter() - t0
    if log_dir is not None:  # the whole fairseq output, for a failure that the one-line error row cannot explain
        with open(log_dir / "fairseq.log", "a", encoding="utf-8") as f:
            f.write(f"\n===== {name}: rc {rc}, {wall:.1f} s =====\n{out}")
    lines = out.splitlines()
    if rc is not None and rc != 0:
        last = [l for l in lines if l.strip()]
        return {"name": name, "error": (last[-1] if last else f"exit status {rc}")[:200], "wall_s": wall}
    tlog = parse_lines(lines)
    _, wps = tlog.series("inner", "wps")
    steady = wps[1:] if len(wps) > 1 else wps
    if rc is None and len(wps) < 2:  # cut before a steady interval was logged: nothing trustworthy to report
        return {"name": name, "error": f"deadline reached after {tlog.updates} updates", "wall_s": wall}
    if not steady:  # nothing to measure (e.g. --updates below the log interval): an error row, not a crash later
        return {"name": name, "error": f"no train_inner log line in {tlog.updates} updates (raise --updates)"}
    mems = [json.loads(p.read_text()) for p in sorted(work.glob(f"mem-{name}.rank*.json"))]
    _, scale = tlog.series("inner", "loss_scale")
    r = {"name": name, "tokens_per_s": float(np.mean(steady)), "wall_s": wall,
         "updates": tlog.updates, "intervals": len(steady),
         "wps_spread": float((max(steady) - min(steady)) / np.mean(steady)),
         "overflows": sum("gradient overflow detected" in l for l in lines),
         "loss_scale": scale[-1] if scale else None,
         "peak_rss_mib": max(m["max_rss_mib"] for m in mems) if mems else None,
         "peak_cuda_mib": max((m["cuda_max_allocated_mib"] or 0) for m in mems) if mems and cuda else None}
    if rc is None:
        r["partial"] = f"cut at the deadline after {tlog.updates} updates"
    return r


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--configs", nargs="+", default=DEFAULT_CONFIGS, type=config_name, metavar="NAME",
                    help=f"names from {{{','.join(VARIANTS)}}}, or several joined by + (default: "
                         f"{' '.join(DEFAULT_CONFIGS)})")
    ap.add_argument("--updates", type=int, default=60, help="updates per configuration")
    ap.add_argument("--update-freq", type=int, default=1,
                    help="stock's update_freq (the base recipe: 16, i.e. 256 sequences per update per GPU)")
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
    ap.add_argument("--jsonl", help="append each result row to this file as soon as it is measured")
    ap.add_argument("--deadline", type=float,
                    help="Unix time: start no configuration after it minus --min-config-s, cut a running one at it")
    ap.add_argument("--min-config-s", type=float, default=45.0,
                    help="with --deadline: the least time worth starting a configuration with")
    ap.add_argument("--log-dir", help="append every run's full fairseq output to LOG_DIR/fairseq.log")
    a = ap.parse_args(argv)

    import torch

    cuda = torch.cuda.is_available()
    device = torch.cuda.get_device_name(0) if cuda else f"CPU ({platform.processor() or platform.machine()}, " \
                                                           f"{os.cpu_count()} cores)"
    peak = a.peak_tflops * 1e12 if a.peak_tflops else (gpu_peak_flops(device) if cuda else None)
    base = base_settings(a.updates, update_freq=a.update_freq, log_interval=a.log_interval, tiny=a.tiny, cuda=cuda,
                         ngpus=a.ngpus, cpu_threads=a.cpu_threads)
    work = Path(tempfile.mkdtemp(prefix="koroberta-bench-"))
    try:
        if a.data_bin:
            data = Path(a.data_bin)
        else:
            # the largest variant reads max(32, 16 x update_freq) x 512 tokens per process per update; +20% padding
            need = a.tokens or int(max(32, 16 * a.update_freq) * 512 * a.ngpus * a.updates * 1.2) + 100_000
            t0 = time.perf_counter()
            data = synth_databin(work / "data-bin", vocab=a.vocab, tokens=min(need, 50_000_000), pad_to=8)
            print(f"synthetic data-bin: {need:,} tokens, vocab {a.vocab} in {time.perf_counter() - t0:.0f} s",
                  flush=True)
        n_dict = len((data / "dict.txt").read_text(encoding="utf-8").splitlines())
        rows = []
        log_dir = Path(a.log_dir) if a.log_dir else None
        if log_dir:
            log_dir.mkdir(parents=True, exist_ok=True)

        def record(row: dict) -> None:
            rows.append(row)
            if a.jsonl:
                with open(a.jsonl, "a", encoding="utf-8") as f:
                    f.write(json.dumps({"device": device, **row}) + "\n")

        for name in a.configs:
            left = a.deadline - time.time() if a.deadline else None
            if left is not None and left < a.min_config_s:
                record({"name": name, "skipped": f"deadline: {max(left, 0):.0f} s left"})
                continue
            cfg, d, skip = build_config(name, base, data, work, cuda=cuda)
            if skip:
                record({"name": name, "skipped": skip})
                continue
            vocab_rows = len(FAIRSEQ_SPECIALS) + len(read_dict_symbols(d / "dict.txt")) + 1  # + <mask>
            f_tok = flops_per_token(shape_from_config(cfg, vocab_rows), cfg.tokens_per_sample, cfg.mask_prob)
            print(f"[{name}] {cfg.batch_size} x {cfg.update_freq} x {a.ngpus}, vocab rows {vocab_rows} ...", flush=True)
            r = run_one(name, cfg, d, work, cuda=cuda, world=a.ngpus, log_dir=log_dir,
                        timeout=(a.deadline - time.time()) if a.deadline else None)
            r.update(flops_per_token=f_tok, vocab_rows=vocab_rows, batch=f"{cfg.batch_size}x{cfg.update_freq}",
                     break_mode=cfg.sample_break_mode, workers=cfg.num_workers,
                     precision="amp" if cfg.precision == "amp" else ("fp16" if cuda else "fp32"))
            if r.get("tokens_per_s") and peak:
                r["mfu"] = mfu(r["tokens_per_s"], f_tok, peak, a.ngpus)
            r["achieved_tflops"] = (r["tokens_per_s"] * f_tok / 1e12) if r.get("tokens_per_s") else None
            record(r)
            print(json.dumps(r), flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    anchor = rows[0] if rows and rows[0].get("tokens_per_s") else None  # only the first config is the anchor
    model = "tiny (2 layers, dim 128, ffn 512)" if a.tiny else "roberta_base (12 layers, dim 768)"
    cmd = "python bench/train_throughput.py " + " ".join(argv if argv is not None else sys.argv[1:])
    lines = [f"## train throughput — {device} — {datetime.date.today().isoformat()}", "",
             ("**CPU smoke figures: they prove the benchmark path works; they are not GPU results.**\n"
              if not cuda else ""),
             f"Command: `{cmd}`  ",
             f"Model: {model}, 512 tokens/sample, {a.updates} updates per config (stock update_freq "
             f"{a.update_freq}), {a.ngpus} process(es), "
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
        ratio = r["tokens_per_s"] / anchor["tokens_per_s"] if anchor else None
        mem = r["peak_cuda_mib"] if cuda else r["peak_rss_mib"]
        mem_s = "n/a (cut)" if mem is None else \
            f"{mem:,.0f} {'(CUDA max allocated)' if cuda else '(max RSS)'}"
        lines.append(f"| {r['name']} | {r['batch']} | {r['break_mode']} | {r['workers']} | {r['vocab_rows']} | "
                     f"{r['tokens_per_s']:,.0f}{' (partial)' if r.get('partial') else ''} | "
                     f"{'n/a' if ratio is None else format(ratio, '.2f') + 'x'} | {r['achieved_tflops']:.4f} | "
                     f"{'n/a' if r.get('mfu') is None else format(r['mfu'], '.1%')} | {mem_s} |")
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
