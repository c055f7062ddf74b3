"""Preflight catches launch mistakes before any GPU time is spent."""

import json
import shutil

import pytest

from koroberta.artifacts import StageOutput, sha256_file, write_json
from koroberta.errors import ConfigError, DependencyError, InputError, OutputError
from koroberta.train.config import TrainConfig
from koroberta.databin import read_mmap_sizes
from koroberta.train.preflight import TRAIN_STATE, preflight

TINY = dict(encoder_layers=2, encoder_embed_dim=64, encoder_ffn_embed_dim=128, encoder_attention_heads=2,
            tokens_per_sample=64, max_positions=64, sample_break_mode="none", min_free_disk_gb=0.0)
CPU = (False, 0, "cpu")
H100x4 = (True, 4, "NVIDIA H100 80GB HBM3")


@pytest.fixture()
def databin(tiny_databin, tmp_path):
    d = tmp_path / "data-bin"
    shutil.copytree(tiny_databin, d)
    return d


def as_stage_output(databin, out, **stats):
    """Rebuild ``databin`` at ``out`` the way the preprocess stage writes it: StageOutput, ``stats`` in the manifest."""
    with StageOutput(out, stage="preprocess", config={}, inputs={}) as st:
        for f in databin.iterdir():
            shutil.copy(f, st.tmp / f.name)
        st.stats.update(stats)
    return out


def test_good_databin_passes(databin, tmp_path):
    pf = preflight(TrainConfig(**TINY), databin, tmp_path / "ckpt", cuda_info=CPU)
    assert pf.vocab_size % 8 == 0 and pf.precision == "fp32" and not pf.cuda
    assert pf.train_tokens == int(read_mmap_sizes(databin / "train.idx").sum()) > 10_000
    assert pf.spm_model == databin / "spm.model" and pf.warnings == []
    assert "effective batch: 16 sequences" not in pf.describe()  # batch 16 x uf 16 = 256
    assert "256 sequences x 64 tokens = 16,384 tokens per update" in pf.describe()


def test_manifest_is_used_when_present(databin, tmp_path):
    out = as_stage_output(databin, tmp_path / "db2", tokens={"train": 123456, "valid": 100, "test": 100},
                          spm_sha256=sha256_file(databin / "spm.model"), dict_sha256=sha256_file(databin / "dict.txt"))
    assert preflight(TrainConfig(**TINY), out, tmp_path / "c", cuda_info=CPU).train_tokens == 123456
    (out / "_COMPLETE").unlink()
    with pytest.raises(InputError, match="no valid _COMPLETE"):
        preflight(TrainConfig(**TINY), out, tmp_path / "c", cuda_info=CPU)


def test_manifest_dict_hash_mismatch(databin, tmp_path):
    out = as_stage_output(databin, tmp_path / "db3", dict_sha256="0" * 64)
    with pytest.raises(InputError, match="dict_sha256"):
        preflight(TrainConfig(**TINY), out, tmp_path / "c", cuda_info=CPU)


def test_truncated_output_listed_in_manifest(databin, tmp_path):
    out = as_stage_output(databin, tmp_path / "db4")
    with open(out / "train.bin", "r+b") as f:
        f.truncate(100)
    with pytest.raises(InputError, match="train.bin is missing or has the wrong size"):
        preflight(TrainConfig(**TINY), out, tmp_path / "c", cuda_info=CPU)


def test_dict_from_another_vocab(databin, tmp_path):
    lines = (databin / "dict.txt").read_text(encoding="utf-8").splitlines()
    lines[10], lines[11] = lines[11], lines[10]
    (databin / "dict.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(InputError, match="does not belong to"):
        preflight(TrainConfig(**TINY), databin, tmp_path / "c", cuda_info=CPU)


def test_missing_split_and_bad_index(databin, tmp_path):
    (databin / "valid.idx").write_bytes(b"not an index")
    with pytest.raises(InputError, match="not a fairseq mmap index"):
        preflight(TrainConfig(**TINY), databin, tmp_path / "c", cuda_info=CPU)
    (databin / "train.bin").unlink()
    with pytest.raises(InputError, match="train.bin missing"):
        preflight(TrainConfig(**TINY), databin, tmp_path / "c", cuda_info=CPU)
    with pytest.raises(InputError, match="not found"):
        preflight(TrainConfig(**TINY), tmp_path / "nope", tmp_path / "c", cuda_info=CPU)


def test_no_spm_model_is_a_warning(databin, tmp_path):
    (databin / "spm.model").unlink()
    pf = preflight(TrainConfig(**TINY), databin, tmp_path / "c", cuda_info=CPU)
    assert pf.spm_model is None and "not checked" in pf.warnings[0]


def test_blocks_longer_than_positions(databin, tmp_path):
    # the fixture has one paragraph per line: at 64 tokens, 85% of tokens are in lines fairseq would drop
    with pytest.raises(InputError, match="longer than tokens_per_sample-1=63"):
        preflight(TrainConfig(**{**TINY, "sample_break_mode": "complete"}), databin, tmp_path / "c", cuda_info=CPU)
    pf = preflight(TrainConfig(**{**TINY, "sample_break_mode": "complete", "tokens_per_sample": 256,
                                  "max_positions": 256}), databin, tmp_path / "c", cuda_info=CPU)
    assert "will be skipped" in pf.warnings[0]


def test_gpu_checks(databin, tmp_path):
    with pytest.raises(DependencyError, match="fp16 needs CUDA"):
        preflight(TrainConfig(**TINY, precision="fp16"), databin, tmp_path / "c", cuda_info=CPU)
    with pytest.raises(DependencyError, match="no CUDA device"):
        preflight(TrainConfig(**TINY, device="cuda"), databin, tmp_path / "c", cuda_info=CPU)
    with pytest.raises(DependencyError, match="ngpus=8 but only 4"):
        preflight(TrainConfig(**TINY, ngpus=8, launcher="torchrun"), databin, tmp_path / "c", cuda_info=H100x4)
    pf = preflight(TrainConfig(**TINY, ngpus=4, launcher="torchrun"), databin, tmp_path / "c", cuda_info=H100x4)
    assert pf.cuda and pf.precision == "fp16" and pf.device_name.startswith("NVIDIA H100")
    with pytest.raises(ConfigError, match="launcher: torchrun"):
        preflight(TrainConfig(**TINY, ngpus=2, device="cpu"), databin, tmp_path / "c", cuda_info=CPU)


def test_slurm_needs_an_allocation_unless_dry_run(databin, tmp_path, monkeypatch):
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    cfg = TrainConfig(**TINY, launcher="slurm", nnodes=2, ngpus=8)
    with pytest.raises(ConfigError, match="SLURM_JOB_ID"):
        preflight(cfg, databin, tmp_path / "c", cuda_info=H100x4)
    preflight(cfg, databin, tmp_path / "c", cuda_info=H100x4, dry_run=True)  # GPU count of other nodes unknown


def test_recipe_batch_math(databin, tmp_path):
    cfg = TrainConfig(**{**TINY, "recipe": "base", "batch_size": 16, "update_freq": 16, "ngpus": 4,
                         "launcher": "torchrun"})
    with pytest.raises(ConfigError, match=r"expects 2,048 sequences .* = 1,024.*update_freq: 32"):
        preflight(cfg, databin, tmp_path / "c", cuda_info=H100x4)
    ok = cfg.replace(update_freq=32)
    assert preflight(ok, databin, tmp_path / "c", cuda_info=H100x4).batch.sequences == 2048


def test_disk_space(databin, tmp_path):
    with pytest.raises(OutputError, match="not enough free disk"):
        preflight(TrainConfig(**{**TINY, "min_free_disk_gb": 1e9}), databin, tmp_path / "c", cuda_info=CPU)


def test_save_dir_of_another_run(databin, tmp_path):
    from koroberta.databin import data_fingerprint
    from koroberta.train.preflight import run_identity

    save = tmp_path / "ckpt"
    save.mkdir()
    (save / "checkpoint_last.pt").write_bytes(b"x")
    cfg = TrainConfig(**TINY)
    write_json(save / TRAIN_STATE, {"identity": run_identity(cfg, data_fingerprint(databin))})
    runtime = cfg.replace(launcher="torchrun", ngpus=2, batch_size=4, update_freq=32, log_interval=1,
                          save_interval_updates=5, validate_interval_updates=0, tensorboard=False)
    pf = preflight(runtime, databin, save, cuda_info=CPU)  # 16 x 16 x 1 = 4 x 32 x 2: the same run, split otherwise
    assert pf.conflicts == {} and pf.warnings == []
    assert preflight(cfg.replace(max_update=50, warmup_updates=5), databin, save, cuda_info=CPU).conflicts == {
        "max_update": (125000, 50), "warmup_updates": (10000, 5)}
    assert preflight(cfg.replace(encoder_layers=3), databin, save, cuda_info=CPU).conflicts == {
        "encoder_layers": (2, 3)}
    assert set(preflight(cfg.replace(update_freq=4), databin, save, cuda_info=CPU).conflicts) == {
        "sequences_per_update"}
    other = tmp_path / "other-bin"
    shutil.copytree(databin, other)
    data = bytearray((other / "valid.bin").read_bytes())
    data[-2] ^= 1  # same size, other token: a finished run must not be "resumed" on other data
    (other / "valid.bin").write_bytes(bytes(data))
    assert set(preflight(cfg, other, save, cuda_info=CPU).conflicts) == {"data"}


def test_dry_run_on_a_machine_without_gpus_plans_the_gpu_job(databin, tmp_path):
    """A login node has no GPU; --dry-run there must show the fp16 multi-GPU command, a real launch must refuse."""
    cfg = TrainConfig(**{**TINY, "device": "cuda", "precision": "fp16", "ngpus": 8, "launcher": "torchrun"})
    pf = preflight(cfg, databin, tmp_path / "c", dry_run=True, cuda_info=CPU)
    assert pf.cuda and pf.precision == "fp16" and any("dry run" in w for w in pf.warnings)
    with pytest.raises(DependencyError, match="no CUDA device"):
        preflight(cfg, databin, tmp_path / "c", cuda_info=CPU)


# -- ids the dictionary does not have (fairseq: IndexError, or "Dataset contains mask_idx", after loading) -----------
def test_ids_past_a_smaller_dict_without_manifest(databin, tmp_path):
    """A data-bin without manifest next to a dict.txt smaller than the one it was binarized with (spm.model removed:
    it would refuse the cut dict first): the .bin files are scanned for their largest id."""
    from koroberta.databin import read_mmap

    largest = max(int(read_mmap(databin / s)[1].max()) for s in ("train", "valid", "test"))
    rows = (databin / "dict.txt").read_text(encoding="utf-8").splitlines(keepends=True)
    (databin / "spm.model").unlink()

    def check_with(n_rows: int) -> None:
        (databin / "dict.txt").write_text("".join(rows[:n_rows]), encoding="utf-8")
        preflight(TrainConfig(**TINY), databin, tmp_path / "c", cuda_info=CPU)

    # ids 0-3 are the specials, dict row r is id 4 + r, and masked_lm appends <mask> as id 4 + n_rows
    with pytest.raises(InputError, match=rf"\.bin: holds token id {largest}, the <mask> id") as e:
        check_with(largest - 4)
    assert "koroberta preprocess run" in str(e.value)
    with pytest.raises(InputError, match=rf"\.bin: holds token id {largest}, past the end of the dictionary"):
        check_with(largest - 10)
    check_with(largest - 3)  # the largest id is the last dict row: accepted


def test_max_id_is_read_from_the_manifest(databin, tmp_path, monkeypatch):
    """With a manifest, the largest ids it records are checked and the .bin files are not scanned."""
    import importlib

    pre = importlib.import_module("koroberta.train.preflight")  # the module: koroberta.train.preflight is the function

    def no_scan(*a, **k):
        raise AssertionError("scanned a .bin although the manifest records its largest id")

    (databin / "spm.model").unlink()
    n_rows = len((databin / "dict.txt").read_text(encoding="utf-8").splitlines())
    out = as_stage_output(databin, tmp_path / "db", max_id={"train": 50, "valid": 3 + n_rows, "test": 2})
    monkeypatch.setattr(pre, "max_token_id", no_scan)
    preflight(TrainConfig(**TINY), out, tmp_path / "c", cuda_info=CPU)  # 3 + rows: the last dict.txt row
    out = as_stage_output(databin, tmp_path / "db2", max_id={"train": 50, "valid": 4 + n_rows, "test": 2})
    with pytest.raises(InputError, match=r"valid.bin: holds token id \d+, the <mask> id"):
        preflight(TrainConfig(**TINY), out, tmp_path / "c", cuda_info=CPU)


def test_same_size_edit_of_a_bin_listed_in_the_manifest(databin, tmp_path):
    """A .bin overwritten in place (same size, ids past the dictionary) after preprocess completed: its sha256 no
    longer matches the manifest, so neither the manifest's hashes nor its recorded ids are trusted."""
    import os

    out = as_stage_output(databin, tmp_path / "db")
    with open(out / "train.bin", "r+b") as f:
        f.seek(200)
        f.write(b"\xff\xff" * 16)  # uint16 65535: far past the 2,000-row dictionary
    with pytest.raises(InputError, match=r"train.bin: content differs from the sha256 in the data-bin's manifest"):
        preflight(TrainConfig(**TINY), out, tmp_path / "c", cuda_info=CPU)
    # cheap on an untouched data-bin: files older than the completion marker are not hashed again
    old = (out / "_COMPLETE").stat().st_mtime - 3600
    for f in out.iterdir():
        if f.name != "_COMPLETE":
            os.utime(f, (old, old))
    with pytest.raises(InputError, match=r"train.bin: holds token id 65535, past the end"):  # the id check remains
        preflight(TrainConfig(**TINY), out, tmp_path / "c", cuda_info=CPU)
