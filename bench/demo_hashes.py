"""The sha256 of every output a run's manifests list, recomputed from the files -- to show a refactoring changed no
output byte (issue 21: the demo's outputs before and after, kept in ``bench/results/demo_output_hashes.json``).

    python bench/demo_hashes.py runs/demo > now.json
    python bench/demo_hashes.py runs/demo --compare bench/results/demo_output_hashes.json

Files are hashed from disk, not copied from the manifests, so a manifest that lies is caught too. ``--skip`` leaves
out directories whose layout changed on purpose (the finetune step's, in issue 21). Exit 1 when a compared hash
differs or a file is missing.

A fairseq checkpoint (``*.pt``) pickles fairseq's meters, and some of them are wall-clock seconds (``extra_state``
``metrics/*/init``, ``previous_training_time``): two runs of the same training never give the same ``.pt`` bytes.
Each ``.pt`` therefore also gets ``<file>#state``, the hash of what training computed -- every tensor of ``model``
and ``last_optimizer_state`` and the update count -- and a ``.pt`` whose raw bytes differ while its ``#state``
matches is reported as "wall-clock meters only", not as a difference.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def checkpoint_state_hash(path: Path) -> str:
    """sha256 over the checkpoint's model and optimizer tensors (names, dtypes, shapes, bytes) and update count."""
    import os

    os.environ.setdefault("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")  # our own pipeline's checkpoint
    import torch

    ck = torch.load(path, map_location="cpu", weights_only=False)
    h = hashlib.sha256()

    def feed(obj, name: str) -> None:
        if isinstance(obj, torch.Tensor):
            t = obj.detach().contiguous().cpu()
            h.update(f"{name}:{t.dtype}:{tuple(t.shape)}".encode())
            h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
        elif isinstance(obj, dict):
            for k in sorted(obj, key=str):
                feed(obj[k], f"{name}/{k}")
        elif isinstance(obj, (list, tuple)):
            for i, v in enumerate(obj):
                feed(v, f"{name}/{i}")
        else:
            h.update(f"{name}={obj!r}".encode())

    feed(ck["model"], "model")
    feed(ck.get("last_optimizer_state", {}).get("state", {}), "optimizer")
    feed(ck.get("optimizer_history", [{}])[-1].get("num_updates"), "num_updates")
    return h.hexdigest()


def output_hashes(run_dir: Path, skip: tuple[str, ...] = ()) -> dict[str, str]:
    """``{"<dir>/<file>": sha256}`` for every file named in the ``outputs`` of every ``manifest.json`` under
    ``run_dir`` (paths relative to ``run_dir``), plus each manifest's identity hash under ``<dir>/identity``."""
    out: dict[str, str] = {}
    for manifest in sorted(run_dir.rglob("manifest.json")):
        d = manifest.parent
        rel = d.relative_to(run_dir).as_posix()
        if any(rel == s or rel.startswith(s + "/") for s in skip):
            continue
        m = json.loads(manifest.read_text(encoding="utf-8"))
        out[f"{rel}/identity"] = m.get("identity_sha256", "")
        for name in sorted(m.get("outputs", {})):
            f = d / name
            out[f"{rel}/{name}"] = sha256(f) if f.is_file() else "MISSING"
            if name.endswith(".pt") and f.is_file():
                out[f"{rel}/{name}#state"] = checkpoint_state_hash(f)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run_dir", type=Path)
    ap.add_argument("--compare", type=Path, help="a JSON written by this script earlier")
    ap.add_argument("--skip", nargs="*", default=[], help="directories (relative to RUN_DIR) to leave out")
    a = ap.parse_args(argv)
    now = output_hashes(a.run_dir, tuple(a.skip))
    if a.compare is None:
        print(json.dumps(now, indent=1, sort_keys=True))
        return 0
    before = {k: v for k, v in json.loads(a.compare.read_text(encoding="utf-8")).items()
              if not any(k.startswith(s + "/") for s in a.skip)}
    diff = sorted(k for k in set(before) | set(now) if before.get(k) != now.get(k))
    meters = [k for k in diff if k.endswith(".pt") and f"{k}#state" in before
              and before.get(f"{k}#state") == now.get(f"{k}#state")]
    diff = [k for k in diff if k not in meters]
    for k in meters:
        print(f"same state {k}: raw bytes differ in fairseq's wall-clock meters only")
    for k in diff:
        print(f"DIFFERS {k}: {before.get(k, 'absent')} -> {now.get(k, 'absent')}")
    print(f"{len(before)} hashes compared, {len(diff)} differ")
    return 1 if diff else 0


if __name__ == "__main__":
    sys.exit(main())
