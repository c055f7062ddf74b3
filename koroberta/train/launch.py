"""train stage: fairseq-train masked_lm RoBERTa, preflighted, resumable, observable.

Entry point :func:`train`. The returned checkpoint is ``save_dir/checkpoint_last.pt`` — the model *at max_update*,
which is what the RoBERTa recipe exports (``checkpoint_best.pt`` tracks valid loss on a tiny split and is noisy).

``save_dir`` is deliberately not an atomic :class:`~koroberta.artifacts.StageOutput` directory: checkpoints must
survive a crash so the rerun resumes. Completion is marked in place: ``manifest.json`` then ``_COMPLETE`` (its
sha256), written only after ``checkpoint_last.pt`` holds ``num_updates >= max_update``.

A run's identity is the train config's identity fields, the effective batch, the content of the data files and of
the ``init_from`` checkpoint (:func:`koroberta.train.preflight.run_identity`); it is recorded in
``train_config.json`` at launch. Nothing ever retrains silently: checkpoints of another identity stop the stage with
a one-line error (``--restart`` / ``--extend`` say what to do on purpose), and a finished run is never trained one
update further.
"""

from __future__ import annotations

import collections
import json
import logging
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from koroberta.artifacts import (MANIFEST, MARKER, TIMING, atomic_write_text, check_output_location, output_lock,
                                 owner_of, read_manifest, sha256_file, sha256_json, stage_manifest, write_json)
from koroberta.databin import data_fingerprint
from koroberta.errors import ConfigError, KorobertaError
from koroberta.train.command import fairseq_args, format_command, launch_command
from koroberta.train.config import TrainConfig
from koroberta.train.logs import LOG_NAME, parse_lines, parse_log, progress_line
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
    return launch_command(cfg, fairseq_args(cfg, data_bin, save_dir, cuda=pf.cuda, valid_subsets=pf.valid_subsets,
                                            shards=pf.shards), fairseq_train=_fairseq_train_exe())


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
    identity = run_identity(cfg, data_fp)
    inputs = {"data_bin": {"path": str(data_bin), "fingerprint": data_fp}}
    if cfg.init_from:  # like data_bin: the path for people, the content (sha256) in the identity
        inputs["init_from"] = {"path": str(cfg.init_from), "fingerprint": identity["init_from_sha256"]}
    # no bytes/sha256 for the checkpoint: fairseq pickles wall-clock meters into extra_state, so even the size varies
    # between identical runs (2,528,945 vs 2,529,073 bytes; weights equal). They go to timing.json.
    manifest = stage_manifest(STAGE, cfg.to_dict(), identity, inputs,
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


def _run_child(cmd: list[str], log_path: Path, env: dict[str, str], *, max_update: int,
               echo: bool) -> tuple[int, list[str]]:
    """Run ``cmd`` with everything it prints appended to ``log_path``; returns (exit status, its last 80 lines).
    The terminal gets one line per fairseq train_inner/valid record (``echo`` = everything, for `koroberta -v`).
    When the child fails, the caller puts the error line of that tail (:func:`_failure_cause`) into its one-line
    error; the whole traceback stays in ``log_path``."""
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
    return rc, list(tail)


#: argparse's last line, ``fairseq-train: error: unrecognized arguments: --foo`` (prog differs under torchrun)
_ARGPARSE_ERROR = re.compile(r"^\S*: error: (.+)$")
#: the last line of a Python traceback, ``ValueError: ...`` / ``FileNotFoundError: [Errno 2] ...``
_EXCEPTION = re.compile(r"^(?:[A-Za-z_][\w]*\.)*[A-Za-z_]\w*(?:Error|Exception|Interrupt|Exit)\b:?.*$")


def _failure_cause(tail: list[str]) -> tuple[str, str | None]:
    """What made fairseq fail, from the last lines it printed: ``("usage", "unrecognized arguments: --foo")`` for
    an argparse refusal, ``("exception", "ValueError: ...")`` for a traceback, ``("unknown", None)`` otherwise.
    torchrun wraps a rank's traceback in its own ``ChildFailedError``: the rank's exception is the one named."""
    lines = [l.rstrip() for l in tail]
    usage = next((k for k, l in enumerate(lines) if l.startswith("usage: ")), None)
    for line in reversed(lines[usage:] if usage is not None else []):  # argparse prints usage, then the error
        if m := _ARGPARSE_ERROR.match(line):
            return "usage", m.group(1)
    found = [l for l in lines if _EXCEPTION.match(l) and "ChildFailedError" not in l]
    return ("exception", found[-1][:300]) if found else ("unknown", None)


class ExtraArgsRefused(ConfigError):
    """fairseq's own parser refuses ``train.extra_args``; the train CLI re-words it to name where they came from."""

    def __init__(self, problem: str, fix: str):
        self.problem, self.fix = problem, fix
        super().__init__(f"train.extra_args: {problem}", fix=fix)


def check_extra_args(cfg: TrainConfig, args: list[str]) -> None:
    """Parse the fairseq-train arguments ``args`` with fairseq's own parser (task and arch options included), so a
    misspelt or unknown flag in ``extra_args`` stops preflight -- and ``--dry-run`` -- instead of the launched job.
    Only when there are extra_args: the options koroberta builds itself are fairseq's by construction, and the
    check costs a fairseq import (~2-5 s; parsing itself takes 20 ms)."""
    if not cfg.extra_args:
        return
    try:
        from fairseq import options
    except ImportError:  # reported by the launch itself, with the dependency error preflight gives
        return
    import contextlib
    import io

    err = io.StringIO()
    fix = ("correct or remove it in train.extra_args (or --extra-args); `fairseq-train --help` lists what fairseq "
           "accepts")
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            options.parse_args_and_arch(options.get_training_parser(), input_args=list(args))
    except SystemExit:
        _, problem = _failure_cause(err.getvalue().splitlines())
        raise ExtraArgsRefused(f"fairseq-train refuses them: {problem or err.getvalue().strip()[-300:]}",
                                fix) from None
    except Exception as e:  # e.g. --user-dir naming a module that does not import
        raise ExtraArgsRefused(f"fairseq-train refuses them: {type(e).__name__}: {e}", fix) from None


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


def check_save_location(save_dir: Path, data_bin: Path, spm_model: str | Path | None, *, restart: bool) -> None:
    """Where checkpoints may go (the artifacts rule, :func:`koroberta.artifacts.check_output_location`): not into
    the data-bin or another stage's output, not over a directory holding other stages' outputs. Files next to the
    checkpoints are left alone (train writes in place and never replaces the directory), but fairseq checkpoints
    that koroberta did not launch (no ``train_config.json``) are refused: fairseq would silently resume from them.
    ``--restart`` moves them aside like any other run's."""
    check_output_location(save_dir, STAGE, {"data_bin": data_bin, "spm_model": spm_model}, overwrite=True)
    if owner_of(save_dir) is None and not restart and any(save_dir.glob("checkpoint*.pt")):
        raise ConfigError(f"holds fairseq checkpoints koroberta did not launch (no {TRAIN_STATE}); fairseq would "
                          f"resume from them whatever they are", path=save_dir,
                          fix=f"choose another save dir, or pass --restart to move them to {save_dir}/superseded-N/ "
                              f"and train from update 0")


def _conflict_error(conflicts: dict[str, tuple], save_dir: Path, cfg: TrainConfig, *, extend: bool) -> ConfigError:
    """The refusal to train on top of checkpoints of another run, with the advice that fits what differs: only a
    *raised* max_update can be continued (--extend); a lowered one cannot, since those checkpoints were trained with
    the decay towards the old horizon (and may already be past the new one)."""
    restart = (f"--restart moves the checkpoints to {save_dir}/superseded-N/ and trains from update 0; or choose "
               f"another save dir")
    old_max, new_max = conflicts.get("max_update", (None, None))
    others = {k: v for k, v in conflicts.items() if k != "max_update"}
    what = f"holds checkpoints of a different run ({_describe(conflicts)})"
    if "data" in conflicts:  # a content fingerprint: say what it is, "restore data" alone means nothing
        what += "; data is the data-bin's content, which differs from the one they were trained on"
    if old_max is not None and new_max is not None and new_max < old_max:
        ckpt = save_dir / "checkpoint_last.pt"
        at = checkpoint_updates(ckpt) if ckpt.is_file() else None
        where = (f"they are at update {at}, already past max_update {new_max}" if at is not None and at >= new_max
                 else f"they are at update {at}" if at is not None else "they")
        lowered = (f"max_update was lowered {old_max} -> {new_max}: fairseq cannot shorten a run -- {where}, trained "
                   f"with the lr decaying towards update {old_max}, so they are not the first updates of a "
                   f"{new_max}-update run" + (" (--extend only raises max_update)" if extend else ""))
        also = f"; other settings differ too ({_describe(others)})" if others else ""
        return ConfigError(f"{what}: {lowered}{also}", path=save_dir,
                           fix=f"restore max_update: {old_max}" + (" and those settings" if others else "")
                               + f" to resume it; {restart}")
    if extend:
        why = ("--extend only continues a run to a raised max_update, " + (
            f"and other settings differ too ({_describe(others)})" if old_max is not None else
            f"and max_update is unchanged ({cfg.max_update}) while other settings differ ({_describe(others)})"))
        return ConfigError(f"{what}: {why}", path=save_dir,
                           fix=f"restore {', '.join(others)} to the recorded values to resume it"
                               + (" (then --extend raises max_update)" if old_max is not None else "")
                               + f"; {restart}")
    hint = "--extend continues it to the new max_update; " if set(conflicts) == {"max_update"} else ""
    return ConfigError(what, path=save_dir,
                       fix=f"restore those settings to resume it; {hint}{restart}")


def _failure_error(rc: int, tail: list[str], save_dir: Path, cfg: TrainConfig, *, started_at: int | None,
                   launch_updates: int) -> "TrainingFailed":
    """The one-line error for a fairseq-train that exited non-zero. Resuming is advice only where it can help: the
    child trained (and saved) before it failed. A failure at start -- fairseq refusing an argument, a dataset it
    cannot load, an exception before the first update -- happens again on a rerun, so the fix names the cause.
    ``launch_updates``: the last update this launch logged (0: none)."""
    log_path = save_dir / LOG_NAME
    kind, cause = _failure_cause(tail)
    ckpt = save_dir / "checkpoint_last.pt"
    now = checkpoint_updates(ckpt) if ckpt.is_file() else None
    flags = [a for a in cfg.extra_args if a.startswith("-") and cause and a.split("=", 1)[0] in cause]  # suspects
    if kind == "usage":
        src = f" (from extra_args: {' '.join(flags)})" if flags else ""
        return TrainingFailed(f"fairseq-train refused its arguments at start: {cause}{src}", path=log_path,
                              fix="correct or remove that flag in train.extra_args (or --extra-args), then rerun; "
                                  "`fairseq-train --help` lists what it accepts")
    start = started_at or 0
    if rc < 0:  # Popen: killed by a signal
        name = signal.Signals(-rc).name if -rc in signal.valid_signals() else str(-rc)
        what = f"fairseq-train was killed by {name}" + (" (as the kernel's out-of-memory killer, or kill -9, does)"
                                                         if name == "SIGKILL" else "")
    else:
        what = f"fairseq-train exited with status {rc}" + (f": {cause}" if cause else "")
    resume = (f"it resumes from checkpoint_last.pt (update {now})" if now is not None
              else "no checkpoint was saved, so it starts from update 0")
    if launch_updates and now is not None and now > start:  # trained and saved: a mid-run failure
        return TrainingFailed(f"{what} (at update {launch_updates})", path=log_path,
                              fix="read the traceback in the log; once the cause is fixed (or if it was transient: "
                                  f"a killed job, a lost node), rerun the same command: {resume}")
    if launch_updates:
        return TrainingFailed(f"{what} (at update {launch_updates}, before this launch saved a checkpoint)",
                              path=log_path, fix=f"read the traceback in the log, fix the cause, then rerun: {resume}")
    suspects = [f"extra_args {' '.join(flags)}"] if flags else []
    if cause and re.search(r"[Dd]ataset|data-bin|\.idx\b|\.bin\b|dict\.txt", cause):
        suspects.append("the data-bin (rebuild it with `koroberta preprocess --force`)")
    return TrainingFailed(f"{what} (at start, before its first update"
                          + (f"; resuming from update {start})" if start else ")"), path=log_path,
                          fix="a failure at start is rarely transient, so the same command would most likely fail "
                              "the same way: "
                              + (f"check {' and '.join(suspects)}; " if suspects else "")
                              + f"read the traceback in the log, fix the cause, then rerun ({resume})")


#: fairseq-train flags that end a run before max_update, or keep it from saving what it trained
_STOPPERS = ("--max-epoch", "--stop-time-hours", "--stop-min-lr", "--patience", "--no-save")


def _stopped_early_error(cfg: TrainConfig, save_dir: Path, updates: int | None, logged: int) -> "TrainingFailed":
    """fairseq-train exited 0 short of max_update. Lowering max_update is no fix (the checkpoints were trained for
    the old horizon and would be refused as another run); removing what stopped it, then resuming, is."""
    log_path = save_dir / LOG_NAME
    ea = cfg.extra_args
    stoppers = [a + (f" {ea[i + 1]}" if "=" not in a and i + 1 < len(ea) and not ea[i + 1].startswith("-") else "")
                for i, a in enumerate(ea) if a.split("=", 1)[0] in _STOPPERS]  # with its value: --max-epoch 1
    at = f"update {updates if updates is not None else logged} of {cfg.max_update}"
    resume = (f"rerun: it resumes from checkpoint_last.pt (update {updates})" if updates is not None
              else "rerun (no checkpoint was saved: it starts from update 0)")
    if stoppers:
        return TrainingFailed(f"fairseq-train stopped at {at}: extra_args {' '.join(stoppers)} ended it before "
                              f"max_update", path=log_path,
                              fix=f"remove {' '.join(stoppers)} from train.extra_args (or --extra-args), then "
                                  f"{resume}")
    return TrainingFailed(f"fairseq-train exited normally at {at}" + (", without a checkpoint" if updates is None
                                                                       else ""), path=log_path,
                          fix=f"read the end of the log for why it stopped; {resume}")


def train(cfg: TrainConfig, data_bin: str | Path, save_dir: str | Path, *, dry_run: bool = False,
          force: bool = False, restart: bool = False, extend: bool = False,
          spm_model: str | Path | None = None) -> Path:
    """Train into ``save_dir`` (see :func:`_train`), holding the directory's lock while anything may write it, so
    a second launch into the same directory is refused instead of interleaving checkpoints."""
    if restart and extend:  # else --restart silently wins and the run the user meant to continue is moved aside
        raise ConfigError("options --restart and --extend together: --extend continues the checkpoints in the save "
                          "dir, --restart moves them aside and trains from update 0",
                          fix="pass one of them (--extend to continue to a raised max_update)")
    data_bin, save_dir = Path(data_bin), Path(save_dir)
    check_save_location(save_dir, data_bin, spm_model, restart=restart)
    if dry_run:
        return _train(cfg, data_bin, save_dir, dry_run=True, force=force, restart=restart, extend=extend,
                      spm_model=spm_model)
    with output_lock(save_dir):
        return _train(cfg, data_bin, save_dir, force=force, restart=restart, extend=extend, spm_model=spm_model)


def _train(cfg: TrainConfig, data_bin: str | Path, save_dir: str | Path, *, dry_run: bool = False,
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
    check_extra_args(cfg, fairseq_args(cfg, data_bin, save_dir, cuda=pf.cuda, valid_subsets=pf.valid_subsets,
                                       shards=pf.shards))
    if cfg.launcher == "slurm" and "SLURM_JOB_ID" in os.environ:
        cmd = [os.path.expandvars(c) for c in cmd]  # ${SLURM_JOB_ID}, ${MASTER_ADDR} from scripts/pretrain.slurm
    conflicts = dict(pf.conflicts)
    extending = False
    if conflicts and not restart:
        old_max, new_max = conflicts.get("max_update", (None, None))
        if extend and set(conflicts) == {"max_update"} and old_max is not None and new_max > old_max:
            extending = True
        else:
            raise _conflict_error(conflicts, save_dir, cfg, extend=extend)
    from koroberta.resources import announce, train_needs

    announce(log, STAGE, train_needs(cfg, rows=pf.vocab_size, train_lines=pf.train_sentences,
                                     train_tokens=pf.train_tokens, shards=max(1, len(pf.shards)), cuda=pf.cuda),
             save_dir)  # after every check that refuses the run: a refusal stays one line
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
    foreign = owner_of(save_dir) is None and any(save_dir.glob("checkpoint*.pt"))  # allowed only with --restart
    if restart and (conflicts or foreign):
        log.warning("train: --restart: moved the checkpoints of the other run to %s", supersede_checkpoints(save_dir))
    done = checkpoint_updates(ckpt) if ckpt.is_file() else None
    if extending:
        log.warning("train: --extend: continuing %s from update %s to max_update %d", save_dir, done, cfg.max_update)
    # the vocabulary these checkpoints are trained with: convert refuses a --vocab-dir with other files
    # (koroberta.convert.vocab.check_trained_with), which a row count alone cannot tell apart
    vocab_hashes = {"dict_sha256": sha256_file(pf.dict_path or data_bin / "dict.txt"),  # shard0's when sharded
                    "spm_sha256": sha256_file(pf.spm_model) if pf.spm_model is not None else None}
    state = {"identity": run_identity(cfg, pf.data_fingerprint), "config": cfg.to_dict(), **cfg.shape(),
             "vocab_size": pf.vocab_size, "device_name": pf.device_name, "world_size": cfg.world_size,
             "params": pf.params, "layers": pf.shape.layers, "dim": pf.shape.dim,
             "ffn": pf.shape.ffn, "heads": pf.shape.heads, **vocab_hashes}
    if pf.init is not None:
        state["init_from"] = {"path": str(pf.init.path), "sha256": pf.init.sha256,
                              "num_updates": pf.init.num_updates}
    write_json(save_dir / TRAIN_STATE, state)
    t0 = time.perf_counter()
    if done is not None and done >= cfg.max_update:
        # a finished run (killed before its marker, or relaunched with --force): fairseq would train one more update
        log.info("train: %s already reached update %d of %d; marking it complete without training", ckpt, done,
                 cfg.max_update)
        rc, tail = 0, []
    else:
        if done is not None:
            log.info("train: resuming from %s (update %d of %d)", ckpt, done, cfg.max_update)
        print(f"train: fairseq's full output goes to {save_dir / LOG_NAME}", flush=True)
        log_start = (save_dir / LOG_NAME).stat().st_size if (save_dir / LOG_NAME).is_file() else 0
        rc, tail = _run_child(cmd, save_dir / LOG_NAME, child_env(cpu_threads=0 if pf.cuda else cfg.cpu_threads),
                              max_update=cfg.max_update, echo=log.isEnabledFor(logging.DEBUG))
    wall = time.perf_counter() - t0
    tlog = parse_log(save_dir)
    if rc != 0:
        with open(save_dir / LOG_NAME, encoding="utf-8", errors="replace") as f:
            f.seek(log_start)
            launch_updates = parse_lines(f).updates  # this launch's part of the log only
        raise _failure_error(rc, tail, save_dir, cfg, started_at=done, launch_updates=launch_updates)
    updates = checkpoint_updates(ckpt) if ckpt.is_file() else None
    if updates is None or updates < cfg.max_update:
        raise _stopped_early_error(cfg, save_dir, updates, tlog.updates)
    stats = {**tlog.stats(), "updates": updates, "params": pf.params, "vocab_size": pf.vocab_size,
             "sequences_per_update": pf.batch.sequences, "tokens_per_update": pf.batch.tokens,
             "precision": pf.precision}
    _, wps = tlog.series("inner", "wps")
    timing = {"total_s": round(wall, 3), "mean_wps": round(sum(wps) / len(wps), 1) if wps else None,
              "device": pf.device_name}
    write_completion(cfg, data_bin, save_dir, {**stats, **vocab_hashes}, timing, pf.data_fingerprint)
    print("train: " + json.dumps(stats, ensure_ascii=False), flush=True)
    return ckpt
