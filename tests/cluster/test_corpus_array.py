"""scripts/corpus_array.slurm through the real sbatch: the README's four commands (extract array -> clean -> sentences
array -> split, chained with --dependency=afterok), a shard that fails, the resubmit, and the bytes of the result --
for one `source:` and for several `sources:` (each extract task then extracts its shard of every source)."""

from __future__ import annotations

import bz2
import csv
import json
import os
import re
from pathlib import Path

import pytest
import yaml

from slurm_jobs import KOROBERTA, REPO, bash, job, job_env, jobs, readme_block, run, sbatch, wait_done, wait_until

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


def _submit_with_shard_1_failing(env, logs, blocker):
    """Submit the README's chain with extract shard 1 failing for real: its directory holds ``blocker``, a file
    koroberta did not write, which it refuses to replace. Returns the four job ids once the extract array ended."""
    blocker.parent.mkdir(parents=True)
    blocker.write_text("not ours\n")
    a, b, c, d = _submit_chain(env, logs)
    tasks = {r["ArrayTaskId"]: r for r in wait_done(a, 300)}
    assert tasks["0"]["JobState"] == "COMPLETED", tasks
    assert tasks["1"]["JobState"] == "FAILED" and tasks["1"]["ExitCode"] != "0:0", tasks
    assert "holds files koroberta did not write" in (logs / f"corpus-{a}_1.out").read_text()
    return a, b, c, d


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
    a, b, c, d = _submit_with_shard_1_failing(env, logs, blocker)
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
    # only the missing shard was redone: shard 0's files are the very same files, and its task said so; the split
    # job then removed the shards' data (the stage was complete), leaving a note in its place
    after = {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in (out / "extract-00000-of-00002").iterdir()}
    assert after.pop("PRUNED.json") and "docs.jsonl" not in after
    assert after == {k: v for k, v in done0.items() if k != "docs.jsonl"}
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


def test_multistream_array_decodes_each_stream_once_and_matches_one_machine_build(pipeline, tmp_path):
    """The same chain on the multistream form of the same dump (its index next to it): each extract task decodes
    only its own streams -- together the file once, plus a copy of the 665-byte header stream per extra task -- and
    the result is byte-identical to `koroberta corpus build` on the single-stream dump (the pipeline fixture)."""
    from koroberta.artifacts import read_manifest
    from koroberta.corpus.multistream import convert_dump, index_for

    cfg, wd = pipeline
    n = 3
    src = tmp_path / "dumps" / "kowiki-tiny-pages-articles-multistream.xml.bz2"
    src.parent.mkdir()
    assert convert_dump(REPO / "tests/fixtures/kowiki-tiny.xml.bz2", src, pages_per_stream=4) == 71
    assert index_for(src) is not None
    out, logs = tmp_path / "corpus", tmp_path / "logs"
    logs.mkdir()
    env = job_env(CONFIG=str(cfg), SOURCE=str(src), OUT=str(out), N=str(n))
    a, b, c, d = _submit_chain(env, logs)
    (last,) = wait_done(d, 900, log=logs / f"corpus-{d}_4294967294.out")
    assert last["JobState"] == "COMPLETED" and last["ExitCode"] == "0:0", last
    for jid in (a, b, c):
        assert {(r["JobState"], r["ExitCode"]) for r in jobs(jid)} == {("COMPLETED", "0:0")}, jobs(jid)

    stats = [read_manifest(out / f"extract-{i:05d}-of-{n:05d}")["stats"] for i in range(n)]
    assert [s["shard_by"] for s in stats] == ["streams"] * n and sum(s["pages_read"] for s in stats) == 71
    assert all(s["pages_read"] < 71 for s in stats)  # no task read the whole dump
    decoded, size = sum(s["compressed_bytes_read"] for s in stats), src.stat().st_size
    assert decoded <= 1.05 * size, f"the extract tasks decoded {decoded / size:.3f}x the dump's compressed bytes"
    assert "streams at bytes" in (logs / f"corpus-{a}_1.out").read_text()
    for name in ("train", "valid", "test"):
        got, want = (out / "split" / f"{name}.txt").read_bytes(), (wd / "corpus/split" / f"{name}.txt").read_bytes()
        assert got == want, f"{name}.txt differs from the one-machine build ({len(got)} vs {len(want)} bytes)"


# -- several sources -------------------------------------------------------------------------------------------------
SOURCE_NAMES = ("kowiki", "nsmc", "notes")


@pytest.fixture(scope="module")
def sources_run(tmp_path_factory) -> tuple[Path, Path]:
    """(config path, workdir) of a run with three `sources:` -- the tiny dump's short pages, the NSMC-style TSV, a
    `documents: line` text file repeating three NSMC reviews (exact duplicates across sources) and one of its own --
    and a decontamination file holding a fourth review; its corpus built by `koroberta corpus build --config` on one
    machine, which `koroberta run --until corpus` then finds complete: the reference the array must match."""
    base = tmp_path_factory.mktemp("sources")
    # the dump's pages under 8,000 characters (redirects, other namespaces among them): the single-source test above has
    # the whole dump; kss on its long articles would add a minute to each build here, for nothing sharding-specific
    raw = bz2.decompress((REPO / "tests/fixtures/kowiki-tiny.xml.bz2").read_bytes()).decode("utf-8")
    head, *pages = raw.split("  <page>")
    pages[-1] = pages[-1].split("</mediawiki>")[0]
    dump = base / "kowiki-short.xml.bz2"
    dump.write_bytes(bz2.compress((head + "".join("  <page>" + p for p in pages if len(p) < 8000)
                                   + "</mediawiki>\n").encode("utf-8")))
    with open(REPO / "tests/fixtures/nsmc-tiny.tsv", encoding="utf-8", newline="") as f:
        reviews = [r["document"] for r in csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE)]
    long = [r for r in reviews if len(r) >= 30]
    (base / "notes.txt").write_text("\n".join([long[1], "이 줄은 어느 출처에도 없는, 노트 파일만의 긴 문장이다.",
                                                long[len(long) // 2], long[-2]]) + "\n", encoding="utf-8")
    (base / "eval.tsv").write_text(f"id\tdocument\tlabel\n1\t{long[5]}\t1\n", encoding="utf-8")
    wd = base / "run"
    cfg = base / "sources.yaml"
    cfg.write_text(yaml.safe_dump({
        "name": "cluster-sources", "workdir": str(wd), "workers": 2,
        "sources": [{"name": "kowiki", "path": str(dump), "weight": 0.5},
                    {"name": "nsmc", "path": str(REPO / "tests/fixtures/nsmc-tiny.tsv"), "weight": 2.0},
                    {"name": "notes", "path": str(base / "notes.txt"), "documents": "line"}],
        "decontaminate": [str(base / "eval.tsv")],
        "corpus": {"valid_fraction": 0.1, "test_fraction": 0.1}}, allow_unicode=True), encoding="utf-8")
    r = run([KOROBERTA, "corpus", "build", "--config", str(cfg), "--workers", "2", str(wd / "corpus")], timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    r = run([KOROBERTA, "run", str(cfg), "--until", "corpus"], timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert f"corpus.split: {wd / 'corpus' / 'split'} is complete for this config and these inputs; skipping" \
        in r.stderr, r.stderr[-2000:]
    return cfg, wd


def test_source_with_a_sources_config_is_refused(sources_run, tmp_path):
    cfg, _ = sources_run
    logs = tmp_path / "logs"
    logs.mkdir()
    source = str(REPO / "tests/fixtures/kowiki-tiny.xml.bz2")
    env = job_env(CONFIG=str(cfg), STEP="extract", N=str(N), OUT=str(tmp_path / "out"), SOURCE=source)
    jid = sbatch(["--array=0", *OVERRIDES.format(logs=logs).split(), "scripts/corpus_array.slurm"], env)
    (rec,) = wait_done(jid, 120)
    assert rec["JobState"] == "FAILED" and rec["ExitCode"] == "2:0", rec
    out = (logs / f"corpus-{rec['ArrayJobId']}_0.out").read_text()
    assert f"error: SOURCE={source} is set, and {cfg} lists `sources:`" in out and "fix: unset SOURCE" in out
    assert not (tmp_path / "out").exists()


def _step_files(d: Path) -> dict[str, bytes]:
    """A step directory's files but manifest, marker and timings (they name the inputs: the shard directories)."""
    return {str(p.relative_to(d)): p.read_bytes() for p in sorted(d.rglob("*"))
            if p.is_file() and p.name not in ("manifest.json", "_COMPLETE", "timing.json")}


def test_sources_array_fails_shard_resubmits_and_matches_one_machine_build(sources_run, tmp_path):
    cfg, wd = sources_run
    out, logs = tmp_path / "corpus", tmp_path / "logs"
    logs.mkdir()
    env = job_env(CONFIG=str(cfg), OUT=str(out), N=str(N))  # no SOURCE: the config lists them

    # task 1 fails at its second source (a file koroberta did not write), after its first source's shard is done
    blocker = out / f"extract-nsmc-00001-of-{N:05d}" / "notes.txt"
    a, b, c, d = _submit_with_shard_1_failing(env, logs, blocker)
    done = {f"extract-{n}-{i:05d}-of-{N:05d}" for n in SOURCE_NAMES for i in range(N)} - {
        f"extract-nsmc-00001-of-{N:05d}", f"extract-notes-00001-of-{N:05d}"}
    assert {p.parent.name for p in out.glob("extract-*/_COMPLETE")} == done
    wait_until(lambda: job(b)["Reason"] == "DependencyNeverSatisfied", 60, "clean job: DependencyNeverSatisfied")
    assert not (out / "clean").exists()
    before = {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in out.glob("extract-*/*")
              if p.parent.name in done}

    bash(f"scancel {b} {c} {d}", env)
    blocker.unlink()
    blocker.parent.rmdir()
    a2, b2, c2, d2 = _submit_chain(env, logs)
    (last,) = wait_done(d2, 900, log=logs / f"corpus-{d2}_4294967294.out")
    assert last["JobState"] == "COMPLETED" and last["ExitCode"] == "0:0", last
    for jid in (a2, b2, c2):
        assert {(r["JobState"], r["ExitCode"]) for r in jobs(jid)} == {("COMPLETED", "0:0")}, jobs(jid)
    # the resubmission redid only the two missing shards: task 0 skipped its three, task 1 its first source's (the
    # split job then removed their docs.jsonl: the stage was complete)
    assert not [p for p in before if p.name == "docs.jsonl" and p.exists()]
    assert {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in before if p.name != "docs.jsonl"} == {
        p: v for p, v in before.items() if p.name != "docs.jsonl"}
    skip = "is complete for this config and these inputs; skipping"
    assert (logs / f"corpus-{a2}_0.out").read_text().count(skip) == len(SOURCE_NAMES)
    log1 = (logs / f"corpus-{a2}_1.out").read_text()
    assert log1.count(skip) == 1 and f"extract-kowiki-00001-of-{N:05d} {skip}" in log1

    # byte-identical to `koroberta corpus build --config` (= `koroberta run`) on one machine: every file of the
    # split (text, valid_<name>, hf/*.parquet, report, PNGs) and of the merge
    ref = wd / "corpus"
    for step in ("split", "clean"):
        got, want = _step_files(out / step), _step_files(ref / step)
        assert sorted(got) == sorted(want), step
        for name in want:
            assert got[name] == want[name], f"{step}/{name} differs from the one-machine build"
    assert {"report.md", "doc_chars.png", "valid_notes.txt", "hf/train.parquet"} <= set(_step_files(out / "split"))
    # clean/docs.jsonl was removed on both sides once the stage was complete: its recorded hash is the comparison
    assert json.loads((out / "clean/manifest.json").read_text())["outputs"] == \
        json.loads((ref / "clean/manifest.json").read_text())["outputs"]
    # and what the fixture planted was found: the copied reviews across sources, the evaluation text
    per = json.loads((out / "clean" / "manifest.json").read_text(encoding="utf-8"))["stats"]["sources"]
    assert per["notes"]["duplicates_of"] == {"nsmc": 3} and per["nsmc"]["decontaminated"] == 1, per
