"""train stage: fairseq-train masked_lm RoBERTa, preflighted, resumable, observable.

Entry point :func:`train`. The returned checkpoint is ``save_dir/checkpoint_last.pt`` — the model *at max_update*,
which is what the RoBERTa recipe exports (``checkpoint_best.pt`` tracks valid loss on a tiny split and is noisy).

``save_dir`` is deliberately not an atomic :class:`~koroberta.artifacts.StageOutput` directory: checkpoints must
survive a crash so the rerun resumes. Completion is marked in place: ``manifest.json`` then ``_COMPLETE`` (its
sha256), written only after fairseq exited 0 with ``num_updates == max_update`` and ``checkpoint_last.pt`` on disk.
A marker for another config or data-bin does not count (:func:`koroberta.artifacts.is_complete`) and is deleted
before training continues.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from koroberta.artifacts import (MANIFEST, MARKER, TIMING, atomic_write_text, is_complete, sha256_file, sha256_json,
                                 write_json)
from koroberta.errors import KorobertaError
from koroberta.train.command import fairseq_args, format_command, launch_command
from koroberta.train.config import TrainConfig
from koroberta.train.logs import LOG_NAME, parse_log
from koroberta.train.preflight import TRAIN_STATE, Preflight, preflight

__all__ = ["train", "TrainConfig", "build_command", "child_env", "write_completion"]

log = logging.getLogger("koroberta.train")
STAGE = "train"


class TrainingFailed(KorobertaError):
    """fairseq-train exited non-zero or stopped before max_update."""


def child_env(base: dict[str, str] | None = None, cpu_threads: int = 0) -> dict[str, str]:
    """Environment for fairseq: torch >= 2.6 loads with weights_only=True, which refuses fairseq checkpoints
    (argparse.Namespace inside) — without this, resume from checkpoint_last.pt fails."""
    env = dict(os.environ if base is None else base)
    if cpu_threads:
        env["OMP_NUM_THREADS"] = str(cpu_threads)
    env["TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD"] = "1"
    env["PYTHONUNBUFFERED"] = "1"  # log lines reach train.log as they happen (kill -9 loses nothing printed)
    return env


def _fairseq_train_exe() -> str:
    exe = Path(sys.executable).parent / "fairseq-train"
    return str(exe) if exe.exists() else "fairseq-train"


def build_command(cfg: TrainConfig, data_bin: str | Path, save_dir: str | Path, pf: Preflight) -> list[str]:
    """The full launch command for ``cfg.launcher``."""
    return launch_command(cfg, fairseq_args(cfg, data_bin, save_dir, cuda=pf.cuda),
                          fairseq_train=_fairseq_train_exe())


def _inputs(data_bin: Path) -> dict[str, Path]:
    return {"data_bin": data_bin}


def _clear_marker(save_dir: Path) -> None:
    for name in (MARKER, MANIFEST):
        (save_dir / name).unlink(missing_ok=True)


def write_completion(cfg: TrainConfig, data_bin: Path, save_dir: Path, stats: dict[str, Any],
                     timing: dict[str, Any], data_fingerprint: str) -> dict[str, Any]:
    """manifest.json, then ``_COMPLETE`` last (same format as StageOutput, so read_manifest/is_complete work).
    ``data_fingerprint`` is the data-bin's fingerprint taken by preflight, before training read it."""
    ckpt = save_dir / "checkpoint_last.pt"
    config = cfg.to_dict()
    manifest = {
        "stage": STAGE,
        "config": config,
        "config_sha256": sha256_json(config),
        "inputs": {"data_bin": {"path": str(data_bin), "fingerprint": data_fingerprint}},
        # no bytes/sha256 here: fairseq pickles wall-clock meters into extra_state, so even the size varies
        # between identical runs (2,528,945 vs 2,529,073 bytes; weights equal). They go to timing.json.
        "outputs": {"checkpoint_last.pt": {"num_updates": stats.get("updates")}},
        "stats": stats,
    }
    write_json(save_dir / MANIFEST, manifest)
    write_json(save_dir / TIMING, {**timing, "checkpoint_last.pt": {"bytes": ckpt.stat().st_size,
                                                                      "sha256": sha256_file(ckpt)}})
    atomic_write_text(save_dir / MARKER, sha256_file(save_dir / MANIFEST) + "\n")
    return manifest


def _run_child(cmd: list[str], log_path: Path, env: dict[str, str]) -> int:
    """Run ``cmd``, streaming its output to stdout and appending it to ``log_path``."""
    with open(log_path, "a", encoding="utf-8") as logf:
        logf.write(f"# koroberta train: {format_command(cmd)}\n")
        logf.flush()
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env,
                                text=True, encoding="utf-8", errors="replace", bufsize=1)
        try:
            for line in proc.stdout or ():
                logf.write(line)
                logf.flush()
                sys.stdout.write(line)
            return proc.wait()
        except BaseException:
            proc.kill()  # our child only; fairseq's own workers die with it
            proc.wait()
            raise


def supersede_checkpoints(save_dir: Path) -> Path:
    """Move a previous run's checkpoints and logs into ``save_dir/superseded-N/`` (a rename: nothing is deleted)."""
    n = 1
    while (save_dir / f"superseded-{n}").exists():
        n += 1
    dest = save_dir / f"superseded-{n}"
    dest.mkdir()
    for p in sorted(save_dir.iterdir()):
        if p.name.startswith("checkpoint") or p.name in (LOG_NAME, TRAIN_STATE, "tensorboard", "report", TIMING):
            os.replace(p, dest / p.name)
    return dest


def train(cfg: TrainConfig, data_bin: str | Path, save_dir: str | Path, *, dry_run: bool = False,
          force: bool = False, spm_model: str | Path | None = None) -> Path:
    """Preflight, print the command and effective batch, run fairseq-train (resuming), mark completion.

    Returns ``save_dir/checkpoint_last.pt`` (for ``dry_run`` the path it would have). Skips the run when
    ``save_dir`` is complete for this config and data-bin unless ``force``. ``force`` reruns the launch — fairseq
    still resumes from ``checkpoint_last.pt``; delete the directory to start from scratch.
    """
    data_bin, save_dir = Path(data_bin), Path(save_dir)
    ckpt = save_dir / "checkpoint_last.pt"
    if not force and not dry_run and is_complete(save_dir, STAGE, cfg.to_dict(), _inputs(data_bin)) \
            and ckpt.is_file():
        log.info("train: %s is complete for this config and data-bin; skipping (use --force to rerun)", save_dir)
        return ckpt
    pf = preflight(cfg, data_bin, save_dir, spm_model=spm_model, dry_run=dry_run)
    cmd = build_command(cfg, data_bin, save_dir, pf)
    if cfg.launcher == "slurm" and "SLURM_JOB_ID" in os.environ:
        cmd = [os.path.expandvars(c) for c in cmd]  # ${SLURM_JOB_ID}, ${MASTER_ADDR} from scripts/pretrain.slurm
    print(pf.describe(), flush=True)
    print("command: " + format_command(cmd), flush=True)
    if dry_run:
        return ckpt
    save_dir.mkdir(parents=True, exist_ok=True)
    if (save_dir / MARKER).exists() or (save_dir / MANIFEST).exists():
        log.info("train: removing the previous completion marker of %s (this run re-marks it when it ends)", save_dir)
    _clear_marker(save_dir)  # only the end of *this* run may mark the directory complete
    if pf.supersede:
        log.warning("train: checkpoints in %s are of another model/data-bin; moved to %s", save_dir,
                    supersede_checkpoints(save_dir))
    if ckpt.is_file():
        log.info("train: resuming from %s", ckpt)
    state = {**cfg.shape(), "vocab_size": pf.vocab_size, "data_fingerprint": pf.data_fingerprint,
             "config": cfg.to_dict(), "device_name": pf.device_name, "world_size": cfg.world_size,
             "params": pf.params, "layers": pf.shape.layers, "dim": pf.shape.dim,
             "ffn": pf.shape.ffn, "heads": pf.shape.heads}
    write_json(save_dir / TRAIN_STATE, state)
    t0 = time.perf_counter()
    rc = _run_child(cmd, save_dir / LOG_NAME, child_env(cpu_threads=0 if pf.cuda else cfg.cpu_threads))
    wall = time.perf_counter() - t0
    tlog = parse_log(save_dir)
    if rc != 0:
        raise TrainingFailed(f"fairseq-train exited with status {rc} at update {tlog.updates}",
                             path=save_dir / LOG_NAME,
                             fix="read the log; rerun the same command to resume from checkpoint_last.pt")
    if tlog.updates < cfg.max_update or not ckpt.is_file():
        raise TrainingFailed(f"fairseq-train stopped at update {tlog.updates} of {cfg.max_update} (data exhausted by "
                             f"max_epoch in extra_args?)", path=save_dir / LOG_NAME,
                             fix="remove max-epoch limits or lower max_update, then rerun to resume")
    stats = {**tlog.stats(), "params": pf.params, "vocab_size": pf.vocab_size,
             "sequences_per_update": pf.batch.sequences, "tokens_per_update": pf.batch.tokens,
             "precision": pf.precision}
    _, wps = tlog.series("inner", "wps")
    timing = {"total_s": round(wall, 3), "mean_wps": round(sum(wps) / len(wps), 1) if wps else None,
              "device": pf.device_name}
    write_completion(cfg, data_bin, save_dir, stats, timing, pf.data_fingerprint)
    print("train: " + json.dumps(stats, ensure_ascii=False), flush=True)
    return ckpt
