"""Preflight: every check that can fail *before* GPU time is spent.

A 100k-update roberta_base run is 9-10 days on 4 GPUs, so each check here is something that otherwise shows up as a
crash (or silently wrong training) hours or days in: incomplete data-bin, a dict from another vocab, blocks longer
than the position table, fewer GPUs than requested, a batch that is not the recipe's, a disk that fills at the
first checkpoint, or a save_dir holding checkpoints of a different model.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from koroberta.artifacts import MANIFEST, SPLITS, read_json, read_manifest, sha256_file
from koroberta.databin import (changed_since_manifest, check_mmap_dataset, data_fingerprint, max_token_id,
                               mmap_dtype, valid_subsets)
from koroberta.errors import ConfigError, DependencyError, InputError, OutputError
from koroberta.layout import FAIRSEQ_SPECIALS, check_dict_matches, read_dict_symbols
from koroberta.train.command import EffectiveBatch, effective_batch, resolve_precision
from koroberta.train.config import RECIPES, TrainConfig
from koroberta.train.flops import ModelShape, shape_from_config

log = logging.getLogger("koroberta.train")

TRAIN_STATE = "train_config.json"  # what the checkpoints in save_dir were launched with
#: fairseq checkpoint bytes per parameter: fp32 weights + Adam exp_avg + exp_avg_sq (measured 12.27 B/param on the
#: 206k-param test model, 2,528,881 bytes; fp16 runs store fp16 weights, so 12 is an upper bound there)
CHECKPOINT_BYTES_PER_PARAM = 12


@dataclass
class Preflight:
    """What preflight found; printed before launch and recorded in the manifest."""

    cuda: bool
    precision: str
    device_name: str
    vocab_size: int  # embedding rows incl. <mask>
    shape: ModelShape
    batch: EffectiveBatch
    train_tokens: int
    train_sentences: int
    checkpoint_bytes: int
    spm_model: Path | None
    warnings: list[str] = field(default_factory=list)
    conflicts: dict[str, tuple] = field(default_factory=dict)  # save_dir checkpoints of another identity
    data_fingerprint: str = ""  # content of dict.txt/*.bin/*.idx (koroberta.databin), recorded in state/manifest
    #: fairseq's --valid-subset: valid, then valid_<name> per source of a multi-source corpus (koroberta.databin)
    valid_subsets: list[str] = field(default_factory=lambda: ["valid"])

    @property
    def params(self) -> int:
        return self.shape.params_total

    def describe(self) -> str:
        lines = [self.batch.describe(),
                 f"model: {self.shape.layers} layers, dim {self.shape.dim}, ffn {self.shape.ffn}, "
                 f"{self.shape.heads} heads, vocab {self.vocab_size} -> {self.params:,} parameters; "
                 f"checkpoint ~{self.checkpoint_bytes / 2**20:,.1f} MiB",
                 f"device: {self.device_name}, precision {self.precision}",
                 f"data: {self.train_tokens:,} train tokens in {self.train_sentences:,} lines "
                 f"(~{self.train_tokens / max(1, self.batch.tokens):,.1f} updates per epoch)"]
        if len(self.valid_subsets) > 1:
            lines.append(f"validation: valid (every source; the best checkpoint follows it), then a loss per source "
                         f"on {', '.join(self.valid_subsets[1:])}")
        return "\n".join(lines + [f"warning: {w}" for w in self.warnings])


def check_data_bin(data_bin: Path, spm_model: Path | None = None
                   ) -> tuple[int, Path | None, dict[str, Any], Any, list[str]]:
    """Data-bin complete and self-consistent. Returns (embedding rows incl. <mask>, spm model used, manifest stats,
    train item sizes: read once here, used by the block-length check, the validation subsets: ``valid`` first)."""
    if not data_bin.is_dir():
        raise InputError("data-bin directory not found", path=data_bin, fix="run `koroberta preprocess` first")
    stats: dict[str, Any] = {}
    has_manifest = (data_bin / MANIFEST).is_file()
    if has_manifest:
        m = read_manifest(data_bin)
        if m is None:
            raise InputError("data-bin has a manifest but no valid _COMPLETE marker (preprocess was interrupted or "
                             "the files were edited)", path=data_bin, fix="rerun `koroberta preprocess`")
        for rel, meta in m.get("outputs", {}).items():
            p = data_bin / rel
            if not p.is_file() or p.stat().st_size != meta.get("bytes"):
                raise InputError(f"{rel} is missing or has the wrong size (manifest says {meta.get('bytes')} bytes)",
                                 path=data_bin, fix="rerun `koroberta preprocess --force`")
        # same size, other bytes (an edit, a damaged copy): the manifest's hashes -- and the ids and counts recorded
        # with them -- no longer describe the file, and fairseq would fail on it hours in
        changed = changed_since_manifest(data_bin, m.get("outputs", {}))
        if changed:
            raise InputError(f"content differs from the sha256 in the data-bin's manifest (the file was changed "
                             f"after preprocess wrote it{'; also ' + ', '.join(changed[1:]) if changed[1:] else ''})",
                             path=data_bin / changed[0],
                             fix="the file is corrupt or was edited: rebuild the data-bin with "
                                 "`koroberta preprocess run --force`")
        stats = m.get("stats", {})
    for name in ("dict.txt", "train.bin", "train.idx", "valid.bin", "valid.idx"):
        if not (data_bin / name).is_file():
            raise InputError(f"{name} missing", path=data_bin,
                             fix="pass the directory written by `koroberta preprocess` (fairseq-preprocess output)")
    # .idx/.bin consistency, with or without a manifest (a copied or hand-made data-bin has none): a cut-off file
    # would otherwise pass here and crash fairseq mid-run, where resuming cannot help

    sizes = {split: check_mmap_dataset(data_bin / split) for split in SPLITS
             if split != "test" or (data_bin / "test.idx").is_file() or (data_bin / "test.bin").is_file()}
    # the per-source subsets the manifest lists (or, without one, whose .idx lies there) are validated on like
    # valid: each must be as intact, hold a document, and fit the dictionary (check_max_ids below)
    subsets = valid_subsets(data_bin, stats if has_manifest else None)
    for sub in subsets[1:]:
        if not re.fullmatch(r"valid_[^\s,:/]+", sub):
            raise InputError(f"validation subset {sub!r} holds whitespace, ',', ':' or '/', which fairseq's "
                             f"--valid-subset list cannot carry", path=data_bin / f"{sub}.idx",
                             fix="rename that source and rebuild the corpus and data-bin")
        sizes[sub] = check_mmap_dataset(data_bin / sub)
        if not int(sizes[sub].sum()):
            raise InputError("validation subset is empty (fairseq cannot validate on it)", path=data_bin / f"{sub}.idx",
                             fix="rebuild the data-bin with `koroberta preprocess run --force` (a source without "
                                 "valid documents gets no subset)")
    dict_path = data_bin / "dict.txt"
    if stats.get("dict_sha256") and stats["dict_sha256"] != sha256_file(dict_path):
        raise InputError("dict.txt differs from the one the data was binarized with (dict_sha256 in manifest)",
                         path=dict_path, fix="rerun `koroberta preprocess`")
    spm_model = spm_model or (data_bin / "spm.model" if (data_bin / "spm.model").is_file() else None)
    if spm_model is not None:
        if stats.get("spm_sha256") and stats["spm_sha256"] != sha256_file(spm_model):
            raise InputError(f"spm model {spm_model} is not the one the data-bin was encoded with (spm_sha256)",
                             path=data_bin, fix="pass the spm.model of the same `koroberta spm train` run")
        check_dict_matches(dict_path, spm_model)
    n_symbols = len(read_dict_symbols(dict_path))
    vocab = len(FAIRSEQ_SPECIALS) + n_symbols + 1  # masked_lm appends <mask>
    check_max_ids(data_bin, list(sizes), stats.get("max_id") or {}, vocab)
    return vocab, spm_model, stats, sizes["train"], subsets


def check_max_ids(data_bin: Path, splits: list[str], recorded: dict[str, int], vocab: int) -> None:
    """Every id in every split's ``.bin`` must be a row of the dictionary fairseq builds from ``dict.txt``, and not
    ``<mask>`` (the last of the ``vocab`` rows, which masked_lm appends). Otherwise fairseq fails after loading:
    ``IndexError`` in the embedding for an id past the table, ``AssertionError: Dataset contains mask_idx`` for the
    mask id. ``recorded`` is the manifest's per-split largest id (written by preprocess); a split without one (no
    manifest, or one from an older koroberta) is scanned once."""
    mask_id = vocab - 1
    for split in splits:
        largest = recorded.get(split)
        if largest is None:
            largest = max_token_id(data_bin / f"{split}.bin", mmap_dtype(data_bin / f"{split}.idx"))
        if largest < mask_id:
            continue
        what = "the <mask> id" if largest == mask_id else "past the end of the dictionary"
        raise InputError(f"holds token id {largest}, {what}: dict.txt gives {vocab} ids (4 specials + "
                         f"{vocab - 5} dict.txt rows + <mask> = id {mask_id}), so ids must be below {mask_id}",
                         path=data_bin / f"{split}.bin",
                         fix="the data-bin was built with another (larger) dict.txt, or the .bin is corrupt: rebuild "
                             "it with `koroberta preprocess run` against this vocabulary")


def recorded_identity(save_dir: Path) -> dict[str, Any] | None:
    """The identity the checkpoints in ``save_dir`` were trained with (None: nothing to resume there)."""
    state_file = save_dir / TRAIN_STATE
    if not state_file.is_file() or not (save_dir / "checkpoint_last.pt").is_file():
        return None
    state = read_json(state_file)
    if "identity" in state:
        return state["identity"]
    # train_config.json of an older koroberta: rebuild the identity from the full config it recorded
    return {**TrainConfig.from_dict(state.get("config", {}), source=str(state_file)).identity(),
            "data": state.get("data_fingerprint")}


def run_identity(cfg: TrainConfig, data_fp: str) -> dict[str, Any]:
    """What a training run is: the train identity fields, the effective batch, and the data's content."""
    return {**cfg.identity(), "data": data_fp}


def check_save_dir(cfg: TrainConfig, save_dir: Path, data_fp: str) -> dict[str, tuple]:
    """``{field: (recorded, now)}`` where the checkpoints in ``save_dir`` were trained with another identity.

    Empty when there is nothing to resume or the identities match. A run-time change (launcher, GPU count with the
    same effective batch, log/save intervals) is never a difference. :func:`koroberta.train.train` refuses to
    train on top of different checkpoints unless told to (``--restart`` / ``--extend``): fairseq would crash on
    another shape, or silently continue a finished run on new data.
    """
    old = recorded_identity(save_dir)
    if old is None:
        return {}
    want = run_identity(cfg, data_fp)
    return {k: (old.get(k), want.get(k)) for k in sorted(set(old) | set(want)) if old.get(k) != want.get(k)}


def detect_cuda() -> tuple[bool, int, str]:
    """(available, device count, name of device 0)."""
    import torch

    if not torch.cuda.is_available():
        return False, 0, "cpu"
    return True, torch.cuda.device_count(), torch.cuda.get_device_name(0)


def preflight(cfg: TrainConfig, data_bin: str | Path, save_dir: str | Path, *, spm_model: str | Path | None = None,
              dry_run: bool = False, cuda_info: tuple[bool, int, str] | None = None,
              data_fp: str | None = None) -> Preflight:
    """Run every check; raise a :class:`~koroberta.errors.KorobertaError` on the first failure.

    ``cuda_info`` overrides GPU detection (tests); ``dry_run`` skips checks about the machine the job will run on
    that only matter for a real launch (SLURM allocation present).
    """
    data_bin, save_dir = Path(data_bin), Path(save_dir)
    warnings: list[str] = []
    vocab, spm_used, stats, sizes, subsets = check_data_bin(data_bin, Path(spm_model) if spm_model else None)
    if spm_used is None:
        warnings.append(f"no spm.model in {data_bin}: dict/spm agreement not checked (pass --spm-model)")

    # -- devices ------------------------------------------------------------------------------------------------------
    has_cuda, n_cuda, name = cuda_info if cuda_info is not None else detect_cuda()
    if cfg.device == "cuda" and not has_cuda:
        if not dry_run:
            raise DependencyError("device: cuda requested but torch sees no CUDA device",
                                  fix="run on a GPU machine, or set train.device: cpu (and precision: fp32)")
        # a dry run on a login node (no GPU) plans the GPU job: build its command as it will run there
        warnings.append("dry run: no CUDA device on this machine; showing the command for the GPU nodes "
                        "(GPU count and precision are checked when the job starts)")
        has_cuda, n_cuda, name = True, max(cfg.ngpus, 1), "cuda (planned; none on this machine)"
    cuda = has_cuda and cfg.device != "cpu"
    if cfg.precision in ("fp16", "amp") and not cuda:
        raise DependencyError(f"precision: {cfg.precision} needs CUDA, and none is "
                              f"{'used (device: cpu)' if has_cuda else 'available'}",
                              fix="set train.precision: fp32 (or auto) for CPU training")
    precision = resolve_precision(cfg, cuda)
    check_gpus = cfg.launcher != "slurm" or "SLURM_JOB_ID" in os.environ
    if cuda and check_gpus and cfg.ngpus > n_cuda:
        raise DependencyError(f"ngpus={cfg.ngpus} but only {n_cuda} CUDA device(s) are visible on this node",
                              fix=f"set train.ngpus: {n_cuda} (and raise update_freq to keep the effective batch)")
    if not cuda and cfg.world_size > 1 and cfg.launcher == "local":
        raise ConfigError(f"ngpus={cfg.ngpus} on CPU with launcher: local — fairseq spawns one process per CUDA "
                          f"device and would start none", fix="use launcher: torchrun (gloo) or ngpus: 1")
    if cfg.launcher == "slurm" and not dry_run:
        missing = [k for k in ("SLURM_JOB_ID", "MASTER_ADDR") if k not in os.environ]
        if missing:
            raise ConfigError(f"launcher: slurm but {' and '.join(missing)} not set (not inside a SLURM allocation "
                              f"started by scripts/pretrain.slurm)",
                              fix="submit scripts/pretrain.slurm with sbatch (or use --dry-run to see the command)")

    # -- batch / recipe -----------------------------------------------------------------------------------------------
    batch = effective_batch(cfg)
    if cfg.recipe is not None:
        want = RECIPES[cfg.recipe]
        if batch.sequences != want:
            per = cfg.batch_size * cfg.world_size
            hint = (f"update_freq: {want // per}" if want % per == 0
                    else f"batch_size x update_freq x {cfg.world_size} GPUs = {want}")
            raise ConfigError(f"recipe {cfg.recipe} expects {want:,} sequences per update but batch_size "
                              f"{cfg.batch_size} x update_freq {cfg.update_freq} x world size {cfg.world_size} = "
                              f"{batch.sequences:,}", fix=f"set {hint}, or recipe: null")

    # -- data vs positions --------------------------------------------------------------------------------------------
    train_tokens = int(stats.get("tokens", {}).get("train") or sizes.sum())  # preprocess counts per split
    if len(sizes) == 0 or int(sizes.sum()) == 0:
        raise InputError("train split is empty", path=data_bin / "train.idx", fix="rebuild the corpus/data-bin")
    if cfg.sample_break_mode != "none":
        # masked_lm prepends <s>: a line longer than tokens_per_sample - 1 becomes an over-long block that fairseq
        # drops with only a warning
        too_long = sizes > cfg.tokens_per_sample - 1
        if too_long.any():
            frac = float(sizes[too_long].sum()) / float(sizes.sum())
            msg = (f"{int(too_long.sum()):,} train lines ({frac:.1%} of tokens) are longer than tokens_per_sample-1="
                   f"{cfg.tokens_per_sample - 1} and will be skipped by sample_break_mode {cfg.sample_break_mode}")
            if frac > 0.5:
                raise InputError(msg, path=data_bin, fix="raise tokens_per_sample or use sample_break_mode: none")
            warnings.append(msg)

    # -- model, save_dir, disk ----------------------------------------------------------------------------------------
    shape = shape_from_config(cfg, vocab)
    data_fp = data_fp or data_fingerprint(data_bin)  # once per run: without a manifest it hashes every file
    conflicts = check_save_dir(cfg, save_dir, data_fp)
    ckpt_bytes = shape.params_total * CHECKPOINT_BYTES_PER_PARAM + (1 << 20)
    # keep-last-N interval checkpoints + checkpoint_last + checkpoint_best + the one being written
    n_files = (cfg.keep_interval_updates if cfg.keep_interval_updates > 0 else 10) + 3
    existing = sum(p.stat().st_size for p in save_dir.glob("checkpoint*.pt")) if save_dir.is_dir() else 0
    need = n_files * ckpt_bytes - existing + int(cfg.min_free_disk_gb * 2**30)
    probe = save_dir
    while not probe.exists():
        probe = probe.parent
    free = shutil.disk_usage(probe).free
    if need > free:
        raise OutputError(f"not enough free disk for checkpoints: need ~{need / 2**30:.1f} GiB ({n_files} x "
                          f"{ckpt_bytes / 2**30:.2f} GiB + min_free_disk_gb {cfg.min_free_disk_gb}), "
                          f"{free / 2**30:.1f} GiB free", path=probe,
                          fix="free space, lower keep_interval_updates, or choose another --save-dir")
    return Preflight(cuda=cuda, precision=precision, device_name=name if cuda else "cpu", vocab_size=vocab,
                     shape=shape, batch=batch, train_tokens=train_tokens, train_sentences=int(len(sizes)),
                     checkpoint_bytes=ckpt_bytes, spm_model=spm_used, warnings=warnings,
                     conflicts=conflicts, data_fingerprint=data_fp, valid_subsets=subsets)
