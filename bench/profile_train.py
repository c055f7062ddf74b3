"""Where the time of a training update goes (issue 15): torch.profiler around a few updates of one
``bench/train_throughput.py`` configuration, run in this process through the same fairseq command
(:func:`koroberta.train.command.fairseq_args`).

    python bench/profile_train.py --data-bin .gpu-data/data-bin --config bs64+break_none --update-freq 16 \\
        --out profile.txt --jsonl results.jsonl

On CUDA only kernels are traced (CUPTI, no per-op CPU recording), so the profiled updates run at close to their
normal speed and "GPU busy" (kernel time / wall time) says how much of an update the GPU actually computes. Kernel
time is grouped by class (matmul, attention, softmax, layer norm, dropout, optimizer, copies, other elementwise),
and the matmul class is set against the model's matmul FLOPs to give the rate the GEMMs themselves reach. On the
CPU (rehearsal) the same report is made from CPU ops.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from train_throughput import base_settings, build_config, config_name  # noqa: E402

from koroberta.layout import FAIRSEQ_SPECIALS, read_dict_symbols  # noqa: E402
from koroberta.train.command import fairseq_args  # noqa: E402
from koroberta.train.flops import flops_per_token, gpu_peak_flops, shape_from_config  # noqa: E402

#: kernel/op name fragments (lower case) -> class; first match wins, so fused attention comes before "gemm"
CLASSES = [
    ("attention", ("flash", "fmha", "attention", "sdpa", "scaled_dot")),
    ("matmul", ("gemm", "gemv", "cutlass", "xmma", "nvjet", "cublas", "aten::mm", "aten::addmm", "aten::bmm",
                "aten::matmul", "aten::linear")),
    ("softmax", ("softmax",)),
    ("layer_norm", ("layer_norm", "layernorm")),
    ("dropout", ("dropout", "bernoulli", "philox")),
    ("optimizer", ("multi_tensor", "adam", "foreach", "l2norm")),
    ("copies", ("memcpy", "memset", "copy_", "aten::to", "cat", "index")),
    ("nccl", ("nccl",)),
]


def classify(name: str) -> str:
    n = name.lower()
    for cls, keys in CLASSES:
        if any(k in n for k in keys):
            return cls
    return "other elementwise/reduce"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-bin", required=True)
    ap.add_argument("--config", type=config_name, default="stock", help="a bench/train_throughput.py configuration")
    ap.add_argument("--update-freq", type=int, default=1, help="stock's update_freq (as in train_throughput.py)")
    ap.add_argument("--skip", type=int, default=3, help="updates run before the profiled ones (warm-up)")
    ap.add_argument("--steps", type=int, default=3, help="updates profiled")
    ap.add_argument("--tiny", action="store_true", help="the CPU smoke model of train_throughput.py")
    ap.add_argument("--cpu-threads", type=int, default=0)
    ap.add_argument("--out", help="write the report here (also printed)")
    ap.add_argument("--jsonl", help="append the summary as one JSON line")
    a = ap.parse_args(argv)

    import torch
    from torch.profiler import ProfilerActivity, profile

    cuda = torch.cuda.is_available()
    if a.cpu_threads:
        torch.set_num_threads(a.cpu_threads)
    updates = a.skip + a.steps
    base = base_settings(updates, update_freq=a.update_freq, log_interval=1, tiny=a.tiny, cuda=cuda)
    work = Path(tempfile.mkdtemp(prefix="koroberta-profile-"))
    cfg, data, skip = build_config(a.config, base, Path(a.data_bin), work, cuda=cuda)
    if skip:
        print(f"{a.config}: skipped ({skip})")
        return 0
    vocab_rows = len(FAIRSEQ_SPECIALS) + len(read_dict_symbols(data / "dict.txt")) + 1
    shape = shape_from_config(cfg, vocab_rows)
    tokens_per_update = cfg.batch_size * cfg.update_freq * cfg.tokens_per_sample
    f_tok = flops_per_token(shape, cfg.tokens_per_sample, cfg.mask_prob)
    # the matmul share of f_tok: everything but the attention score/context products, which the fused attention
    # kernels (or, unfused, bmm) do
    f_attn = 12 * shape.layers * cfg.tokens_per_sample * shape.dim
    f_gemm = f_tok - f_attn

    from fairseq.trainer import Trainer

    state: dict = {"n": 0, "prof": None}
    original = Trainer.train_step

    def sync() -> None:
        if cuda:
            torch.cuda.synchronize()

    def train_step(self, samples, raise_oom=False):
        n = state["n"]
        state["n"] += 1
        if n == a.skip:
            sync()
            state["prof"] = profile(activities=[ProfilerActivity.CUDA] if cuda else [ProfilerActivity.CPU])
            state["prof"].__enter__()
            state["t0"] = time.perf_counter()
        out = original(self, samples, raise_oom)
        if n == updates - 1 and state["prof"] is not None:
            sync()
            state["wall"] = time.perf_counter() - state["t0"]
            state["prof"].__exit__(None, None, None)
        return out

    Trainer.train_step = train_step
    os.environ.setdefault("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
    sys.argv = ["fairseq-train", *fairseq_args(cfg, data, work / "save", cuda=cuda), "--no-save",
                "--disable-validation"]
    from fairseq_cli.train import cli_main

    cli_main()
    prof = state["prof"]
    if prof is None or "wall" not in state:
        print(f"profiled nothing: fairseq stopped after {state['n']} updates")
        return 1

    per_class: dict[str, float] = defaultdict(float)
    kernels = []
    for e in prof.key_averages():
        if cuda and e.device_type != torch.autograd.DeviceType.CUDA:
            continue
        t = (e.self_device_time_total if cuda else e.self_cpu_time_total) / 1e6  # us -> s
        if t <= 0:
            continue
        per_class[classify(e.key)] += t
        kernels.append((t, e.count, e.key))
    busy = sum(per_class.values())
    wall = state["wall"]
    steps = a.steps
    lines = [f"## profile — {torch.cuda.get_device_name(0) if cuda else 'CPU'} — config `{a.config}` "
             f"({cfg.batch_size} x {cfg.update_freq}, {cfg.sample_break_mode}, vocab rows {vocab_rows})", "",
             f"{steps} updates after {a.skip} warm-up: {wall / steps * 1e3:,.1f} ms per update of "
             f"{tokens_per_update:,} token positions (padding included) = "
             f"{tokens_per_update * steps / wall:,.0f} positions/s while profiled; "
             f"{'kernel' if cuda else 'CPU op self'} time {busy / steps * 1e3:,.1f} ms per update "
             f"({busy / wall:.1%} of wall{' = GPU busy' if cuda else ''})", "",
             "| class | ms / update | share of traced time |", "|---|---:|---:|"]
    for cls, t in sorted(per_class.items(), key=lambda kv: -kv[1]):
        lines.append(f"| {cls} | {t / steps * 1e3:,.1f} | {t / busy:.1%} |")
    gemm_s = per_class.get("matmul", 0.0)
    gemm_rate = f_gemm * tokens_per_update * steps / gemm_s if gemm_s else None
    peak = gpu_peak_flops(torch.cuda.get_device_name(0)) if cuda else None
    lines += ["", f"matmul FLOPs by the model count {f_gemm / 1e9:.4f} GFLOP/token (attention products "
                  f"{f_attn / 1e9:.4f} excluded; the encoder's GEMMs run on padding too, so per position): the "
                  f"GEMM kernels ran at "
                  + (f"{gemm_rate / 1e12:,.3g} TFLOP/s" + (f" ({gemm_rate / peak:.0%} of the {peak / 1e12:.0f} "
                                                             f"TFLOP/s peak)" if peak else "") if gemm_rate else "n/a"),
              "", "top kernels:" if cuda else "top CPU ops:", "",
              "| ms / update | calls / update | class | name |", "|---:|---:|---|---|"]
    for t, count, name in sorted(kernels, reverse=True)[:25]:
        lines.append(f"| {t / steps * 1e3:,.2f} | {count / steps:,.0f} | {classify(name)} | `{name[:110]}` |")
    text = "\n".join(lines) + "\n"
    print(text)
    if a.out:
        Path(a.out).write_text(text, encoding="utf-8")
    if a.jsonl:
        with open(a.jsonl, "a", encoding="utf-8") as f:
            f.write(json.dumps({"stage": "profile", "config": a.config, "ms_per_update": round(wall / steps * 1e3, 1),
                                "busy": round(busy / wall, 3),
                                "gemm_tflops": round(gemm_rate / 1e12, 1) if gemm_rate else None,
                                "share": {k: round(v / busy, 3) for k, v in per_class.items()}}) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
