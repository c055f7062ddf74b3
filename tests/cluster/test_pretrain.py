"""scripts/pretrain.slurm through the real sbatch: the README's four-node command through preflight (--dry-run), and a
2-node x 1-process CPU/gloo run that is cancelled, resubmitted, requeued and signalled, then finished by
`koroberta run`.

The template is run unmodified; what this CPU cluster lacks is overridden on the sbatch command line, as the README
tells users: --gpus-per-node=0 (no GPU gres here), --cpus-per-task=2 (2 cores per node), --output.
"""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest
import yaml

from slurm_jobs import (KOROBERTA, REPO, bash, checkpoint_updates, free_port, hostnames, job, job_env, readme_block,
                        run, sbatch, wait_done, wait_until)

CPU_OVERRIDES = ["--gpus-per-node=0", "--cpus-per-task=2"]
SUMMARY = re.compile(r"pretrain\.slurm: job (\d+) \(restart (\d+)\) on (\S+): (\d+) nodes x (\d+) processes \(([^)]*)\), "
                     r"rendezvous (\S+):(\d+) \(([^)]*)\), (\S+) CPUs per task")


# -- the README's multi-node command: preflight passes (and the old one fails) --------------------------------------
def _readme_four_node_command() -> list[str]:
    lines = [l for l in readme_block("sbatch --nodes=4 scripts/pretrain.slurm").splitlines()
             if l.startswith("sbatch --nodes=4 scripts/pretrain.slurm")]
    assert len(lines) == 1, lines
    return shlex.split(lines[0])


def _dry_run(argv: list[str], pipeline, tmp_path: Path) -> tuple[dict, str]:
    _, wd = pipeline
    argv = [{"runs/base/data-bin": str(wd / "data-bin"),
             "runs/base/checkpoints": str(tmp_path / "base-checkpoints")}.get(a, a) for a in argv]
    assert argv[0] == "sbatch" and str(wd / "data-bin") in argv, argv
    # GPUS_PER_NODE=8: plan the job for the template's 8-GPU nodes on this GPU-less cluster
    env = job_env(GPUS_PER_NODE="8", MASTER_PORT=str(free_port()))
    jid = sbatch([*CPU_OVERRIDES, f"--output={tmp_path}/dry-%j.out", *argv[1:], "--dry-run"], env)
    (rec,) = wait_done(jid, 300)
    return rec, (tmp_path / f"dry-{jid}.out").read_text()


def test_readme_four_node_base_command_passes_preflight(pipeline, tmp_path):
    argv = _readme_four_node_command()
    assert argv[:5] == ["sbatch", "--nodes=4", "scripts/pretrain.slurm", "configs/base.yaml", "runs/base/data-bin"]
    rec, out = _dry_run(argv, pipeline, tmp_path)
    assert rec["JobState"] == "COMPLETED" and rec["ExitCode"] == "0:0", out[-3000:]
    assert rec["NumNodes"] == "4"
    assert "effective batch: 2,048 sequences x 512 tokens" in out, out[-3000:]
    assert "srun --nodes 4 --ntasks-per-node 1" in out and "--nnodes 4 --nproc-per-node 8" in out
    assert "--distributed-world-size 32" in out and "--fp16" in out
    # and the command the README used to show (no --update-freq) is refused by preflight, before any GPU time
    i = argv.index("--update-freq")
    rec, out = _dry_run(argv[:i] + argv[i + 2:], pipeline, tmp_path)
    assert rec["JobState"] == "FAILED", out[-2000:]
    assert "recipe base expects 2,048 sequences per update but batch_size 16 x update_freq 16 x world size 32 = " \
           "8,192" in out, out[-2000:]


# -- rendezvous address and port: checked before anything starts, one line naming the host -------------------------
def _fails_fast(tmp_path: Path, env: dict[str, str]) -> tuple[dict, str]:
    jid = sbatch(["--nodes=2", *CPU_OVERRIDES, f"--output={tmp_path}/%j.out", "scripts/pretrain.slurm",
                  str(tmp_path / "c.yaml"), str(tmp_path / "data-bin"), str(tmp_path / "save"), "--dry-run"], env)
    (rec,) = wait_done(jid, 120)
    return rec, (tmp_path / f"{jid}.out").read_text()


def test_unresolvable_rendezvous_host_is_one_line_naming_it(tmp_path):
    # node names of this cluster do not resolve (only their NodeAddr 127.0.0.1 does): ask for one by name
    rec, out = _fails_fast(tmp_path, job_env(RDZV_ADDR="n2", MASTER_PORT=str(free_port())))
    assert (rec["JobState"], rec["ExitCode"]) == ("FAILED", "2:0"), out
    (line,) = out.strip().splitlines()
    assert line.startswith("error: rendezvous host 'n2' (RDZV_ADDR, first node of job ") and "does not resolve" in line


def test_rendezvous_port_in_use_is_one_line_naming_it(tmp_path):
    import socket

    with socket.socket() as s:  # something already listens on MASTER_PORT on the first node
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        rec, out = _fails_fast(tmp_path, job_env(MASTER_PORT=str(port)))
    assert (rec["JobState"], rec["ExitCode"]) == ("FAILED", "2:0"), out
    (line,) = out.strip().splitlines()
    assert line.startswith(f"error: MASTER_PORT {port} is already in use on 127.0.0.1 (n1)"), line


# -- a 2-node CPU run: cancel, resubmit, requeue, SIGUSR1, finish ----------------------------------------------------
# The job output holds pretrain.slurm's own lines and koroberta's summary; fairseq's full output (both ranks, via
# srun) is appended to SAVE_DIR/train.log, one "# koroberta train: <command>" header per launch.
def _runs(text: str) -> list[str]:
    """A job's (appended) output split per run of the batch script (one per start or restart)."""
    starts = [m.start() for m in SUMMARY.finditer(text)]
    return [text[a:b] for a, b in zip(starts, starts[1:] + [len(text)])]


def _launches(save: Path) -> list[tuple[str, str]]:
    """(rendezvous id = job id, fairseq output) per launch recorded in SAVE_DIR/train.log."""
    log = save / "train.log"
    text = log.read_text(errors="replace") if log.is_file() else ""
    parts = re.split(r"^# koroberta train: ", text, flags=re.M)[1:]
    return [(re.search(r"--rdzv-id (\S+)", p.splitlines()[0]).group(1), p) for p in parts]


def _saved_updates(text: str) -> list[int]:
    return [int(u) for u in re.findall(r"Saved checkpoint \S+ \(epoch \d+ @ (\d+) updates", text)]


def _logged_updates(text: str) -> list[int]:
    return [int(u) for u in re.findall(r'"num_updates": "(\d+)"', text)]


def _saved_and_past(text: str, after: int = 0) -> bool:
    """This launch saved a checkpoint (beyond update ``after``) and trained 5 updates past it."""
    saved = [u for u in _saved_updates(text) if u > after]
    return bool(saved) and max(_logged_updates(text)) >= saved[-1] + 5


def _records(text: str) -> list[dict]:
    return [json.loads(l.split("| train_inner | ", 1)[1]) for l in text.splitlines() if "| train_inner | " in l]


def _release(jid: str) -> None:
    """Slurm holds a requeued job for 120 s (EligibleTime, measured 121 s here) and then waits for its next
    scheduling pass; make it eligible now so the test does not wait ~3 minutes."""
    wait_until(lambda: job(jid)["JobState"] == "PENDING", 120, f"job {jid} back in the queue")
    r = run(["scontrol", "update", f"JobId={jid}", "StartTime=now"])
    assert r.returncode == 0, r.stderr


@pytest.fixture(scope="module")
def cluster_run(pipeline, tmp_path_factory):
    cfg, wd = pipeline
    save, logs = wd / "checkpoints", tmp_path_factory.mktemp("pretrain-logs")
    max_update = yaml.safe_load(cfg.read_text())["train"]["max_update"]
    port = free_port()
    env = job_env(MASTER_PORT=str(port))
    # the YAML's 8 x update_freq 2 x 1 process = 16 sequences; 2 nodes x 1 process keep it with --update-freq 1
    argv = ["--nodes=2", *CPU_OVERRIDES, f"--output={logs}/pretrain-%j.out", "scripts/pretrain.slurm", str(cfg),
            str(wd / "data-bin"), str(save), "--device", "cpu", "--update-freq", "1"]

    def launch(i: int) -> str:
        got = _launches(save)
        return got[i][1] if len(got) > i else ""

    # 1. first job: cancelled once it saved a checkpoint and trained past it
    j1 = sbatch(argv, env)
    wait_until(lambda: _saved_and_past(launch(0)), 600, f"job {j1}: a checkpoint and 5 more updates", poll=0.3)
    j1_running = job(j1)
    bash(f"scancel {j1}", env)
    (j1_done,) = wait_done(j1, 120)
    u1 = checkpoint_updates(save / "checkpoint_last.pt")

    # 2. the same command again: resumes from checkpoint_last.pt; requeued (scontrol requeue) mid-run
    j2 = sbatch(argv, env)
    out2 = logs / f"pretrain-{j2}.out"
    wait_until(lambda: _saved_and_past(launch(1), after=u1), 600, f"job {j2}: a new checkpoint and 5 more updates",
               poll=0.3)
    bash(f"scontrol requeue {j2}", env)
    _release(j2)

    # 3. run 1 of j2: SIGUSR1 before it saved anything is refused; after a save it requeues the job itself
    wait_until(lambda: len(_runs(out2.read_text())) >= 2, 600, f"job {j2} restarted", poll=0.3)
    bash(f"scancel --batch --signal=USR1 {j2}", env)
    wait_until(lambda: "not requeueing" in _runs(out2.read_text())[1], 60, "the USR1 refusal", poll=0.3)
    wait_until(lambda: _saved_and_past(launch(2)), 600, f"job {j2} run 1: a checkpoint and 5 more updates", poll=0.3)
    bash(f"scancel --batch --signal=USR1 {j2}", env)
    wait_until(lambda: job(j2)["Restarts"] == "2", 120, f"job {j2} requeued by its USR1 trap")
    _release(j2)
    (j2_done,) = wait_done(j2, 900, log=out2)
    return dict(cfg=cfg, wd=wd, save=save, port=port, j1=j1, j2=j2, out1=(logs / f"pretrain-{j1}.out").read_text(),
                out2=out2.read_text(), launches=_launches(save), j1_running=j1_running, j1_done=j1_done,
                j2_done=j2_done, u1=u1, max_update=max_update)


def test_both_ranks_join_with_what_the_scheduler_gave(cluster_run):
    r = cluster_run
    assert r["j1_done"]["JobState"] == "CANCELLED"
    m = SUMMARY.search(r["out1"])
    assert m, r["out1"][:3000]
    jobid, restart, nodelist, nnodes, procs, procs_from, addr, port, addr_from, cpt = m.groups()
    rec = r["j1_running"]
    first = hostnames(rec["NodeList"])[0]
    node_addr = dict(kv.split("=", 1) for kv in run(["scontrol", "show", "node", "-o", first]).stdout.split()
                     if "=" in kv)["NodeAddr"]
    assert (jobid, restart, nodelist, nnodes) == (r["j1"], "0", rec["NodeList"], rec["NumNodes"])
    assert nnodes == "2" and len(hostnames(nodelist)) == 2
    assert (procs, procs_from) == ("1", "no GPUs allocated: 1 CPU process per node")
    assert (addr, addr_from) == (node_addr, f"NodeAddr of {first}")  # n1 does not resolve; 127.0.0.1 does
    assert port == str(r["port"])  # MASTER_PORT from the submitting environment, through sbatch
    assert cpt == rec["CPUs/Task"] == "2"
    assert "srun --nodes 2 --ntasks-per-node 1" in r["out1"]
    assert f"--rdzv-id {r['j1']} --rdzv-endpoint {addr}:{port}" in r["out1"]
    assert "effective batch: 16 sequences x 64 tokens" in r["out1"] and "world size 2" in r["out1"]
    rdzv, fairseq_out = r["launches"][0]
    assert rdzv == r["j1"]
    for rank in (0, 1):  # both ranks joined (their fairseq lines reach train.log through srun)
        assert f"distributed init (rank {rank}): env://" in fairseq_out


def test_cancel_then_resubmit_resumes_updates_and_lr_schedule(cluster_run):
    r = cluster_run
    u1 = r["u1"]
    assert 20 <= u1 < r["max_update"] and u1 % 20 == 0
    assert [j for j, _ in r["launches"]] == [r["j1"], r["j2"], r["j2"], r["j2"]]
    first, resumed = r["launches"][0][1], r["launches"][1][1]
    assert f"Loaded checkpoint {r['save']}/checkpoint_last.pt (epoch 1 @ {u1} updates)" in resumed
    logged = _logged_updates(resumed)
    assert u1 < logged[0] <= u1 + 5, logged[:3]  # the update count continues; it does not restart at 0
    # the updates lost with the cancelled job are replayed identically (same data order, masks, dropout, weights)
    before = {int(x["num_updates"]): x["loss"] for x in _records(first)}
    after = {int(x["num_updates"]): x["loss"] for x in _records(resumed)}
    replayed = sorted(set(before) & set(after))
    assert replayed and replayed[0] == logged[0], (sorted(before), logged[:3])
    assert all(before[u] == after[u] for u in replayed), {u: (before[u], after[u]) for u in replayed}
    # LR schedule: polynomial decay (power 1) from warmup to max_update, whatever run logged the update
    cfg = yaml.safe_load(Path(r["cfg"]).read_text())["train"]
    lr, warm, total = cfg["lr"], cfg["warmup_updates"], cfg["max_update"]
    for x in _records("".join(t for _, t in r["launches"])):
        u = int(x["num_updates"])
        want = lr * u / warm if u <= warm else lr * (1 - (u - warm) / (total - warm))
        assert float(x["lr"]) == pytest.approx(want, rel=1e-5, abs=1e-9), (u, x["lr"], want)


def test_requeue_and_usr1_resume_and_the_run_finishes(cluster_run):
    r = cluster_run
    done = r["j2_done"]
    assert (done["JobState"], done["ExitCode"], done["Restarts"]) == ("COMPLETED", "0:0", "2"), done
    runs = _runs(r["out2"])
    assert len(runs) == 3
    assert "DUE TO JOB REQUEUE" in runs[0]  # slurmstepd: the scontrol requeue
    assert re.search(r"SIGUSR1 at \S+ but no checkpoint was saved during this run of job \d+: not requeueing", runs[1])
    assert re.search(rf"SIGUSR1 at \S+: requeueing job {r['j2']}; it resumes from \S+checkpoint_last\.pt", runs[1])
    j2_launches = [t for j, t in r["launches"] if j == r["j2"]]
    loads = [int(m) for t in j2_launches
             for m in re.findall(r"Loaded checkpoint \S+checkpoint_last\.pt \(epoch \d+ @ (\d+) updates\)", t)]
    assert len(loads) == 3 and loads[0] == r["u1"] and loads[0] < loads[1] < loads[2], loads
    for i in (1, 2):
        # each restart resumes from the newest checkpoint the previous run saved
        prev = j2_launches[i - 1]
        assert loads[i] == _saved_updates(prev)[-1], (i, loads, _saved_updates(prev))
        lost = max(_logged_updates(prev)) - loads[i]
        assert 0 < lost < 20 + 5  # at most one save interval (+ the log interval it was observed at)
    assert checkpoint_updates(Path(r["save"]) / "checkpoint_last.pt") == r["max_update"]
    recs = _records("".join(t for _, t in r["launches"]))
    assert float(recs[0]["loss"]) > float(recs[-1]["loss"]) + 1.0, (recs[0]["loss"], recs[-1]["loss"])
    assert (Path(r["save"]) / "_COMPLETE").is_file()


def test_koroberta_run_converts_and_finetunes_without_retraining(cluster_run):
    r = cluster_run
    save = Path(r["save"])
    log_before = (save / "train.log").read_bytes()
    ckpt_before = (save / "checkpoint_last.pt").stat().st_mtime_ns
    p = run([KOROBERTA, "run", str(r["cfg"])], timeout=900, cwd=REPO)
    assert p.returncode == 0, p.stderr[-3000:]
    assert (save / "train.log").read_bytes() == log_before, "koroberta run re-entered training: train.log grew"
    assert (save / "checkpoint_last.pt").stat().st_mtime_ns == ckpt_before
    wd = Path(r["wd"])
    assert (wd / "hf" / "model.safetensors").is_file() and (wd / "finetune-nsmc" / "metrics.json").is_file()
