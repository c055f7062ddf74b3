"""train stage: fairseq-train masked_lm RoBERTa, preflighted, resumable, observable.

Entry point :func:`train`. The returned checkpoint is ``save_dir/checkpoint_last.pt`` — the model *at max_update*,
which is what the RoBERTa recipe exports (``checkpoint_best.pt`` tracks valid loss on a tiny split and is noisy).

``save_dir`` is deliberately not an atomic :class:`~koroberta.artifacts.StageOutput` directory: checkpoints must
survive a crash so the rerun resumes. Completion is marked in place: ``manifest.json`` then ``_COMPLETE`` (its
sha256), written only after ``checkpoint_last.pt`` holds ``num_updates >= max_update``.

A run's identity is the train config's identity fields, the effective batch and the content of the data files
(:func:`koroberta.train.preflight.run_identity`); it is recorded in ``train_config.json`` at launch. Nothing ever
retrains silently: checkpoints of another identity stop the stage with a one-line error (``--restart`` /
``--extend`` say what to do on purpose), and a finished run is never trained one update further.
"""

from __future__ import annotations

import collections
import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from koroberta.artifacts import (MANIFEST, MARKER, TIMING, atomic_write_text, read_manifest, sha256_file, sha256_json,
                                 stage_manifest, write_json)
from koroberta.databin import data_fingerprint
from koroberta.errors import ConfigError, KorobertaError
from koroberta.train.command import fairseq_args, format_command, launch_command
from koroberta.train.config import TrainConfig
from koroberta.train.logs import LOG_NAME, parse_log, progress_line
from koroberta.train.preflight import TRAIN_STATE, Preflight, preflight, run_identity

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


def _clear_marker(save_dir: Path) -> None:
    for name in (MARKER, MANIFEST):
        (save_dir / name).unlink(missing_ok=True)


def is_trained(save_dir: Path, cfg: TrainConfig, data_fp: str) -> bool:
    """``save_dir`` is marked complete for this run identity (train identity fields, effective batch, data
    content). Run-time fields -- the launcher, how the batch is split over GPUs and nodes, intervals -- and all
    paths play no part, so a run finished by scripts/pretrain.slurm is found complete by `koroberta run`."""
    m = read_manifest(save_dir)
    return (m is not None and m.get("stage") == STAGE and (save_dir / "checkpoint_last.pt").is_file()
            and m.get("identity_sha256") == sha256_json(run_identity(cfg, data_fp)))


def checkpoint_updates(ckpt: Path) -> int | None:
    """``num_updates`` stored in a fairseq checkpoint (None when it has none). Memory-mapped: a multi-GB
    checkpoint is not read into memory for one integer."""
    import torch

    state = torch.load(ckpt, map_location="cpu", weights_only=False, mmap=True)
    history = state.get("optimizer_history") or [{}]
    n = history[-1].get("num_updates")
    return int(n) if n is not None else None


def write_completion(cfg: TrainConfig, data_bin: Path, save_dir: Path, stats: dict[str, Any],
                     timing: dict[str, Any], data_fp: str) -> dict[str, Any]:
    """manifest.json, then ``_COMPLETE`` last (the StageOutput format, so read_manifest works on it).
    ``data_fp`` is the data-bin's content fingerprint taken by preflight, before training read it."""
    ckpt = save_dir / "checkpoint_last.pt"
    # no bytes/sha256 for the checkpoint: fairseq pickles wall-clock meters into extra_state, so even the size varies
    # between identical runs (2,528,945 vs 2,529,073 bytes; weights equal). They go to timing.json.
    manifest = stage_manifest(STAGE, cfg.to_dict(), run_identity(cfg, data_fp),
                              {"data_bin": {"path": str(data_bin), "fingerprint": data_fp}},
                              {"checkpoint_last.pt": {"num_updates": stats.get("updates")}}, stats)
    write_json(save_dir / MANIFEST, manifest)
    write_json(save_dir / TIMING, {**timing, "checkpoint_last.pt": {"bytes": ckpt.stat().st_size,
                                                                    "sha256": sha256_file(ckpt)}})
    atomic_write_text(save_dir / MARKER, sha256_file(save_dir / MANIFEST) + "\n")
    return manifest


def _describe(diffs: dict[str, tuple]) -> str:
    def short(v: Any) -> str:
        t = str(v)
        return t if len(t) <= 24 else t[:12] + "..." + t[-8:]
    return ", ".join(f"{k} {short(a)} -> {short(b)}" for k, (a, b) in diffs.items())


def _run_child(cmd: list[str], log_path: Path, env: dict[str, str], *, max_update: int, echo: bool) -> int:
    """Run ``cmd`` with everything it prints appended to ``log_path``. The terminal gets one line per fairseq
    train_inner/valid record (``echo`` = everything, for `koroberta -v`); when the child fails, the last lines of its
    output -- the traceback -- are copied to stderr so the error reaches the user in full."""
    tail: collections.deque[str] = collections.deque(maxlen=80)
    with open(log_path, "a", encoding="utf-8") as logf:
        logf.write(f"# koroberta train: {format_command(cmd)}\n")
        logf.flush()
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env,
                                text=True, encoding="utf-8", errors="replace", bufsize=1)
        try:
            for line in proc.stdout or ():
                logf.write(line)
                logf.flush()
                tail.append(line)
                if echo:
                    sys.stdout.write(line)
                elif (msg := progress_line(line, max_update)) is not None:
                    print(msg, flush=True)
            rc = proc.wait()
        except BaseException:
            proc.kill()  # our child only; fairseq's own workers die with it
            proc.wait()
            raise
    if rc != 0 and not echo:
        sys.stderr.write(f"--- last lines of {log_path} ---\n" + "".join(tail))
    return rc


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
          force: bool = False, restart: bool = False, extend: bool = False,
          spm_model: str | Path | None = None) -> Path:
    """Preflight, print the command and effective batch, run fairseq-train (resuming), mark completion.

    Returns ``save_dir/checkpoint_last.pt`` (for ``dry_run`` the path it would have).

    * Complete for this run identity (see :func:`is_trained`): returns at once, nothing is checked or launched.
    * Checkpoints of the same identity: resumed. One that already reached ``max_update`` is marked complete without
      starting fairseq (fairseq would run one more update at lr 0 and rewrite it).
    * Checkpoints of another identity: a :class:`ConfigError` naming what differs, unless ``restart`` (move them
      to ``save_dir/superseded-N/`` and start from update 0) or ``extend`` (only ``max_update`` was raised:
      continue the same run to the new horizon; fairseq's polynomial decay is recomputed for it).
    * ``force`` re-checks and relaunches even when complete (a finished run is still not trained further).
    """
    data_bin, save_dir = Path(data_bin), Path(save_dir)
    ckpt = save_dir / "checkpoint_last.pt"
    data_fp = data_fingerprint(data_bin) if data_bin.is_dir() else None
    if not force and not dry_run and not restart and data_fp and is_trained(save_dir, cfg, data_fp):
        log.info("train: %s is complete for this run (same identity and data); skipping", save_dir)
        return ckpt
    pf = preflight(cfg, data_bin, save_dir, spm_model=spm_model, dry_run=dry_run, data_fp=data_fp)
    cmd = build_command(cfg, data_bin, save_dir, pf)
    if cfg.launcher == "slurm" and "SLURM_JOB_ID" in os.environ:
        cmd = [os.path.expandvars(c) for c in cmd]  # ${SLURM_JOB_ID}, ${MASTER_ADDR} from scripts/pretrain.slurm
    conflicts = dict(pf.conflicts)
    extending = False
    if conflicts and not restart:
        old_max, new_max = conflicts.get("max_update", (None, None))
        if extend and set(conflicts) == {"max_update"} and old_max is not None and new_max > old_max:
            extending = True
        else:
            hint = ("--extend continues it to the new max_update; " if set(conflicts) == {"max_update"} else "")
            raise ConfigError(f"holds checkpoints of a different run ({_describe(conflicts)})", path=save_dir,
                              fix=f"restore those settings to resume it; {hint}--restart moves the checkpoints to "
                                  f"{save_dir}/superseded-N/ and trains from update 0; or choose another save dir")
    print(pf.describe(), flush=True)
    if conflicts and restart:
        print(f"restart: checkpoints of another run ({_describe(conflicts)}) will be moved aside", flush=True)
    print("command: " + format_command(cmd), flush=True)
    if dry_run:
        return ckpt
    save_dir.mkdir(parents=True, exist_ok=True)
    if (save_dir / MARKER).exists() or (save_dir / MANIFEST).exists():
        log.info("train: clearing the completion marker of %s (this run re-marks it when it ends)", save_dir)
    _clear_marker(save_dir)  # only the end of *this* run may mark the directory complete
    if conflicts and restart:
        log.warning("train: --restart: moved the checkpoints of the other run to %s", supersede_checkpoints(save_dir))
    done = checkpoint_updates(ckpt) if ckpt.is_file() else None
    if extending:
        log.warning("train: --extend: continuing %s from update %s to max_update %d", save_dir, done, cfg.max_update)
    state = {"identity": run_identity(cfg, pf.data_fingerprint), "config": cfg.to_dict(), **cfg.shape(),
             "vocab_size": pf.vocab_size, "device_name": pf.device_name, "world_size": cfg.world_size,
             "params": pf.params, "layers": pf.shape.layers, "dim": pf.shape.dim,
             "ffn": pf.shape.ffn, "heads": pf.shape.heads}
    write_json(save_dir / TRAIN_STATE, state)
    t0 = time.perf_counter()
    if done is not None and done >= cfg.max_update:
        # a finished run (killed before its marker, or relaunched with --force): fairseq would train one more update
        log.info("train: %s already reached update %d of %d; marking it complete without training", ckpt, done,
                 cfg.max_update)
        rc = 0
    else:
        if done is not None:
            log.info("train: resuming from %s (update %d of %d)", ckpt, done, cfg.max_update)
        print(f"train: fairseq's full output goes to {save_dir / LOG_NAME}", flush=True)
        rc = _run_child(cmd, save_dir / LOG_NAME, child_env(cpu_threads=0 if pf.cuda else cfg.cpu_threads),
                        max_update=cfg.max_update, echo=log.isEnabledFor(logging.DEBUG))
    wall = time.perf_counter() - t0
    tlog = parse_log(save_dir)
    if rc != 0:
        raise TrainingFailed(f"fairseq-train exited with status {rc} at update {tlog.updates}",
                             path=save_dir / LOG_NAME,
                             fix="read the log; rerun the same command to resume from checkpoint_last.pt")
    updates = checkpoint_updates(ckpt) if ckpt.is_file() else None
    if updates is None or updates < cfg.max_update:
        raise TrainingFailed(f"fairseq-train stopped at update {updates or tlog.updates} of {cfg.max_update} (data "
                             f"exhausted by max_epoch in extra_args?)", path=save_dir / LOG_NAME,
                             fix="remove max-epoch limits or lower max_update, then rerun to resume")
    stats = {**tlog.stats(), "updates": updates, "params": pf.params, "vocab_size": pf.vocab_size,
             "sequences_per_update": pf.batch.sequences, "tokens_per_update": pf.batch.tokens,
             "precision": pf.precision}
    _, wps = tlog.series("inner", "wps")
    timing = {"total_s": round(wall, 3), "mean_wps": round(sum(wps) / len(wps), 1) if wps else None,
              "device": pf.device_name}
    write_completion(cfg, data_bin, save_dir, stats, timing, pf.data_fingerprint)
    print("train: " + json.dumps(stats, ensure_ascii=False), flush=True)
    return ckpt
