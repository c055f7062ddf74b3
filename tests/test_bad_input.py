"""Bad input gives a one-line error: each case runs the real CLI (``python -m koroberta ...``) as a user would.

Every case asserts: a non-zero exit code; stderr is exactly one line ``error: <file or option>: ... — fix: ...``
naming the offending file (or option) and a fix; no traceback; and nothing that looks like a finished output (no
``_COMPLETE`` marker, no final output directory). The finetune cases live with the finetune tests.
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from cli_errors import after_needs, error_line, main_error

REPO = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
       "TRANSFORMERS_NO_ADVISORY_WARNINGS": "1", "TOKENIZERS_PARALLELISM": "false"}
IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0
TEXT = "\n".join(f"{i}번째 문장은 시험용으로 충분히 긴 한국어 문장이다." for i in range(40)) + "\n"


def koroberta(*args: object, prefix: tuple[str, ...] = (), timeout: int = 300) -> subprocess.CompletedProcess:
    cmd = [*prefix, sys.executable, "-m", "koroberta", *map(str, args)]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, env=ENV, timeout=timeout)


def one_line_error(r: subprocess.CompletedProcess, *needles: str) -> str:
    """The checks every case shares; returns the error line."""
    assert r.returncode != 0, (r.stdout[-500:], r.stderr[-2000:])
    return error_line(r.stderr, *needles)


def error_after_needs(r: subprocess.CompletedProcess, stage: str, *needles: str, warned: bool | None = None) -> str:
    """:func:`one_line_error` for an error found while the stage works: after the stage's needs line (and the
    low-disk warning, ``warned``; see :func:`cli_errors.after_needs`)."""
    assert r.returncode != 0, (r.stdout[-500:], r.stderr[-2000:])
    return error_line(after_needs(r.stderr, stage, warned=warned), *needles)


def nothing_complete(*dirs: Path) -> None:
    for d in dirs:
        assert not d.exists() or not list(d.rglob("_COMPLETE")), d


@pytest.fixture
def text_file(tmp_path) -> Path:
    p = tmp_path / "text.txt"
    p.write_text(TEXT, encoding="utf-8")
    return p


# -- 1. an output location that cannot be written --------------------------------------------------------------------
def _ro_prefix(target: Path) -> tuple[str, ...]:
    """Run the command in a private mount namespace where ``target`` is a read-only bind mount of itself: writes are
    refused with EROFS even for root (chmod does not stop root). Outside the command, ``target`` is unchanged."""
    script = 'mount --bind "$0" "$0" && mount -o remount,bind,ro "$0" && exec "$@"'
    return ("unshare", "--mount", "sh", "-c", script, str(target))


@pytest.fixture
def ro_dir(tmp_path) -> tuple[Path, tuple[str, ...]]:
    d = tmp_path / "readonly"
    d.mkdir()
    prefix = _ro_prefix(d)
    probe = subprocess.run([*prefix, "sh", "-c", f'! touch "{d}/probe" 2>/dev/null'], capture_output=True, text=True)
    if shutil.which("unshare") is None or probe.returncode != 0:
        pytest.skip(f"cannot make a read-only bind mount here (needs unshare + mount): {probe.stderr.strip()[:200]}")
    return d, prefix


def test_corpus_into_read_only_mount(ro_dir, text_file):
    d, prefix = ro_dir
    r = koroberta("corpus", "build", text_file, d / "corpus", prefix=prefix)
    one_line_error(r, f"{d / 'corpus'}", "read-only file system", "writable file system")
    assert not any(d.iterdir())


def test_spm_into_read_only_mount(ro_dir, text_file):
    d, prefix = ro_dir
    r = koroberta("spm", "train", "--train-text", text_file, "--out", d / "spm", "--vocab-size", "100",
                  prefix=prefix)
    one_line_error(r, f"{d / 'spm'}", "read-only file system")
    assert not any(d.iterdir())


def test_corpus_onto_a_full_disk(tmp_path):
    """A 64 KiB tmpfs (private mount namespace) fills up while extract writes: the failed write() carries no file
    name, yet the error names the output, and the partial output is gone."""
    d = tmp_path / "small-disk"
    d.mkdir()
    # after the command, list what it left on the small disk (to stdout), before the namespace and its tmpfs go away
    script = 'mount -t tmpfs -o size=64k tmpfs "$0" || exit 99; "$@"; rc=$?; echo LEFT; find "$0" -mindepth 1; exit $rc'
    prefix = ("unshare", "--mount", "sh", "-c", script, str(d))
    probe = subprocess.run([*prefix, "true"], capture_output=True, text=True) if shutil.which("unshare") else None
    if probe is None or probe.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here (needs unshare + mount): {probe and probe.stderr.strip()[:200]}")
    src = tmp_path / "big.txt"
    para = " ".join(f"{i}번째 낱말" for i in range(60))
    src.write_text("\n\n".join(f"{k}: {para}" for k in range(200)) + "\n", encoding="utf-8")  # ~250 KB of text
    r = koroberta("corpus", "build", src, d / "corpus", prefix=prefix)
    # the needs line said it first: ~1 MB at the peak, more than the 64 KiB free
    error_after_needs(r, "corpus", f"{d / 'corpus'}", "no space left", "free disk space", warned=True)
    left = r.stdout.split("LEFT\n", 1)[1].split()
    assert left == [str(d / "corpus")], left  # an empty stage directory: no partial extract, no .tmp, no marker


def test_corpus_under_a_regular_file(tmp_path, text_file):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file, not a directory\n")
    r = koroberta("corpus", "build", text_file, blocker / "corpus")
    one_line_error(r, f"{blocker / 'corpus'}", "regular file", "parent components are all directories")
    assert blocker.read_text() == "a file, not a directory\n"


def test_spm_under_a_regular_file(tmp_path, text_file):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x\n")
    r = koroberta("spm", "train", "--train-text", text_file, "--out", blocker / "spm", "--vocab-size", "100")
    one_line_error(r, f"{blocker / 'spm'}", "regular file")


@pytest.mark.skipif(IS_ROOT, reason="running as root: chmod does not stop root from writing (the read-only mount "
                                    "and regular-file cases cover root)")
@pytest.mark.parametrize("stage", ["corpus", "spm"])
def test_chmod_read_only_directory(tmp_path, text_file, stage):
    d = tmp_path / "locked"
    d.mkdir()
    d.chmod(0o555)
    try:
        if stage == "corpus":
            r = koroberta("corpus", "build", text_file, d / "out")
        else:
            r = koroberta("spm", "train", "--train-text", text_file, "--out", d / "out", "--vocab-size", "100")
        one_line_error(r, str(d / "out"), "permission denied")
        assert not any(d.iterdir())
    finally:
        d.chmod(0o755)


# -- 2. a data-bin whose .idx/.bin do not agree (no manifest) --------------------------------------------------------
def _data_bin(root: Path) -> Path:
    """A hand-made data-bin without manifest (what a copy or an old fairseq-preprocess run looks like)."""
    from koroberta.databin import write_mmap_index

    d = root / "data-bin"
    d.mkdir()
    (d / "dict.txt").write_text("".join(f"▁w{i} {100 - i}\n" for i in range(20)), encoding="utf-8")
    rng = np.random.default_rng(0)
    for split, n in (("train", 200), ("valid", 20)):
        sizes = rng.integers(2, 30, size=n)
        ids = rng.integers(4, 24, size=int(sizes.sum())).astype(np.uint16)
        (d / f"{split}.bin").write_bytes(ids.tobytes())
        write_mmap_index(d / f"{split}.idx", sizes, np.uint16)
    return d


def _train_dry_run(data_bin: Path, save: Path) -> subprocess.CompletedProcess:
    return koroberta("train", data_bin, save, "--dry-run", "--device", "cpu", "--tokens-per-sample", "64",
                     "--max-positions", "64", "--sample-break-mode", "none", "--min-free-disk-gb", "0")


def test_hand_made_data_bin_passes_preflight(tmp_path):
    """The control for the three cases below: the intact data-bin is accepted."""
    r = _train_dry_run(_data_bin(tmp_path), tmp_path / "ckpt")
    assert r.returncode == 0, r.stderr[-2000:]


def test_data_bin_truncated_idx(tmp_path):
    d = _data_bin(tmp_path)
    idx = d / "train.idx"
    idx.write_bytes(idx.read_bytes()[:-40])  # the sizes are whole, the pointers cut off: np.fromfile alone passes
    r = _train_dry_run(d, tmp_path / "ckpt")
    one_line_error(r, str(idx), "truncated", "koroberta preprocess")
    nothing_complete(tmp_path / "ckpt")


def test_data_bin_truncated_bin(tmp_path):
    d = _data_bin(tmp_path)
    b = d / "valid.bin"
    b.write_bytes(b.read_bytes()[:-7])
    r = _train_dry_run(d, tmp_path / "ckpt")
    one_line_error(r, str(b), "truncated", "koroberta preprocess")
    nothing_complete(tmp_path / "ckpt")


def test_data_bin_idx_bad_header(tmp_path):
    d = _data_bin(tmp_path)
    idx = d / "valid.idx"
    raw = bytearray(idx.read_bytes())
    raw[9:17] = struct.pack("<Q", 7)  # an index version fairseq 0.12 does not read
    idx.write_bytes(bytes(raw))
    r = _train_dry_run(d, tmp_path / "ckpt")
    one_line_error(r, str(idx), "version 7", "koroberta preprocess")


# -- 3. a file that is not a fairseq checkpoint -----------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["random", "empty", "other-torch-file"])
def test_convert_not_a_checkpoint(tmp_path, kind):
    ck = tmp_path / "checkpoint_last.pt"
    if kind == "random":
        ck.write_bytes(np.random.default_rng(1).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    elif kind == "empty":
        ck.write_bytes(b"")
    else:  # a real torch.save file, but of something else (pickles a class a checkpoint never holds)
        import datetime

        import torch

        torch.save({"when": datetime.date(2020, 1, 1)}, ck)
    vocab = tmp_path / "vocab"
    vocab.mkdir()
    r = koroberta("convert", ck, tmp_path / "hf", "--vocab-dir", vocab, "--no-parity")
    line = one_line_error(r, str(ck), "not a fairseq checkpoint", "checkpoint_*.pt")
    assert "weights only" not in line.lower() and "weights_only" not in line
    assert not (tmp_path / "hf").exists()


# -- 4./5./6. config values: where they came from ---------------------------------------------------------------------
def test_unknown_yaml_key_names_the_file(tmp_path, text_file):
    cfg = tmp_path / "my.yaml"
    cfg.write_text("spm:\n  vocab_sise: 8000\n")
    r = koroberta("spm", "train", "--config", cfg, "--train-text", text_file, "--out", tmp_path / "spm")
    line = one_line_error(r, f"error: {cfg}: unknown key(s) vocab_sise", "rename vocab_sise to vocab_size")
    assert "command line" not in line
    assert not (tmp_path / "spm").exists()


def test_unknown_yaml_key_names_the_file_train(tmp_path):
    cfg = tmp_path / "train.yaml"
    cfg.write_text("train:\n  max_updates: 10\n")
    r = koroberta("train", cfg, tmp_path / "db", tmp_path / "ckpt", "--dry-run")
    line = one_line_error(r, f"error: {cfg}: unknown key(s) max_updates", "rename max_updates to max_update")
    assert "command line" not in line


def test_bad_cli_override_names_the_option_not_the_yaml(tmp_path):
    cfg = tmp_path / "train.yaml"
    cfg.write_text("train:\n  lr: 0.0005\n  warmup_updates: 10\n  max_update: 100\n")
    r = koroberta("train", cfg, _data_bin(tmp_path), tmp_path / "ckpt", "--dry-run", "--lr", "-1")
    line = one_line_error(r, "error: command-line option --lr -1.0:", "correct --lr on the command line")
    assert not line.startswith(f"error: {cfg}")
    nothing_complete(tmp_path / "ckpt")


def test_bad_cli_override_names_the_option_spm(tmp_path, text_file):
    cfg = tmp_path / "spm.yaml"
    cfg.write_text("spm:\n  vocab_size: 500\n")
    r = koroberta("spm", "train", "--config", cfg, "--train-text", text_file, "--out", tmp_path / "spm",
                  "--character-coverage", "1.5")
    one_line_error(r, "error: command-line option --character-coverage 1.5:", "correct --character-coverage",
                   f"the value in {cfg}")
    assert not (tmp_path / "spm").exists()


def test_unknown_key_in_a_pipeline_yaml_names_the_file_once(tmp_path):
    cfg = tmp_path / "run.yaml"
    cfg.write_text("sourc: dump.xml.bz2\n")
    r = koroberta("run", cfg)
    line = one_line_error(r, f"error: {cfg}: top level: unknown key(s) sourc", "rename sourc to source")
    assert line.count(str(cfg)) == 1


def test_bad_yaml_value_still_names_the_yaml(tmp_path):
    cfg = tmp_path / "train.yaml"
    cfg.write_text("train:\n  lr: -0.5\n")
    r = koroberta("train", cfg, _data_bin(tmp_path), tmp_path / "ckpt", "--dry-run", "--max-update", "50",
                  "--warmup-updates", "5")
    one_line_error(r, f"error: {cfg}: ", "lr", "correct the `train:` section of")


def test_yaml_1_1_exponent_float_is_accepted(tmp_path):
    """`lr: 1e-3` is a *string* to PyYAML (YAML 1.1 wants a dot); a float field takes it, exactly."""
    import yaml

    cfg = tmp_path / "train.yaml"
    cfg.write_text("train:\n  lr: 1e-3\n  end_learning_rate: 5E-6\n  warmup_updates: 10\n  max_update: 100\n")
    assert yaml.safe_load(cfg.read_text())["train"]["lr"] == "1e-3"  # the premise
    r = koroberta("train", cfg, _data_bin(tmp_path), tmp_path / "ckpt", "--dry-run", "--device", "cpu",
                  "--tokens-per-sample", "64", "--max-positions", "64", "--sample-break-mode", "none",
                  "--min-free-disk-gb", "0")
    assert r.returncode == 0, r.stderr[-2000:]
    assert "--lr 0.001" in r.stdout and "--end-learning-rate 5e-06" in r.stdout, r.stdout[-2000:]


def test_yaml_string_that_is_not_a_number_is_refused(tmp_path):
    cfg = tmp_path / "train.yaml"
    cfg.write_text("train:\n  lr: 1e-3x\n")
    r = koroberta("train", cfg, tmp_path / "db", tmp_path / "ckpt", "--dry-run")
    one_line_error(r, f"error: {cfg}: ", "must be a number, got '1e-3x'")


# -- 7. convert's parity check on a line with a literal special token -------------------------------------------------
def test_convert_parity_names_the_literal_special_token(tiny_checkpoint, tiny_vocab, tmp_path):
    text = tmp_path / "valid.txt"
    text.write_text("대한민국의 수도는 서울이다.\n이 줄에는 <mask> 가 그대로 남아 있다.\n", encoding="utf-8")
    r = koroberta("convert", tiny_checkpoint, tmp_path / "hf", "--vocab-dir", tiny_vocab, "--parity-text", text,
                  "--parity-sentences", "1", timeout=600)
    line = error_after_needs(r, "convert", f"error: {text}:", "line 2 holds a literal special token '<mask>'",
                             "rebuild the corpus with the current cleaner", warned=False)
    assert "inconsistent" not in line and "report this" not in line  # no longer blames spm/dict
    assert r.returncode == 3  # ParityError
    assert not (tmp_path / "hf").exists()


# -- 8. disk full, ids past the dictionary (issue 20, section 4) ------------------------------------------------------
def _small_disk(tmp_path: Path, size: str) -> tuple[Path, tuple[str, ...]]:
    """A ``size`` tmpfs mounted on ``tmp_path/small-disk`` in a private mount namespace for the command only; after
    the command the prefix prints ``LEFT`` and what is left on the small disk (before the tmpfs goes away)."""
    d = tmp_path / "small-disk"
    d.mkdir()
    script = (f'mount -t tmpfs -o size={size} tmpfs "$0" || exit 99; "$@"; rc=$?; echo LEFT; find "$0" -mindepth 1; '
              'exit $rc')
    prefix = ("unshare", "--mount", "sh", "-c", script, str(d))
    probe = subprocess.run([*prefix, "true"], capture_output=True, text=True) if shutil.which("unshare") else None
    if probe is None or probe.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here (needs unshare + mount): {probe and probe.stderr.strip()[:200]}")
    return d, prefix


def test_convert_onto_a_full_disk(tiny_checkpoint, tiny_vocab, tmp_path):
    """tokenizer.json (~440 KB) and spm.model (~270 KB) fit on the 1 MiB disk, model.safetensors (~830 KB) does not:
    safetensors reports ENOSPC as its own exception type (SafetensorError), which still becomes the one-line
    output error, and nothing is left on the disk."""
    d, prefix = _small_disk(tmp_path, "1m")
    r = koroberta("convert", tiny_checkpoint, d / "hf", "--vocab-dir", tiny_vocab, "--no-parity", prefix=prefix,
                  timeout=600)
    error_after_needs(r, "convert", f"{d / 'hf'}", "no space left", "free disk space", warned=True)
    left = r.stdout.split("LEFT\n", 1)[1].split()
    assert left == [], left  # no partial export, no .tmp, no marker


def test_tokenizer_save_onto_a_full_disk_is_an_os_error(tiny_vocab, tmp_path):
    """tokenizers reports a failed write as a bare Exception ("... (os error 28)"): convert re-raises it as the
    OSError StageOutput maps to the one-line error. /dev/full refuses every write with ENOSPC, in-process."""
    import errno

    from koroberta.convert.export import export_tokenizer
    from koroberta.convert.vocab import resolve_vocab
    from koroberta.errors import rust_write_errors
    from koroberta.layout import read_dict_symbols

    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full here")
    ev = resolve_vocab(tiny_vocab, len(read_dict_symbols(tiny_vocab / "dict.txt")) + 5)
    (tmp_path / "tokenizer.json").symlink_to("/dev/full")
    with pytest.raises(Exception) as raw:  # the premise: not an OSError on its own
        export_tokenizer(ev, tmp_path, 64)
    assert not isinstance(raw.value, OSError) and "(os error 28)" in str(raw.value), repr(raw.value)
    with pytest.raises(OSError) as e, rust_write_errors():
        export_tokenizer(ev, tmp_path, 64)
    assert e.value.errno == errno.ENOSPC


def test_data_bin_with_ids_past_its_dict(tmp_path):
    """A same-size corrupted train.bin (no manifest): ids past the dictionary, which fairseq only finds with an
    IndexError in the embedding once training runs."""
    d = _data_bin(tmp_path)
    b = d / "train.bin"
    raw = bytearray(b.read_bytes())
    raw[100:104] = np.array([40000, 41000], dtype=np.uint16).tobytes()
    b.write_bytes(bytes(raw))
    r = _train_dry_run(d, tmp_path / "ckpt")
    one_line_error(r, f"error: {b}: holds token id 41000, past the end of the dictionary", "25 ids",
                   "koroberta preprocess run")
    nothing_complete(tmp_path / "ckpt")


def test_data_bin_dict_smaller_than_its_ids(tmp_path):
    """A data-bin without manifest whose dict.txt lacks the rows of its largest ids: the largest becomes the id
    masked_lm gives <mask> (fairseq: "AssertionError: Dataset contains mask_idx")."""
    d = _data_bin(tmp_path)
    rows = (d / "dict.txt").read_text(encoding="utf-8").splitlines(keepends=True)
    (d / "dict.txt").write_text("".join(rows[:19]), encoding="utf-8")  # ids 4..23 in the .bin: 23 is now <mask>
    r = _train_dry_run(d, tmp_path / "ckpt")
    one_line_error(r, f"error: {d / 'train.bin'}: holds token id 23, the <mask> id", "another (larger) dict.txt")
    nothing_complete(tmp_path / "ckpt")


def test_data_bin_bin_edited_after_preprocess(tmp_path):
    """Same size, other bytes, in a data-bin *with* a manifest: the manifest's hashes (and recorded ids) no longer
    describe train.bin, which is named."""
    from koroberta.artifacts import StageOutput

    src = _data_bin(tmp_path)
    d = tmp_path / "with-manifest"
    with StageOutput(d, stage="preprocess", config={}, inputs={}) as st:
        for f in src.iterdir():
            shutil.copy(f, st.tmp / f.name)
        st.stats["max_id"] = {"train": 23, "valid": 23}
    with open(d / "train.bin", "r+b") as f:
        f.write(np.array([40000], dtype=np.uint16).tobytes())
    r = _train_dry_run(d, tmp_path / "ckpt")
    one_line_error(r, f"error: {d / 'train.bin'}: content differs from the sha256 in the data-bin's manifest",
                   "rebuild the data-bin")
    nothing_complete(tmp_path / "ckpt")


# -- issue 20 §5: messages that must not send the user the wrong way (in-process: no interpreter start per case) ------
def test_invalid_option_is_blamed_not_the_max_update_given_with_it(tmp_path, capsys):
    """--max-update 10 alone fails on top of the default warmup (10,000), so it used to be blamed for any other
    invalid option given with it. The check that failed names its field: only that option is blamed."""
    args = ["train", tmp_path / "db", tmp_path / "ckpt", "--dry-run", "--max-update", "10", "--warmup-updates", "5"]
    line = main_error(capsys, [*args, "--mask-prob", "2"], "error: command-line option --mask-prob 2.0:",
                       "mask_prob must be in (0, 1)", "fix: correct --mask-prob on the command line")
    assert "--max-update" not in line
    line = main_error(capsys, [*args, "--attention-dropout", "1.5"], "command-line option --attention-dropout 1.5:",
                       "correct --attention-dropout")
    assert "--max-update" not in line
    # the cross-field check names both sides and where each came from: here the default
    main_error(capsys, ["train", tmp_path / "db", tmp_path / "ckpt", "--dry-run", "--max-update", "10"],
                "command-line option --max-update 10:", "(warmup_updates=10000 is the default)",
                "fix: correct --max-update on the command line, or pass --warmup-updates too")


def test_cross_field_check_names_the_yaml_side(tmp_path, capsys):
    cfg = tmp_path / "train.yaml"
    cfg.write_text("train:\n  warmup_updates: 100\n  lr: 0.001\n")
    main_error(capsys, ["train", cfg, tmp_path / "db", tmp_path / "ckpt", "--dry-run", "--max-update", "50"],
                "error: command-line option --max-update 50:", f"(warmup_updates=100 from {cfg})",
                f"or change warmup_updates in the `train:` section of {cfg}")
    # an option that fails with a YAML value of a field it does not touch is not blamed: the file is
    cfg.write_text("train:\n  warmup_updates: 100\n  max_update: 50\n")
    line = main_error(capsys, ["train", cfg, tmp_path / "db", tmp_path / "ckpt", "--dry-run", "--lr", "0.01"],
                       f"error: {cfg}: train: warmup_updates=100", f"correct the `train:` section of {cfg}")
    assert "--lr" not in line


@pytest.fixture
def fake_model(tmp_path) -> Path:
    """Enough of an HF export for the eval/finetune input checks, which read the files before loading a model."""
    m = tmp_path / "hf"
    m.mkdir()
    (m / "config.json").write_text("{}")
    (m / "model.safetensors").write_bytes(b"not read by these tests")
    return m


@pytest.fixture
def posneg_tsv(tmp_path) -> Path:
    p = tmp_path / "reviews.tsv"
    p.write_text("id\tdocument\tlabel\n1\t재밌다\tpos\n2\t지루하다\tneg\n3\t최고\tpos\n", encoding="utf-8")
    return p


def test_nsmc_with_other_labels_names_the_tsv_subcommand(fake_model, posneg_tsv, tmp_path, capsys):
    """`eval nsmc` / `finetune nsmc` have no --labels: the fix names the subcommand that has, with this file's
    labels; `tsv` itself is told to pass --labels."""
    line = main_error(capsys, ["eval", "nsmc", fake_model, "--train", posneg_tsv, "--out", tmp_path / "ev"],
                       f"error: {posneg_tsv}: line 2: label 'pos' is not one of 0, 1", "NSMC labels are 0/1",
                       "`koroberta eval tsv MODEL_DIR --train FILE [--dev FILE] --labels neg pos --out DIR`")
    assert "finetune" not in line
    line = main_error(capsys, ["finetune", "nsmc", fake_model, posneg_tsv, tmp_path / "ft"],
                       f"error: {posneg_tsv}: line 2:", "`koroberta finetune tsv MODEL_DIR TRAIN_TSV OUT --labels neg "
                       "pos`", "`labels: [neg, pos]` in its finetune: section")
    assert "eval" not in line
    main_error(capsys, ["eval", "tsv", fake_model, "--train", posneg_tsv, "--out", tmp_path / "ev"],
                "pass --labels with the full label set (--labels neg pos)")
    # following the old advice ("pass --labels") on nsmc: told which subcommand has it, not argparse's usage
    main_error(capsys, ["eval", "nsmc", fake_model, "--train", posneg_tsv, "--out", tmp_path / "ev", "--labels",
                         "neg", "pos"], "error: command-line option --labels: `koroberta eval nsmc` has fixed",
                "`koroberta eval tsv MODEL_DIR")
    main_error(capsys, ["finetune", "nsmc", fake_model, posneg_tsv, tmp_path / "ft", "--labels", "neg", "pos"],
                "`koroberta finetune nsmc` has fixed", "`koroberta finetune tsv MODEL_DIR")
    assert not (tmp_path / "ev").exists() and not (tmp_path / "ft").exists()


def test_source_that_is_a_pipe_socket_or_loop(tmp_path, capsys):
    """`koroberta run` / `corpus build` / `corpus extract` with `<(bzcat dump.bz2)` (a /dev/fd/N pipe): the stage
    reads its source more than once, so it says so instead of "source not found"; likewise a socket, a device,
    a symbolic link loop. Nothing is created."""
    import socket

    fifo = tmp_path / "dump.fifo"
    os.mkfifo(fifo)
    r, w = os.pipe()  # what bash's process substitution hands over: /dev/fd/N
    try:
        for src in (fifo, f"/dev/fd/{r}"):
            for cmd in (["corpus", "build", src, tmp_path / "c"], ["corpus", "extract", src, tmp_path / "c"]):
                main_error(capsys, cmd, f"error: {src}: is a pipe (FIFO), not a file",
                            "reads its source more than once", "fix: write it to a file first: bzcat dump.bz2 > "
                            "dump.xml (or pass the .bz2 itself")
    finally:
        os.close(r)
        os.close(w)
    cfg = tmp_path / "run.yaml"
    cfg.write_text(f"source: {fifo}\nworkdir: {tmp_path / 'wd'}\n")
    main_error(capsys, ["run", cfg], f"error: {fifo}: is a pipe (FIFO)")
    (tmp_path / "a").symlink_to(tmp_path / "b")
    (tmp_path / "b").symlink_to(tmp_path / "a")
    main_error(capsys, ["corpus", "build", tmp_path / "a", tmp_path / "c"], "is a symbolic link loop")
    sock = socket.socket(socket.AF_UNIX)
    try:
        sock.bind(str(tmp_path / "s.sock"))
        main_error(capsys, ["corpus", "build", tmp_path / "s.sock", tmp_path / "c"], "is a socket, not a file")
    finally:
        sock.close()
    main_error(capsys, ["corpus", "build", "/dev/null", tmp_path / "c"], "is a character device")
    assert not (tmp_path / "c").exists() and not (tmp_path / "wd").exists()
