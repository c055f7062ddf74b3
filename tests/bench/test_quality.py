"""bench/quality.py (v2) end to end on tiny fixtures: it is a benchmark (its figures come from the real run recorded in
BENCHMARKS.md), but the script itself must work on a clean clone, split the NSMC rows as it says, keep every
evaluation text out of the pretraining text, choose the fine-tuning LR on the selection split only, run in cached
steps that a budget or --only bounds, and retrain nothing on a second invocation."""

from __future__ import annotations

import importlib.util
import json
import math
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures"
SCRIPT = REPO / "bench" / "quality.py"

TINY = {
    "name": "quality-tiny", "workdir": "unused", "source": "unused", "workers": 1,
    "corpus": {"valid_fraction": 0.15, "test_fraction": 0.15, "report": False},
    "spm": {"vocab_size": 2000, "character_coverage": 0.995, "hard_vocab_limit": False, "threads": 1},
    # pre-LN as configs/quality.yaml: the export is RobertaPreLayerNormForMaskedLM, which the random init must build
    "train": {"arch": "roberta_prenorm", "layernorm_embedding": True, "encoder_layers": 1, "encoder_embed_dim": 32,
              "encoder_ffn_embed_dim": 64, "encoder_attention_heads": 2, "tokens_per_sample": 64,
              "max_positions": 64, "batch_size": 8, "lr": 0.001, "warmup_updates": 2, "max_update": 4,
              "log_interval": 2, "save_interval_updates": 4, "validate_interval_updates": 4,
              "keep_interval_updates": 1, "device": "cpu", "cpu_threads": 1, "num_workers": 0, "tensorboard": False},
    "convert": {"parity_lines": 20, "parity_sentences": 2},
}
ARGS = ["--chars", "50000", "--train-rows", "100,200", "--seeds", "2,2", "--main-rows", "200", "--lrs", "1e-3,3e-3",
        "--select-seeds", "1", "--selection-rows", "60", "--dev-rows", "80", "--epochs", "1", "--max-length", "32",
        "--threads", "1"]
STEPS = ["data", "prepare-wiki", "pretrain-wiki", "prepare-wiki_reviews", "pretrain-wiki_reviews", "random-init",
         "select-random_init", "select-wiki", "select-wiki_reviews",
         "finetune-random_init-200", "finetune-wiki-200", "finetune-wiki_reviews-200",
         "finetune-random_init-100", "finetune-wiki-100", "finetune-wiki_reviews-100", "probe", "tfidf", "report"]
PLANTED = "9000"  # id prefix of the rows planted as copies of other rows' text


def _load_quality():
    spec = importlib.util.spec_from_file_location("bench_quality", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses resolve the module's string annotations through sys.modules
    spec.loader.exec_module(mod)
    return mod


def _inputs(d: Path) -> list[str]:
    """The fixtures as the benchmark reads them: WikiExtractor text, the tiny config, an NSMC file of 350 fixture
    rows plus 40 rows that copy the text of the first 40 with quotes and '!!' added (the same decontamination key),
    and a test file of the other 50 fixture rows. Returns the command-line arguments naming them."""
    docs = [x for x in (FIXTURES / "kowiki-docs.txt").read_text(encoding="utf-8").split("\n\n") if x.strip()]
    with open(d / "shard.txt", "w", encoding="utf-8") as f:
        for i, x in enumerate(docs):
            f.write(f'<doc id="{i}" url="https://ko.wikipedia.org/wiki?curid={i}" title="문서 {i}">\n문서 {i}\n\n'
                    f"{x.strip()}\n</doc>\n")
    (d / "tiny.yaml").write_text(yaml.safe_dump(TINY, allow_unicode=True), encoding="utf-8")
    head, *rows = (FIXTURES / "nsmc-tiny.tsv").read_text(encoding="utf-8").splitlines()
    main, test = rows[:350], rows[350:]
    planted = [f"{PLANTED}{i:05d}\t\"{r.split(chr(9))[1]}!!\"\t{r.split(chr(9))[2]}" for i, r in enumerate(main[:40])]
    (d / "nsmc.tsv").write_text("\n".join([head, *main, *planted]) + "\n", encoding="utf-8")
    (d / "test.tsv").write_text("\n".join([head, *test]) + "\n", encoding="utf-8")
    return ["--config", str(d / "tiny.yaml"), "--shard", str(d / "shard.txt"), "--nsmc", str(d / "nsmc.tsv"),
            "--test-tsv", str(d / "test.tsv"), *ARGS]


def _run(out: Path, args: list[str], *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), "--out", str(out), *args, *extra], capture_output=True,
                          text=True, cwd=REPO)


def _rows(path: Path) -> list[list[str]]:
    return [line.split("\t") for line in path.read_text(encoding="utf-8").splitlines()[1:]]


def test_welch_matches_the_formula_by_hand():
    q = _load_quality()
    a, b = [0.80, 0.82, 0.84, 0.83, 0.81], [0.78, 0.79, 0.77]
    ma, mb = sum(a) / 5, sum(b) / 3
    va = sum((x - ma) ** 2 for x in a) / 4 / 5  # sample variance over n: the squared standard error
    vb = sum((x - mb) ** 2 for x in b) / 2 / 3
    t = (ma - mb) / math.sqrt(va + vb)
    df = (va + vb) ** 2 / (va ** 2 / 4 + vb ** 2 / 2)
    from scipy import stats

    w = q.welch(a, b)
    assert w["gap_points"] == round(100 * (ma - mb), 2) == 4.0
    assert w["t"] == round(t, 3) and w["df"] == round(df, 2)
    assert w["p"] == pytest.approx(2 * stats.t.sf(abs(t), df), rel=1e-3) and w["p"] < 0.05
    # one side constant (TF-IDF): still defined; both constant: no test, said so
    assert q.welch(a, [0.7, 0.7, 0.7])["p"] is not None
    both = q.welch([0.8, 0.8], [0.7, 0.7])
    assert both["gap_points"] == 10.0 and both["t"] is None and both["p"] is None and "zero variance" in both["why_no_p"]
    assert q.welch([0.8], [0.7, 0.71])["p"] is None


def test_lr_choice_best_mean_ties_to_the_smaller():
    q = _load_quality()
    assert q.choose({1e-4: [0.70, 0.72], 3e-4: [0.74, 0.73], 1e-3: [0.60, 0.90]}) == 1e-3  # mean 0.75
    assert q.choose({1e-3: [0.70, 0.74], 3e-4: [0.72, 0.72], 1e-4: [0.60, 0.60]}) == 3e-4  # a tie: the smaller


def test_a_killed_attempt_counts_in_the_steps_seconds(tmp_path):
    """A session's end SIGKILLs the benchmark: the attempts file keeps the killed attempt's seconds (to a beat), and
    the next attempt at the step starts from them."""
    path = tmp_path / "steps" / "x.attempts.json"
    code = (f"import sys, time; sys.path.insert(0, {str(SCRIPT.parent)!r}); import quality; "
            f"quality.AttemptClock(__import__('pathlib').Path({str(path)!r}), beat_s=0.05); time.sleep(60)")
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=REPO)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not (path.exists() and
                                                  json.loads(path.read_text())["attempts"][-1]["seconds"] >= 0.3):
            time.sleep(0.05)
    finally:
        proc.kill()  # SIGKILL: no handler runs
        proc.wait()
    killed = json.loads(path.read_text())["attempts"]
    assert len(killed) == 1 and killed[0]["seconds"] >= 0.3
    q = _load_quality()
    clock = q.AttemptClock(path, beat_s=0.05)
    assert clock.earlier == [killed[0]["seconds"]]
    time.sleep(0.2)
    clock.stop()
    both = json.loads(path.read_text())["attempts"]
    assert [a["seconds"] for a in both][:1] == [killed[0]["seconds"]] and both[1]["seconds"] >= 0.2
    clock.done()
    assert not path.exists()


@pytest.mark.slow
def test_quality_end_to_end(tmp_path):
    args = _inputs(tmp_path)
    out = tmp_path / "out"

    # a budget of 0 minutes starts no step: progress, no report
    r = _run(out, args, "--budget-minutes", "0")
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    prog = json.loads((out / "progress.json").read_text())
    assert prog["done"] == [] and prog["remaining"] == STEPS
    assert not (out / "report.json").exists() and not (out / "data").exists()

    # --only data runs the data step alone
    r = _run(out, args, "--only", "data")
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert json.loads((out / "progress.json").read_text())["done"] == ["data"]
    assert not (out / "pretrain").exists() and not (out / "report.json").exists()
    d = out / "data"
    sel, dev, t100, t200 = (_rows(d / f) for f in ("selection.tsv", "dev.tsv", "train-100.tsv", "train-200.tsv"))
    assert (len(sel), len(dev), len(t100), len(t200)) == (60, 80, 100, 200)
    ids = {k: {r[0] for r in v} for k, v in (("sel", sel), ("dev", dev), ("train", t200))}
    assert not ids["sel"] & ids["dev"] and not ids["sel"] & ids["train"] and not ids["dev"] & ids["train"]
    assert t100 == t200[:100]  # nested: the smaller training set is the start of the larger
    # the reviews source: every --nsmc row but those whose key is a selection, dev or test row's
    from koroberta.corpus.decontaminate import decontamination_key as key

    held = {key(r[1]) for r in sel + dev + _rows(tmp_path / "test.tsv")}
    nsmc = _rows(tmp_path / "nsmc.tsv")
    reviews = _rows(d / "reviews.tsv")
    assert reviews and all(len(r) == 2 for r in reviews)  # id and text: no labels
    assert {r[0] for r in reviews} == {r[0] for r in nsmc if key(r[1]) not in held}
    excluded = [r for r in nsmc if key(r[1]) in held]
    # a planted copy (quotes, '!!') of a selection/dev row's text that is itself no evaluation row is excluded too
    assert [r for r in excluded if r[0].startswith(PLANTED) and r[0] not in ids["sel"] | ids["dev"]]
    assert [r for r in excluded if len(key(r[1])) < 20]  # short reviews, which the corpus's decontaminator skips
    data = json.loads((out / "steps" / "data.json").read_text())["result"]["reviews"]
    assert data["kept"] == len(reviews) and data["excluded_total"] == len(excluded) and data["rows_in"] == len(nsmc)

    # the whole benchmark
    r = _run(out, args)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    rep = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert json.loads((out / "progress.json").read_text())["remaining"] == []
    for s in STEPS:  # one attempt each: no earlier seconds, no attempts file left
        step = json.loads((out / "steps" / f"{s}.json").read_text())
        assert step["earlier_attempts_seconds"] == [] and step["seconds_all_attempts"] == step["seconds"]
    assert not list((out / "steps").glob("*.attempts.json"))
    arms = rep["arms"]
    assert set(arms) == {"random_init", "wiki", "wiki_reviews", "tfidf"}
    for name, arm in (("pretrained", "wiki_reviews"), ("random_init", "random_init"), ("tfidf", "tfidf")):
        m = rep["models"][name]
        assert len(m["dev_accuracy"]) == len(m["test_accuracy"]) == 2 and m["arm"] == arm
        assert m["test_accuracy"] == arms[arm]["settings"]["200"]["test_accuracy"]
    for arm in ("random_init", "wiki", "wiki_reviews"):
        sel_acc = {float(lr): v for lr, v in arms[arm]["lr_selection"].items()}
        assert sorted(sel_acc) == [1e-3, 3e-3] and all(len(v) == 1 for v in sel_acc.values())
        best = max(sum(v) / len(v) for v in sel_acc.values())
        assert arms[arm]["chosen_lr"] == min(lr for lr, v in sel_acc.items() if sum(v) / len(v) == best)
        for lr, v in sel_acc.items():  # recorded from the harness's runs, scored on the selection rows
            m = json.loads((out / "select" / arm / f"lr-{lr:g}" / "seed-42" / "metrics.json").read_text())
            assert m["runs"][0]["dev"]["accuracy"] == v[0] and m["examples"] == {"train": 200, "dev": 60}
        for rows in ("100", "200"):
            s = arms[arm]["settings"][rows]
            assert s["lr"] == arms[arm]["chosen_lr"] and s["seeds"] == [42, 43]
            for i, seed in enumerate(s["seeds"]):
                m = json.loads((out / "finetune" / arm / rows / f"seed-{seed}" / "metrics.json").read_text())
                assert m["runs"][0]["dev"]["accuracy"] == s["dev_accuracy"][i]
                assert m["examples"] == {"train": int(rows), "dev": 80, "test": 50}
    c = {(x["rows"], x["split"], x["a"], x["b"]): x for x in rep["comparisons"]}
    assert len(c) == 2 * 2 * 4  # per size and split: the four comparisons
    assert c[(200, "dev", "wiki", "random_init")]["gap_points"] == round(
        100 * (arms["wiki"]["settings"]["200"]["dev_mean"] - arms["random_init"]["settings"]["200"]["dev_mean"]), 2)
    t = c[(200, "test", "wiki_reviews", "random_init")]
    assert rep["target"]["split"] == "test" and "pretraining run" in rep["note"]
    assert rep["target"]["200"] == {"need_points": 3.0, "gap_points": t["gap_points"], "p": t["p"],
                                    "met": t["gap_points"] >= 3.0 and t["p"] is not None and t["p"] < 0.05}
    assert set(rep["probe"]["arms"]) == {"random_init", "wiki", "wiki_reviews"}
    assert rep["probe"]["arms"]["wiki"]["mean"]["200"]["C"] in (0.1, 1.0, 10.0)
    # TF-IDF recomputed here from the split files
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    vec = TfidfVectorizer(analyzer="char_wb", ngram_range=(1, 4), min_df=2, sublinear_tf=True)
    clf = LogisticRegression(max_iter=2000).fit(vec.fit_transform([r[1] for r in t200]), [r[2] for r in t200])
    acc = sum(p == r[2] for p, r in zip(clf.predict(vec.transform([r[1] for r in dev])), dev)) / len(dev)
    assert rep["models"]["tfidf"]["dev_accuracy"] == [round(acc, 4)] * 2
    # each arm pretrained on its own sources, with the evaluation files decontaminated out
    for arm, sources in (("wiki", ["kowiki"]), ("wiki_reviews", ["kowiki", "reviews"])):
        cfg = yaml.safe_load((out / "pretrain" / f"{arm}.yaml").read_text(encoding="utf-8"))
        assert [s["name"] for s in cfg["sources"]] == sources and "source" not in cfg
        assert [Path(p).name for p in cfg["decontaminate"]] == ["selection.tsv", "dev.tsv", "test.tsv"]
        assert set(rep["pretraining"][arm]["corpus"]["sources"]) == set(sources)
        assert rep["pretraining"][arm]["train"]["updates"] == 4
    # the control: the mixed arm's config and tokenizer, the pre-LN class, other weights
    import torch
    from safetensors.torch import load_file

    pre, rnd = out / "pretrain" / "wiki_reviews" / "hf", out / "random-init"
    cfg_pre, cfg_rnd = (json.loads((p / "config.json").read_text()) for p in (pre, rnd))
    assert cfg_rnd["architectures"] == cfg_pre["architectures"] == ["RobertaPreLayerNormForMaskedLM"]
    assert {k: v for k, v in cfg_pre.items() if k != "transformers_version"} == \
        {k: v for k, v in cfg_rnd.items() if k != "transformers_version"}
    assert (pre / "tokenizer.json").read_bytes() == (rnd / "tokenizer.json").read_bytes()
    w_pre, w_rnd = load_file(pre / "model.safetensors"), load_file(rnd / "model.safetensors")
    assert set(w_pre) == set(w_rnd)
    k = next(k for k in w_pre if k.endswith("word_embeddings.weight"))
    assert not torch.equal(w_pre[k], w_rnd[k])
    md = (out / "report.md").read_text(encoding="utf-8")
    assert "| wiki_reviews − random_init |" in md and "## LR selection" in md and "## Linear probe" in md

    # a second invocation reuses every step: no training, the same report
    logs = {a: (out / "pretrain" / a / "checkpoints" / "train.log").read_text() for a in ("wiki", "wiki_reviews")}
    records = {s: (out / "steps" / f"{s}.json").read_text() for s in STEPS}
    r = _run(out, args)
    assert r.returncode == 0, r.stderr[-3000:]
    assert {a: (out / "pretrain" / a / "checkpoints" / "train.log").read_text() for a in logs} == logs
    assert {s: (out / "steps" / f"{s}.json").read_text() for s in STEPS} == records
    assert json.loads((out / "report.json").read_text(encoding="utf-8"))["models"] == rep["models"]

    # a changed input of a step reruns it, and what depends on it is no longer done: the report goes
    r = _run(out, [*args, "--selection-rows", "61"], "--only", "data")
    assert r.returncode == 0, r.stderr[-3000:]
    prog = json.loads((out / "progress.json").read_text())
    assert prog["done"] == ["data"] and prog["remaining"] == STEPS[1:] and not (out / "report.json").exists()
    assert len(_rows(out / "data" / "selection.tsv")) == 61


def test_quality_bad_input(tmp_path):
    base = ["--shard", str(FIXTURES / "kowiki-docs.txt")]  # a clean clone has no ../shared
    for extra, says in (
            (["--nsmc", str(tmp_path / "missing.tsv")], "missing.tsv: not found"),
            (["--nsmc", str(FIXTURES / "nsmc-tiny.tsv"), "--train-rows", "100,200", "--seeds", "2"],
             "one positive count per --train-rows size"),
            (["--nsmc", str(FIXTURES / "nsmc-tiny.tsv"), "--main-rows", "300"], "--main-rows 300 is not one of"),
            (["--nsmc", str(FIXTURES / "nsmc-tiny.tsv")], "fewer than --selection-rows + --dev-rows"),
            (["--nsmc", str(FIXTURES / "nsmc-tiny.tsv"), "--train-rows", "100", "--seeds", "1", "--main-rows", "100",
              "--selection-rows", "50", "--dev-rows", "50", "--only", "nothing-*"], "--only nothing-*: no such step")):
        r = _run(tmp_path / "o", [*base, *extra])
        assert r.returncode != 0 and says in r.stderr and "Traceback" not in r.stderr, r.stderr
        assert not (tmp_path / "o").exists()
    # a step whose inputs are not done yet, under --only: one line, nothing run
    args = [*base, "--nsmc", str(FIXTURES / "nsmc-tiny.tsv"), "--train-rows", "100", "--seeds", "1", "--main-rows",
            "100", "--selection-rows", "50", "--dev-rows", "50"]
    r = _run(tmp_path / "o", args, "--only", "select-wiki")
    assert r.returncode != 0 and "step select-wiki needs step(s) data, pretrain-wiki" in r.stderr
    assert "Traceback" not in r.stderr and not (tmp_path / "o" / "data").exists()


def test_quality_reads_nsmc_before_pretraining(tmp_path):
    bad = tmp_path / "bad.tsv"
    bad.write_text("id\tdocument\tlabel\n1\t좋다\t1\textra\n", encoding="utf-8")
    r = subprocess.run([sys.executable, str(SCRIPT), "--out", str(tmp_path / "o"), "--nsmc", str(bad),
                        "--shard", str(FIXTURES / "kowiki-docs.txt")], capture_output=True, text=True, cwd=REPO)
    assert r.returncode != 0 and f"{bad}: line 2:" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "o").exists()  # nothing pretrained, nothing written
