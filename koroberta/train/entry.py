"""``python -m koroberta.train.entry FAIRSEQ_ARGS``: fairseq-train under torchrun (one process per rank).

Why not plain ``fairseq-train`` under torchrun: fairseq 0.12 detects torchrun from ``MASTER_ADDR/RANK/...`` and sets
``device_id = RANK % torch.cuda.device_count()`` — a ZeroDivisionError on CPU, and on a multi-node job the device
must be ``LOCAL_RANK`` anyway. Passing the rank, device and ``env://`` init explicitly makes fairseq skip its
detection (``infer_init_method`` returns early when an init method is given).

Also lets fairseq load its own checkpoints on torch >= 2.6 (``weights_only`` default) for resume.
"""

from __future__ import annotations

import os
import sys


def distributed_args(env: dict[str, str]) -> list[str]:
    """Extra fairseq arguments for the torchrun environment ``env`` (empty when not under torchrun)."""
    if "RANK" not in env or "WORLD_SIZE" not in env:
        return []
    return ["--distributed-world-size", env["WORLD_SIZE"], "--distributed-rank", env["RANK"],
            "--device-id", env.get("LOCAL_RANK", "0"), "--distributed-init-method", "env://",
            "--distributed-no-spawn"]


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    os.environ.setdefault("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
    extra = distributed_args(dict(os.environ))
    # the later --distributed-world-size wins in argparse; our value is the launcher's truth
    sys.argv = ["fairseq-train", *argv, *extra]
    from fairseq_cli.train import cli_main

    report = os.environ.get("KOROBERTA_MEMORY_REPORT")  # bench/train_throughput.py: peak memory per process
    try:
        cli_main()
    finally:
        if report:
            _write_memory_report(report)


def _write_memory_report(path: str) -> None:
    import json
    import resource

    import torch

    rank = os.environ.get("RANK", "0")
    out = {"max_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
           "cuda_max_allocated_mib": (torch.cuda.max_memory_allocated() / 2**20) if torch.cuda.is_available() else None}
    with open(f"{path}.rank{rank}.json", "w") as f:
        json.dump(out, f)


if __name__ == "__main__":
    main()
