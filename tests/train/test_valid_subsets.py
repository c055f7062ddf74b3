"""A multi-source data-bin's per-source validation subsets (valid_<name>): preflight checks them like valid, the
command validates on them (valid first), and -- in a real fairseq run -- the log reader, the manifest and
`train report` give each subset's loss exactly as fairseq logged it, while the weights and the mixed valid series
are those of the same run without subsets (which is why the subset list is not part of the run's identity)."""

from __future__ import annotations

import io
import json
import re
import shutil
from contextlib import redirect_stdout
from pathlib import Path

import numpy as np
import pytest

from koroberta.artifacts import StageOutput, read_manifest
from koroberta.errors import InputError
from koroberta.train.command import fairseq_args
from koroberta.train.config import TrainConfig
from koroberta.train.preflight import preflight

from train_tiny import TINY

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

CPU = (False, 0, "cpu")
SUBSETS = ["valid", "valid_news", "valid_wiki"]


def _text(docs: list[list[str]]) -> str:
    return "\n\n".join("\n".join(d) for d in docs) + "\n"  # the corpus split's format (as tiny_split writes it)


@pytest.fixture(scope="module")
def multi_databin(tmp_path_factory, kowiki_docs, tiny_vocab, tiny_split, tiny_databin) -> Path:
    """tiny_split's very documents as a two-source corpus split (valid documents alternate between wiki and news),
    through `koroberta preprocess`: train/valid/test are tiny_databin's bytes, plus valid_news and valid_wiki."""
    from koroberta.preprocess.build import preprocess
    from koroberta.preprocess.config import PreprocessConfig

    train, valid, test = kowiki_docs[:70], kowiki_docs[70:76], kowiki_docs[76:]
    sources = ["wiki", "news"]
    d = tmp_path_factory.mktemp("multi") / "split"
    with StageOutput(d, stage="corpus.split", config={}, inputs={}) as st:
        for name, docs in (("train", train), ("valid", valid), ("test", test)):
            (st.tmp / f"{name}.txt").write_text(_text(docs), encoding="utf-8")
        for k, s in enumerate(sources):
            (st.tmp / f"valid_{s}.txt").write_text(_text(valid[k::2]), encoding="utf-8")
        (st.tmp / "hf").mkdir()
        pq.write_table(pa.table({"id": [str(k) for k in range(len(train))],
                                 "source": [sources[k % 2] for k in range(len(train))]}),
                       st.tmp / "hf" / "train.parquet")
        st.stats["sources"] = {s: {"weight": 1.0} for s in sources}
    out = preprocess(PreprocessConfig(), d, tiny_vocab, tmp_path_factory.mktemp("db") / "data-bin")
    for name in ("train.bin", "train.idx", "valid.bin", "valid.idx", "dict.txt"):
        assert (out / name).read_bytes() == (tiny_databin / name).read_bytes(), name  # the same data as `trained`
    assert read_manifest(out)["stats"]["valid_subsets"] == SUBSETS
    return out


def _logged(log_text: str, subset: str) -> dict[int, float]:
    """{update: loss} of every record fairseq's json progress bar printed for ``subset`` (read here directly)."""
    out = {}
    for line in log_text.splitlines():
        m = re.search(r"\| " + re.escape(subset) + r" \| (\{.*\})$", line)
        if m:
            rec = json.loads(m.group(1))
            out[int(rec[f"{subset}_num_updates"])] = float(rec[f"{subset}_loss"])
    return out


def test_real_run_reports_a_loss_per_subset(multi_databin, trained, tmp_path, capsys):
    import torch

    from koroberta.train.cli import main as cli_main
    from koroberta.train.launch import train
    from koroberta.train.logs import parse_log

    cfg, save0, ckpt0, _ = trained
    save = tmp_path / "ckpt"
    buf = io.StringIO()
    with redirect_stdout(buf):
        ckpt = train(cfg, multi_databin, save)
    out = buf.getvalue()
    assert "--valid-subset valid,valid_news,valid_wiki" in out
    assert "then a loss per source on valid_news, valid_wiki" in out
    assert re.search(r"^valid_news update +30/30 +loss [\d.]+ bits$", out, re.M)  # the live terminal line

    text = (save / "train.log").read_text(encoding="utf-8")
    tlog = parse_log(save)
    logged = {s: _logged(text, s) for s in SUBSETS}
    for s in SUBSETS:
        assert sorted(logged[s]) == [10, 20, 30], s  # validated every 10 updates, each subset each time
        xs, ys = tlog.series(s, "loss")
        assert dict(zip(xs, ys)) == logged[s], s
    assert sorted(tlog.subsets) == SUBSETS[1:]
    assert logged["valid_news"] != logged["valid_wiki"]  # two different sets of documents
    want = {s: {"final_loss": logged[s][30], "best_loss": min(logged[s].values())} for s in SUBSETS}
    assert read_manifest(save)["stats"]["valid_subsets"] == want
    # the best checkpoint follows valid: fairseq's own best_loss is valid's lowest
    assert tlog.valid[30]["best_loss"] == want["valid"]["best_loss"]

    assert cli_main(["report", str(save), "--out", str(tmp_path / "rep")]) == 0
    rep = capsys.readouterr().out
    r = json.loads(rep.strip().splitlines()[-1])
    assert r["valid_subsets"] == want
    line = next(l for l in rep.splitlines() if l.startswith("valid loss per subset"))
    assert f"valid_news {want['valid_news']['final_loss']} / {want['valid_news']['best_loss']}" in line
    assert (tmp_path / "rep" / "loss.png").stat().st_size > 5000

    # validating on more subsets changed nothing: the same weights and the same mixed valid series as `trained`
    a = torch.load(ckpt0, map_location="cpu", weights_only=False)["model"]
    b = torch.load(ckpt, map_location="cpu", weights_only=False)["model"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert parse_log(save0).series("valid", "loss") == tlog.series("valid", "loss")
    assert "valid_subsets" not in read_manifest(save0)["stats"]  # a single-source run's stats keep their keys


# -- preflight and the command, without training ---------------------------------------------------------------------
@pytest.fixture()
def databin(multi_databin, tmp_path) -> Path:
    d = tmp_path / "data-bin"
    shutil.copytree(multi_databin, d)
    return d


def _relisted(databin: Path, out: Path, **stats) -> Path:
    """``databin``'s files under a new manifest whose stats are updated with ``stats``."""
    old = read_manifest(databin)["stats"]
    with StageOutput(out, stage="preprocess", config={}, inputs={}) as st:
        for f in databin.iterdir():
            if f.is_file() and f.name not in ("manifest.json", "_COMPLETE"):
                shutil.copy(f, st.tmp / f.name)
        st.stats.update({**old, **stats})
    return out


def test_preflight_finds_the_subsets_and_the_command_names_them(databin, tmp_path):
    cfg = TrainConfig(**TINY)
    pf = preflight(cfg, databin, tmp_path / "c", cuda_info=CPU)
    assert pf.valid_subsets == SUBSETS
    args = fairseq_args(cfg, databin, tmp_path / "c", cuda=False, valid_subsets=pf.valid_subsets)
    assert args[args.index("--valid-subset") + 1] == "valid,valid_news,valid_wiki"
    assert "--valid-subset" not in fairseq_args(cfg, databin, tmp_path / "c", cuda=False)  # one subset: as before
    own = cfg.replace(extra_args=["--valid-subset", "valid_news"])  # the user's own choice is left alone
    assert fairseq_args(own, databin, "c", cuda=False, valid_subsets=SUBSETS).count("--valid-subset") == 1
    # without a manifest (a copied data-bin) the subsets are the valid_*.idx files there
    (databin / "manifest.json").unlink()
    (databin / "_COMPLETE").unlink()
    for ext in ("bin", "idx"):
        (databin / f"valid_wiki.{ext}").unlink()
    assert preflight(cfg, databin, tmp_path / "c", cuda_info=CPU).valid_subsets == ["valid", "valid_news"]


def test_preflight_checks_every_listed_subset(databin, tmp_path):
    cfg = TrainConfig(**TINY)
    (databin / "valid_wiki.bin").unlink()  # listed in the manifest's outputs too
    with pytest.raises(InputError, match="valid_wiki.bin is missing"):
        preflight(cfg, databin, tmp_path / "c", cuda_info=CPU)
    # listed as a subset, but no such files at all
    out = _relisted(databin, tmp_path / "listed", valid_subsets=["valid", "valid_news", "valid_gone"])
    with pytest.raises(InputError, match=r"valid_gone.idx: missing"):
        preflight(cfg, out, tmp_path / "c", cuda_info=CPU)
    # a subset's largest id is checked against the dictionary like valid's
    n_rows = len((databin / "dict.txt").read_text(encoding="utf-8").splitlines())
    stats = read_manifest(out)["stats"]
    out = _relisted(databin, tmp_path / "ids", valid_subsets=["valid", "valid_news"],
                    max_id={**stats["max_id"], "valid_news": 4 + n_rows})
    with pytest.raises(InputError, match=r"valid_news.bin: holds token id \d+, the <mask> id"):
        preflight(cfg, out, tmp_path / "c", cuda_info=CPU)


def test_preflight_refuses_an_empty_or_unnamable_subset(databin, tmp_path):
    from koroberta.databin import write_mmap_index

    cfg = TrainConfig(**TINY)
    (databin / "manifest.json").unlink()
    (databin / "_COMPLETE").unlink()
    (databin / "valid_x.bin").write_bytes(b"")
    write_mmap_index(databin / "valid_x.idx", np.zeros(0, dtype=np.int64), np.uint16)
    with pytest.raises(InputError, match="valid_x.idx: validation subset is empty"):
        preflight(cfg, databin, tmp_path / "c", cuda_info=CPU)
    for ext in ("bin", "idx"):
        (databin / f"valid_x.{ext}").unlink()
        shutil.copy(databin / f"valid.{ext}", databin / f"valid_a,b.{ext}")
    with pytest.raises(InputError, match=r"subset 'valid_a,b' holds whitespace, ','"):
        preflight(cfg, databin, tmp_path / "c", cuda_info=CPU)
