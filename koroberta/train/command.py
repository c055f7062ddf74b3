"""Build the fairseq-train invocation (and its launcher wrapper) from a :class:`TrainConfig`.

Pure functions: no I/O, no torch import, so every launcher's command can be unit-tested without GPUs.

Launchers
---------
* ``local``: ``fairseq-train ARGS``. On CUDA with ``ngpus > 1`` fairseq spawns one process per GPU itself.
* ``torchrun`` (one node): ``torchrun --standalone --nproc-per-node N -m koroberta.train.entry ARGS``.
  fairseq's own torchrun detection computes ``device_id = RANK % torch.cuda.device_count()`` (a ZeroDivisionError
  on CPU) and uses the *global* rank as the device on multi-node jobs; :mod:`koroberta.train.entry` passes
  ``--distributed-rank $RANK --device-id $LOCAL_RANK --distributed-init-method env:// --distributed-no-spawn``
  explicitly instead, which works on GPU and on CPU (gloo).
* ``slurm`` (multi-node): one ``srun`` task per node, each running torchrun with a c10d rendezvous on the first
  node of the allocation (``MASTER_ADDR`` = first host of ``SLURM_JOB_NODELIST``, ``MASTER_PORT`` =
  ``master_port``). See ``scripts/pretrain.slurm``.
"""

from __future__ import annotations

import shlex
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from koroberta.train.config import TrainConfig


@dataclass(frozen=True)
class EffectiveBatch:
    """Sequences and tokens per optimizer update."""

    batch_size: int
    update_freq: int
    world_size: int
    tokens_per_sample: int

    @property
    def sequences(self) -> int:
        return self.batch_size * self.update_freq * self.world_size

    @property
    def tokens(self) -> int:
        return self.sequences * self.tokens_per_sample

    def describe(self) -> str:
        return (f"effective batch: {self.sequences:,} sequences x {self.tokens_per_sample} tokens = "
                f"{self.tokens:,} tokens per update (batch_size {self.batch_size} x update_freq {self.update_freq} "
                f"x world size {self.world_size})")


def effective_batch(cfg: TrainConfig) -> EffectiveBatch:
    return EffectiveBatch(cfg.batch_size, cfg.update_freq, cfg.world_size, cfg.tokens_per_sample)


def resolve_precision(cfg: TrainConfig, cuda: bool) -> str:
    """``auto`` -> fp16 on CUDA, fp32 on CPU (fairseq's fp16 path needs CUDA)."""
    if cfg.precision == "auto":
        return "fp16" if cuda else "fp32"
    return cfg.precision


def extra_arg_value(extra_args: Sequence[str], flag: str) -> str | None:
    """The value ``extra_args`` gives ``flag`` (``--flag V`` or ``--flag=V``; the last one wins, as in argparse)."""
    value = None
    for i, a in enumerate(extra_args):
        if a == flag and i + 1 < len(extra_args):
            value = extra_args[i + 1]
        elif a.startswith(flag + "="):
            value = a.split("=", 1)[1]
    return value


def model_options(cfg: TrainConfig) -> dict[str, object]:
    """The fairseq model options besides the sizes that decide which weights the model has and what it computes,
    as fairseq-train will build them: the arch's defaults (fairseq's roberta ``base_architecture`` and
    ``roberta_prenorm``), then what ``extra_args`` sets. A checkpoint that ``init_from`` loads must have the same
    (:func:`koroberta.train.preflight.check_init_from`): fairseq loads the weights strictly by name, so a tied head
    loaded into an untied one, or another activation, would train silently as a different model."""
    flags = {a.split("=", 1)[0] for a in cfg.extra_args}
    prenorm_arch = cfg.arch == "roberta_prenorm"
    # fairseq's flag can only switch it on (TrainConfig allows false only where that is the arch default)
    embedding_norm = not prenorm_arch if cfg.layernorm_embedding is None else cfg.layernorm_embedding
    return {"encoder_normalize_before": prenorm_arch or "--encoder-normalize-before" in flags,
            "layernorm_embedding": embedding_norm or "--layernorm-embedding" in flags,
            "untie_weights_roberta": "--untie-weights-roberta" in flags,
            "activation_fn": extra_arg_value(cfg.extra_args, "--activation-fn") or "gelu"}


def fairseq_data_path(data_bin: str | Path, shards: Sequence[str] = ()) -> str:
    """fairseq-train's data argument: the data-bin, or for a sharded one (``preprocess.shards``) its shard
    directories joined by ':' (``DATA_BIN/shard0:DATA_BIN/shard1:...``). masked_lm reads dict.txt and the valid
    subsets from the first path and train from path ``(epoch - 1) % N``, so one shard is in memory per epoch."""
    return ":".join(str(Path(data_bin) / s) for s in shards) if shards else str(data_bin)


def fairseq_args(cfg: TrainConfig, data_bin: str | Path, save_dir: str | Path, *, cuda: bool,
                 valid_subsets: Sequence[str] = ("valid",), shards: Sequence[str] = ()) -> list[str]:
    """The fairseq-train arguments (without the program name).

    ``cuda`` is the resolved device (preflight decides it from ``cfg.device`` and what the machine has).
    ``valid_subsets`` are the data-bin's validation subsets (preflight reads them: ``valid``, then one
    ``valid_<name>`` per source of a multi-source corpus). They are not identity: validating never touches the
    weights, fairseq's best checkpoint follows the first subset (``valid``, as without them), and the subsets'
    content is part of the data fingerprint already. ``shards`` are a sharded data-bin's shard directories, shard0
    first (preflight reads them from its manifest): the data argument becomes :func:`fairseq_data_path`.
    """
    save_dir = Path(save_dir)
    a = [fairseq_data_path(data_bin, shards),
         "--task", "masked_lm", "--criterion", "masked_lm", "--arch", cfg.arch]
    for name in ("encoder_layers", "encoder_embed_dim", "encoder_ffn_embed_dim", "encoder_attention_heads"):
        v = getattr(cfg, name)
        if v is not None:
            a += ["--" + name.replace("_", "-"), str(v)]
    if cfg.layernorm_embedding:  # false is the arch default where it is allowed (TrainConfig.validate): no flag
        a += ["--layernorm-embedding"]
    a += ["--max-positions", str(cfg.max_positions),
          # masked_lm re-samples the mask every epoch (seed + epoch): RoBERTa's dynamic masking; no NSP loss exists
          "--tokens-per-sample", str(cfg.tokens_per_sample), "--sample-break-mode", cfg.sample_break_mode,
          "--mask-prob", repr(cfg.mask_prob),
          "--batch-size", str(cfg.batch_size), "--update-freq", str(cfg.update_freq),
          "--optimizer", "adam", "--adam-betas", f"({cfg.adam_betas[0]!r},{cfg.adam_betas[1]!r})",
          "--adam-eps", repr(cfg.adam_eps), "--weight-decay", repr(cfg.weight_decay),
          "--clip-norm", repr(cfg.clip_norm),
          "--lr-scheduler", "polynomial_decay", "--lr", repr(cfg.lr), "--warmup-updates", str(cfg.warmup_updates),
          "--total-num-update", str(cfg.max_update), "--end-learning-rate", repr(cfg.end_learning_rate),
          "--max-update", str(cfg.max_update),
          "--dropout", repr(cfg.dropout), "--attention-dropout", repr(cfg.attention_dropout),
          "--seed", str(cfg.seed), "--num-workers", str(cfg.num_workers),
          "--save-dir", str(save_dir), "--no-epoch-checkpoints",
          "--save-interval-updates", str(cfg.save_interval_updates),
          "--keep-interval-updates", str(cfg.keep_interval_updates),
          "--validate-interval-updates", str(cfg.validate_interval_updates),
          "--skip-invalid-size-inputs-valid-test",
          "--log-format", "json", "--log-interval", str(cfg.log_interval)]
    if cfg.tensorboard:
        a += ["--tensorboard-logdir", str(save_dir / "tensorboard")]
    if cfg.init_from:
        # fairseq loads it only while save_dir has no checkpoint_last.pt, resetting optimizer, lr scheduler, meters
        # and data position; every later launch resumes from checkpoint_last.pt. (--restore-file with --reset-* would
        # reload the init weights at every restart; TrainConfig refuses those flags next to init_from.)
        a += ["--finetune-from-model", cfg.init_from]
    precision = resolve_precision(cfg, cuda)
    if precision == "fp16":
        # RoBERTa's fp16 recipe: dynamic loss scaling starting at 128
        a += ["--fp16", "--fp16-init-scale", "128"]
    elif precision == "amp":
        a += ["--amp"]
    if not cuda:
        a += ["--cpu"]
    if list(valid_subsets) != ["valid"] and not any(x.split("=", 1)[0] == "--valid-subset" for x in cfg.extra_args):
        # a loss per source in the log; one of extra_args' own (appended below) would win anyway, so it is left alone
        a += ["--valid-subset", ",".join(valid_subsets)]
    if cfg.world_size > 1 or cfg.launcher != "local":
        # under torchrun/srun fairseq initialises a process group even for one rank (koroberta.train.entry passes
        # env:// init), and its default backend is nccl, which CPU builds of torch lack: name the backend always
        a += ["--distributed-world-size", str(cfg.world_size),
              "--distributed-backend", "nccl" if cuda else "gloo"]
        if not cuda:
            # torch DDP refuses device_ids for CPU modules and fairseq always passes them with c10d/pytorch_ddp;
            # legacy_ddp is fairseq's own bucketed all-reduce, which works with gloo
            a += ["--ddp-backend", "legacy_ddp"]
    return a + list(cfg.extra_args)


def hf_export_problem(cfg: TrainConfig) -> str | None:
    """Why ``koroberta convert`` will refuse the checkpoints this config trains, or None. A pre-LN model
    (roberta_prenorm, or --encoder-normalize-before in extra_args) without an embedding LayerNorm has no exact Hugging
    Face equivalent (koroberta.convert.checkpoint); said before training, not after days of it."""
    prenorm = cfg.arch == "roberta_prenorm" or "--encoder-normalize-before" in cfg.extra_args
    embedding_norm = (cfg.layernorm_embedding or "--layernorm-embedding" in cfg.extra_args
                      or (cfg.layernorm_embedding is None and cfg.arch != "roberta_prenorm"))
    if prenorm and not embedding_norm:
        return ("pre-LayerNorm model without an embedding LayerNorm: `koroberta convert` cannot export it to Hugging "
                "Face (RobertaPreLayerNorm always normalises the embeddings); set train.layernorm_embedding: true")
    return None


def launch_command(cfg: TrainConfig, args: list[str], *, python: str | None = None,
                   fairseq_train: str = "fairseq-train") -> list[str]:
    """Wrap fairseq arguments for ``cfg.launcher``. For slurm this is what *each srun task* runs."""
    python = python or sys.executable
    entry = [python, "-m", "koroberta.train.entry"]
    if cfg.launcher == "local":
        return [fairseq_train, *args]
    if cfg.launcher == "torchrun":
        return [python, "-m", "torch.distributed.run", "--standalone", "--nnodes", "1",
                "--nproc-per-node", str(cfg.ngpus), *entry[1:], *args]
    # slurm: srun starts one task per node; each task's torchrun joins the rendezvous on the first node
    return ["srun", "--nodes", str(cfg.nnodes), "--ntasks-per-node", "1", "--kill-on-bad-exit=1",
            python, "-m", "torch.distributed.run", "--nnodes", str(cfg.nnodes), "--nproc-per-node", str(cfg.ngpus),
            "--rdzv-backend", "c10d", "--rdzv-id", "${SLURM_JOB_ID}",
            "--rdzv-endpoint", f"${{MASTER_ADDR}}:{cfg.master_port}",
            "-m", "koroberta.train.entry", *args]


def format_command(cmd: list[str]) -> str:
    """Shell-quoted command; ``${VAR}`` placeholders stay expandable for the slurm script."""
    out = []
    for c in cmd:
        out.append(f'"{c}"' if "${" in c and not any(ch in c for ch in "\"'`\\") else shlex.quote(c))
    return " ".join(out)
