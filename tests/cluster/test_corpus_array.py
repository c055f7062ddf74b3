"""scripts/corpus_array.slurm through the real sbatch: the README's four commands (extract array -> clean -> sentences
array -> split, chained with --dependency=afterok), a shard that fails, the resubmit, and the bytes of the result."""

from __future__ import annotations

import os
import re

from slurm_jobs import REPO, bash, job, job_env, jobs, readme_block, sbatch, wait_done, wait_until

N = 2  # shards (array tasks)
#: this cluster's nodes have 2 CPUs and 2 GB: the template's --cpus-per-task=16 / --mem=32G are overridden on the
#: command line, as the README tells users to; --output keeps logs out of the checkout
OVERRIDES = "--cpus-per-task=1 --mem=1G --output={logs}/corpus-%A_%a.out"


def _readme_chain() -> list[str]:
    """The README's submission lines (A=..., B=..., C=..., D=...), verbatim."""
    lines = [l for l in readme_block("scripts/corpus_array.slurm").splitlines() if re.match(r"^[A-D]=\$\(sbatch ", l)]
    assert [l[0] for l in lines] == ["A", "B", "C", "D"], lines
    assert "STEP=extract" in lines[0] and "--array=0-$((N-1))" in lines[0]
    assert "STEP=sentences" in lines[2] and "--array=0-$((N-1))" in lines[2]
    assert "--dependency=afterok:$A" in lines[1] and "--dependency=afterok:$C" in lines[3] and "STEP=split" in lines[3]
    assert "--array" not in lines[3]
    return lines


def _submit_chain(env: dict[str, str], logs) -> list[str]:
    over = OVERRIDES.format(logs=logs)
    script = "\n".join(l.replace("$(sbatch ", f"$(sbatch {over} ", 1) for l in _readme_chain())
    return bash(script + '\necho "$A $B $C $D"', env).split()


def test_missing_config_is_an_error_not_the_defaults(tmp_path):
    logs = tmp_path / "logs"
    logs.mkdir()
    env = job_env(STEP="extract", N=str(N), OUT=str(tmp_path / "out"),
                  SOURCE=str(REPO / "tests/fixtures/kowiki-tiny.xml.bz2"))
    jid = sbatch(["--array=0", *OVERRIDES.format(logs=logs).split(), "scripts/corpus_array.slurm"], env)
    (rec,) = wait_done(jid, 120)
    assert rec["JobState"] == "FAILED" and rec["ExitCode"] == "2:0", rec
    out = (logs / f"corpus-{rec['ArrayJobId']}_0.out").read_text()
    assert "error: CONFIG is not set" in out and "CONFIG=none" in out
    assert not (tmp_path / "out").exists()


def test_array_chain_fails_shard_resubmits_and_matches_one_machine_build(pipeline, tmp_path):
    cfg, wd = pipeline
    out, logs = tmp_path / "corpus", tmp_path / "logs"
    logs.mkdir()
    env = job_env(CONFIG=str(cfg), SOURCE=str(REPO / "tests/fixtures/kowiki-tiny.xml.bz2"), OUT=str(out), N=str(N))

    # shard 1 fails for real: its output directory holds a file koroberta did not write, which it refuses to replace
    blocker = out / "extract-00001-of-00002" / "notes.txt"
    blocker.parent.mkdir(parents=True)
    blocker.write_text("not ours\n")
    a, b, c, d = _submit_chain(env, logs)
    tasks = {r["ArrayTaskId"]: r for r in wait_done(a, 300)}
    assert tasks["0"]["JobState"] == "COMPLETED", tasks
    assert tasks["1"]["JobState"] == "FAILED" and tasks["1"]["ExitCode"] != "0:0", tasks
    assert "holds files koroberta did not write" in (logs / f"corpus-{a}_1.out").read_text()
    # afterok: the clean job can never run, so neither can the sentence split nor the train/valid/test split
    wait_until(lambda: job(b)["Reason"] == "DependencyNeverSatisfied", 60, "clean job: DependencyNeverSatisfied")
    assert job(b)["JobState"] == "PENDING"
    assert {r["JobState"] for r in jobs(c) + jobs(d)} == {"PENDING"}
    assert not (out / "clean").exists() and not (out / "split").exists()
    done0 = {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in (out / "extract-00000-of-00002").iterdir()}

    # the README's recovery: cancel the stuck chain, fix the cause, submit the same commands again
    bash(f"scancel {b} {c} {d}", env)
    blocker.unlink()
    blocker.parent.rmdir()
    a2, b2, c2, d2 = _submit_chain(env, logs)
    (last,) = wait_done(d2, 900, log=logs / f"corpus-{d2}_4294967294.out")  # %a of a non-array job
    assert last["JobState"] == "COMPLETED" and last["ExitCode"] == "0:0", last
    for jid in (a2, b2, c2):
        assert {(r["JobState"], r["ExitCode"]) for r in jobs(jid)} == {("COMPLETED", "0:0")}, jobs(jid)
    # only the missing shard was redone: shard 0's files are the very same files, and its task said so
    assert {p.name: (p.stat().st_ino, p.stat().st_mtime_ns)
            for p in (out / "extract-00000-of-00002").iterdir()} == done0
    assert "is complete for this config and these inputs; skipping" in (logs / f"corpus-{a2}_0.out").read_text()
    assert "skipping" not in (logs / f"corpus-{a2}_1.out").read_text()
    # the tasks ran where the scheduler put them, with the CPUs it gave them
    first = (logs / f"corpus-{c2}_0.out").read_text().splitlines()[0]
    node = next(r for r in jobs(c2) if r["ArrayTaskId"] == "0")["NodeList"]
    assert f"step sentences shard 0/{N} on {node}, 1 workers, config {cfg}" in first, first

    # byte-identical to `koroberta corpus build` on one machine (the pipeline fixture's corpus)
    for name in ("train", "valid", "test"):
        got, want = (out / "split" / f"{name}.txt").read_bytes(), (wd / "corpus/split" / f"{name}.txt").read_bytes()
        assert got == want, f"{name}.txt differs from the one-machine build ({len(got)} vs {len(want)} bytes)"
    assert os.path.getsize(out / "split/train.txt") > 100_000
