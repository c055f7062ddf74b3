"""Preflight: every check that can fail *before* GPU time is spent.

A 100k-update roberta_base run is 9-10 days on 4 GPUs, so each check here is something that otherwise shows up as a
crash (or silently wrong training) hours or days in: incomplete data-bin, a dict from another vocab, blocks longer
than the position table, fewer GPUs than requested, a batch that is not the recipe's, a disk that fills at the
first checkpoint, or a save_dir holding checkpoints of a different model.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from koroberta.artifacts import MANIFEST, SPLITS, read_json, read_manifest, sha256_file
from koroberta.databin import (changed_since_manifest, check_mmap_dataset, data_fingerprint, max_token_id,
                               mmap_dtype, shard_names, valid_subsets)
from koroberta.errors import ConfigError, DependencyError, InputError, OutputError
from koroberta.layout import FAIRSEQ_SPECIALS, check_dict_matches, read_dict_symbols
from koroberta.train.command import EffectiveBatch, effective_batch, model_options, resolve_precision
from koroberta.train.config import RECIPES, TrainConfig
from koroberta.train.flops import ModelShape, shape_from_config

log = logging.getLogger("koroberta.train")

TRAIN_STATE = "train_config.json"  # what the checkpoints in save_dir were launched with
#: fairseq checkpoint bytes per parameter: fp32 weights + Adam exp_avg + exp_avg_sq (measured 12.27 B/param on the
#: 206k-param test model, 2,528,881 bytes; fp16 runs store fp16 weights, so 12 is an upper bound there)
CHECKPOINT_BYTES_PER_PARAM = 12


@dataclass(frozen=True)
class InitFrom:
    """``train.init_from`` as preflight checked it."""

    path: Path
    sha256: str              # the file's content: what the run identity holds (never the path)
    num_updates: int | None  # the updates the checkpoint was trained for (0 for an import)
    vocab_check: str         # how its vocabulary was matched to the data-bin's, for the plan


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
    init: InitFrom | None = None  # train.init_from, checked
    resuming: bool = False  # save_dir holds checkpoints of this run: fairseq continues them
    #: a sharded data-bin's shard directories (preprocess.shards), shard0 first; fairseq-train gets them as
    #: DATA_BIN/shard0:DATA_BIN/shard1:... and loads one per epoch. Empty: the one-directory layout
    shards: list[str] = field(default_factory=list)
    dict_path: Path | None = None  # the dict.txt fairseq-train loads (shard0's when sharded)

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
                 f"(~{self.train_tokens / max(1, len(self.shards)) / max(1, self.batch.tokens):,.1f} updates per "
                 f"epoch{' and shard' if self.shards else ''})"]
        if self.shards:
            lines.append(f"shards: train in {len(self.shards)} shards, one per epoch in turn ({self.shards[0]} .. "
                         f"{self.shards[-1]}); dict.txt and validation from {self.shards[0]}")
        if len(self.valid_subsets) > 1:
            lines.append(f"validation: valid (every source; the best checkpoint follows it), then a loss per source "
                         f"on {', '.join(self.valid_subsets[1:])}")
        if self.init is not None:
            i = self.init
            trained = f"{i.num_updates} updates, " if i.num_updates else ""
            where = f"{i.path} (sha256 {i.sha256[:12]}; {trained}{i.vocab_check})"
            lines.append(f"init: this run started from {where}; it resumes from its own checkpoint_last.pt, the init "
                         f"weights are not loaded again" if self.resuming else
                         f"init: starts from the weights of {where}, with a fresh optimizer, lr schedule and data "
                         f"position (update 0)")
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
    # fairseq-train splits its data argument on ':' (shard paths, fairseq.utils.split_paths): a path holding one
    # would be read as two directories, neither of them this data-bin
    if os.pathsep in str(data_bin):
        raise InputError(f"the data-bin path holds {os.pathsep!r}, which fairseq-train splits its data path on",
                         path=data_bin, fix=f"move (or link) the data-bin to a path without {os.pathsep!r}")
    # a sharded data-bin (preprocess.shards): fairseq reads dict.txt and the valid subsets from the first shard only,
    # and train from shard (epoch - 1) % N; `at` names a file of that first directory relative to data_bin
    shards = shard_names(data_bin, stats if has_manifest else None)
    first = data_bin / shards[0] if shards else data_bin

    def at(split: str) -> str:
        return f"{shards[0]}/{split}" if shards else split

    trains = [f"{n}/train" for n in shards] or ["train"]
    required = [at("dict.txt"), *(f"{t}.{ext}" for t in trains for ext in ("bin", "idx")), at("valid.bin"),
                at("valid.idx"), *(f"{n}/dict.txt" for n in shards[1:])]
    for name in required:
        if not (data_bin / name).is_file():
            raise InputError(f"{name} missing", path=data_bin,
                             fix="pass the directory written by `koroberta preprocess` (fairseq-preprocess output)")
    # .idx/.bin consistency, with or without a manifest (a copied or hand-made data-bin has none): a cut-off file
    # would otherwise pass here and crash fairseq mid-run, where resuming cannot help
    sizes = {}
    for split in SPLITS:
        for p in (trains if split == "train" else [at(split)]):
            if split != "test" or (data_bin / f"{p}.idx").is_file() or (data_bin / f"{p}.bin").is_file():
                sizes[p] = check_mmap_dataset(data_bin / p)
    for t in trains if shards else []:
        if not int(sizes[t].sum()):  # fairseq would train an epoch on nothing
            raise InputError("train shard is empty", path=data_bin / f"{t}.idx",
                             fix="rebuild the data-bin with fewer preprocess.shards")
    # the per-source subsets the manifest lists (or, without one, whose .idx lies there) are validated on like
    # valid: each must be as intact, hold a document, and fit the dictionary (check_max_ids below)
    subsets = valid_subsets(first, stats if has_manifest else None)
    for sub in subsets[1:]:
        if not re.fullmatch(r"valid_[^\s,:/]+", sub):
            raise InputError(f"validation subset {sub!r} holds whitespace, ',', ':' or '/', which fairseq's "
                             f"--valid-subset list cannot carry", path=first / f"{sub}.idx",
                             fix="rename that source and rebuild the corpus and data-bin")
        sizes[at(sub)] = check_mmap_dataset(data_bin / at(sub))
        if not int(sizes[at(sub)].sum()):
            raise InputError("validation subset is empty (fairseq cannot validate on it)", path=first / f"{sub}.idx",
                             fix="rebuild the data-bin with `koroberta preprocess run --force` (a source without "
                                 "valid documents gets no subset)")
    dict_path = first / "dict.txt"
    if shards:
        # fairseq loads shard0's dict.txt for every shard: another one there means that shard's ids were written
        # with another vocabulary and would train as other symbols, silently
        want = sha256_file(dict_path)
        for other in [*(data_bin / n / "dict.txt" for n in shards[1:]), data_bin / "dict.txt"]:
            if other.is_file() and sha256_file(other) != want:
                raise InputError(f"{other.relative_to(data_bin)} differs from {shards[0]}/dict.txt, the dictionary "
                                 f"fairseq-train reads for every shard", path=other,
                                 fix="rebuild the data-bin with `koroberta preprocess run --force` (every shard gets "
                                     "the same dict.txt)")
    if stats.get("dict_sha256") and stats["dict_sha256"] != sha256_file(dict_path):
        raise InputError("dict.txt differs from the one the data was binarized with (dict_sha256 in manifest)",
                         path=dict_path, fix="rerun `koroberta preprocess`")
    if stats.get("vocab_kind") == "hf":
        # encoded with an imported HF tokenizer (`koroberta import-hf`): no spm.model to hold dict.txt against. The
        # import recorded dict.txt and tokenizer.json as a pair; preprocess copied the tokenizer here and recorded
        # both sha256s, so the dict check above plus this one keep the pair together
        from koroberta.hfvocab import TOKENIZER_DIR, TOKENIZER_JSON

        if spm_model is not None:
            raise InputError("an spm model was given, but this data-bin was encoded with an imported Hugging Face "
                             "tokenizer (vocab_kind: hf in its manifest)", path=spm_model,
                             fix="drop --spm-model: preflight checks the data-bin's own tokenizer/ instead")
        tj = data_bin / TOKENIZER_DIR / TOKENIZER_JSON
        if not tj.is_file() or sha256_file(tj) != stats.get("tokenizer_sha256"):
            raise InputError("missing" if not tj.is_file() else "not the tokenizer the data-bin was encoded with "
                             "(tokenizer_sha256 in its manifest)", path=tj,
                             fix="rebuild the data-bin: `koroberta preprocess run --force` with the imported vocab dir")
    else:
        spm_model = spm_model or (data_bin / "spm.model" if (data_bin / "spm.model").is_file() else None)
        if spm_model is not None:
            if stats.get("spm_sha256") and stats["spm_sha256"] != sha256_file(spm_model):
                raise InputError(f"spm model {spm_model} is not the one the data-bin was encoded with (spm_sha256)",
                                 path=data_bin, fix="pass the spm.model of the same `koroberta spm train` run")
            check_dict_matches(dict_path, spm_model)
    from koroberta.layout import MASK

    symbols = read_dict_symbols(dict_path)
    if MASK not in symbols:
        vocab = len(FAIRSEQ_SPECIALS) + len(symbols) + 1  # masked_lm appends <mask>
        check_max_ids(data_bin, list(sizes), stats.get("max_id") or {}, vocab)
        return vocab, spm_model, stats, _train_sizes(sizes, trains), subsets
    # an imported vocabulary lists <mask> itself, anywhere (klue: id 4): masked_lm's add_symbol("<mask>") returns
    # that row instead of appending one, so the rows are dict.txt's, and the mask id is not the largest one
    import numpy as np

    vocab = len(FAIRSEQ_SPECIALS) + len(symbols)
    mask_id = len(FAIRSEQ_SPECIALS) + symbols.index(MASK)
    recorded = stats.get("max_id") or {}
    fix = ("the data-bin was built with another dict.txt, or the .bin is corrupt: rebuild it with "
           "`koroberta preprocess run` against this vocabulary")
    for split in sizes:
        bin_path, dtype = data_bin / f"{split}.bin", mmap_dtype(data_bin / f"{split}.idx")
        largest = recorded.get(split)
        if largest is None:
            largest = max_token_id(bin_path, dtype)
        if largest >= vocab:
            raise InputError(f"holds token id {largest}, past the end of the dictionary: dict.txt gives {vocab} ids "
                             f"(4 specials + {vocab - 4} dict.txt rows, <mask> among them)", path=bin_path, fix=fix)
        if stats.get("mask_id") == mask_id:
            continue  # koroberta preprocess refuses to write the mask id, and the sha256 check above held
        # a data-bin made elsewhere: fairseq's masked_lm asserts the mask id never occurs; one flat-memory read
        n = bin_path.stat().st_size // np.dtype(dtype).itemsize
        ids = np.memmap(bin_path, dtype=dtype, mode="r", shape=(n,)) if n else np.empty(0, dtype=dtype)
        if any(bool((ids[i:i + (1 << 26)] == mask_id).any()) for i in range(0, n, 1 << 26)):
            raise InputError(f"holds the <mask> id {mask_id} (dict.txt's <mask> row), which fairseq's masked_lm "
                             "refuses in its data", path=bin_path,
                             fix="rebuild it with `koroberta preprocess run`, which removes literal special tokens")
        del ids
    return vocab, spm_model, stats, _train_sizes(sizes, trains), subsets


def _train_sizes(sizes: dict[str, Any], trains: list[str]) -> Any:
    """Every train item's size, the shards' one after another (the block-length check and counts need no order)."""
    import numpy as np

    return sizes[trains[0]] if len(trains) == 1 else np.concatenate([sizes[t] for t in trains])


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
    """What a training run is: the train identity fields, the effective batch, the data's content and, with
    ``init_from``, the content of the checkpoint it starts from (a key only then: the identity of every run without
    one stays what it was)."""
    out = {**cfg.identity(), "data": data_fp}
    if cfg.init_from:
        out["init_from_sha256"] = init_sha256(init_path(cfg))
    return out


_FIX_INIT = ("set train.init_from to the checkpoint.pt written by `koroberta import-hf HF_DIR OUT`, or to a "
             "runs/<name>/checkpoints/checkpoint_last.pt (null: start from random weights)")
#: sha256 by (path, device, inode, size, mtime): a checkpoint can be GBs, and the identity is wanted several times
#: per launch (the completion check, preflight, train_config.json, the manifest); a replaced file has another key
_INIT_SHA: dict[tuple[str, int, int, int, int], str] = {}


def init_path(cfg: TrainConfig) -> Path:
    """``cfg.init_from``, which must be a file."""
    p = Path(str(cfg.init_from))
    if not p.is_file():
        raise InputError("train.init_from: " + ("a directory, not a checkpoint file" if p.is_dir()
                                                else "checkpoint not found"), path=p, fix=_FIX_INIT)
    return p


def init_sha256(path: Path) -> str:
    st = path.stat()
    key = (str(path.resolve()), st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
    if key not in _INIT_SHA:
        _INIT_SHA[key] = sha256_file(path)
    return _INIT_SHA[key]


def _model_fix(name: str, want: object, has: dict[str, object]) -> str:
    """How to make the train config build ``want`` for ``name`` (a size, or one of
    :func:`~koroberta.train.command.model_options`); ``has`` is everything the checkpoint holds."""
    flag = "--" + name.replace("_", "-")
    if name == "encoder_normalize_before":
        if not want:
            return f"use a post-LN train.arch (roberta_base) without {flag} in train.extra_args"
        # roberta_prenorm drops the embedding LayerNorm unless asked for it
        return "set train.arch: roberta_prenorm" + (" and train.layernorm_embedding: true"
                                                    if has["layernorm_embedding"] else "")
    if name == "layernorm_embedding" and not want:
        return "set train.arch: roberta_prenorm with train.layernorm_embedding: null (no other arch drops it)"
    if name in {f.name for f in dataclasses.fields(TrainConfig)}:
        return f"set train.{name}: {json.dumps(want)}"
    if name == "activation_fn":
        return f"add `{flag} {want}` to train.extra_args"
    return f"add {flag} to train.extra_args" if want else f"remove {flag} from train.extra_args"


def check_init_from(cfg: TrainConfig, data_bin: Path, save_dir: Path, vocab: int, shape: ModelShape,
                    warnings: list[str], *, dict_path: Path | None = None) -> InitFrom:
    """``train.init_from`` is a fairseq RoBERTa checkpoint that fairseq can load into the model this config builds,
    and was trained with the data-bin's vocabulary. Otherwise fairseq fails at start with a size-mismatch traceback
    (layers, dims, embedding rows), or -- same shapes, other vocabulary or another activation -- trains silently on
    token ids that mean other words to the loaded weights. ``dict_path``: the dict.txt fairseq-train loads (a sharded
    data-bin's shard0/dict.txt; default ``data_bin/dict.txt``)."""
    from koroberta.convert.checkpoint import SE, load_checkpoint
    from koroberta.hfvocab import RECORD

    p = init_path(cfg)
    if save_dir.is_dir() and p.resolve().parent == save_dir.resolve():
        # fairseq rewrites checkpoint*.pt there (changing the identity under the run) and --restart moves them aside
        raise ConfigError("train.init_from lies in the save dir, whose checkpoints this run writes", path=p,
                          fix="copy the checkpoint out of the save dir and point train.init_from at the copy, or "
                              "choose another save dir")
    ck = load_checkpoint(p)  # one-line InputError for anything that is not a fairseq RoBERTa masked LM
    dict_path = dict_path or data_bin / "dict.txt"
    rec_path, state_path = p.parent / RECORD, p.parent / TRAIN_STATE
    src = rec_path if rec_path.is_file() else state_path if state_path.is_file() else None
    recorded = read_json(src).get("dict_sha256") if src is not None else None
    vocab_dir = p.parent if src == rec_path else "VOCAB_DIR"
    fix = (f"preprocess the corpus with the vocab dir of that checkpoint: `koroberta preprocess SPLIT_DIR {vocab_dir} "
           f"DATA_BIN`" + (" (the spm dir of the run that trained it)" if src == state_path else "")
           + ", and train on that data-bin")
    if recorded is not None and recorded != sha256_file(dict_path):
        raise InputError(f"train.init_from {p} was trained with another vocabulary: {src} records dict.txt sha256 "
                         f"{recorded[:12]}..., this data-bin's is {sha256_file(dict_path)[:12]}...", path=dict_path,
                         fix=fix)
    if ck.vocab_rows != vocab:
        raise InputError(f"train.init_from {p} has {ck.vocab_rows} embedding rows, the data-bin's dict.txt gives "
                         f"{vocab}: another vocabulary", path=dict_path, fix=fix)
    if recorded is None:
        warnings.append(f"init_from {p}: its vocabulary could not be verified (no {RECORD} or {TRAIN_STATE} with "
                        f"dict_sha256 next to it); only its {ck.vocab_rows} embedding rows match the data-bin's "
                        f"dict.txt")
    # what fairseq builds from this config vs what the checkpoint holds: fairseq's strict load fails on a size, and
    # accepts another activation or head tying without a word
    has = {"encoder_layers": ck.n_layers, "encoder_embed_dim": ck.hidden, "encoder_ffn_embed_dim": ck.ffn,
           "encoder_attention_heads": ck.heads, "max_positions": ck.max_positions,
           "encoder_normalize_before": bool(ck.arg("encoder_normalize_before", False)
                                            or SE + "layer_norm.weight" in ck.state),
           "layernorm_embedding": any(SE + n + ".weight" in ck.state for n in ("layernorm_embedding",
                                                                               "emb_layer_norm")),
           "untie_weights_roberta": bool(ck.arg("untie_weights_roberta", False)),
           "activation_fn": str(ck.arg("activation_fn", "gelu"))}
    builds = {"encoder_layers": shape.layers, "encoder_embed_dim": shape.dim, "encoder_ffn_embed_dim": shape.ffn,
              "encoder_attention_heads": shape.heads, "max_positions": cfg.max_positions, **model_options(cfg)}
    wrong = [k for k in has if has[k] != builds[k]]
    if wrong:
        fixes = list(dict.fromkeys(_model_fix(k, has[k], has) for k in wrong))  # prenorm may name the same twice
        raise ConfigError("train.init_from's model differs from the one the train config builds: "
                          + "; ".join(f"{k} {has[k]} in the checkpoint, {builds[k]} in the config" for k in wrong),
                          path=p, fix="; ".join(fixes) + " (or pass a checkpoint of the configured model)")
    what = "vocab.json of its import" if src == rec_path else f"{TRAIN_STATE} of its run" if src else "row count"
    return InitFrom(path=p, sha256=init_sha256(p), num_updates=ck.num_updates,
                    vocab_check=f"vocabulary matched by {what}")


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
    from koroberta.train.command import hf_export_problem

    if (problem := hf_export_problem(cfg)) is not None:  # pre-LN without an embedding LayerNorm: no HF export
        warnings.append(problem)
    vocab, spm_used, stats, sizes, subsets = check_data_bin(data_bin, Path(spm_model) if spm_model else None)
    shards = shard_names(data_bin, stats if (data_bin / MANIFEST).is_file() else None)
    dict_path = data_bin / shards[0] / "dict.txt" if shards else data_bin / "dict.txt"
    if spm_used is None and stats.get("vocab_kind") != "hf":  # an HF data-bin's tokenizer is checked instead
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
    init = check_init_from(cfg, data_bin, save_dir, vocab, shape, warnings, dict_path=dict_path) if cfg.init_from \
        else None
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
                     conflicts=conflicts, data_fingerprint=data_fp, valid_subsets=subsets, init=init,
                     resuming=not conflicts and (save_dir / "checkpoint_last.pt").is_file(), shards=shards,
                     dict_path=dict_path)
