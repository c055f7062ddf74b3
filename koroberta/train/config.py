"""``train:`` section — everything that decides the ``fairseq-train`` invocation.

Defaults are the fairseq RoBERTa-base pretraining recipe (examples/roberta/README.pretraining.md): peak lr 5e-4,
10k warmup, 125k updates, 16 sequences x 512 tokens per GPU, update_freq 16 on 8 GPUs = 2048 sequences per update.
A demo overrides the model size (``encoder_layers`` ...) and the schedule.
"""

from __future__ import annotations

import dataclasses
import shlex
from typing import Optional

from koroberta.config import Config, with_fields, option
from koroberta.errors import ConfigError
from koroberta.stage import RunOptions

#: Named recipes: the effective batch (sequences per update) the user promised. Preflight refuses a config whose
#: batch_size x update_freq x world size does not give this, because a silently halved batch (one node of a
#: two-node job failed to come up, update_freq forgotten) changes the optimisation and is found only days later.
RECIPES: dict[str, int] = {
    "base": 2048,          # RoBERTa-base (Liu et al. 2019, sec. 4.1): 2K sequences x 512 tokens
    "koroberta-8k": 8192,  # RoBERTa's 8K-sequence large-batch setting, as KoRoBERTa used it
}

#: fields that fix the parameter shapes: a checkpoint from a run that differs in one of them cannot be resumed
SHAPE_FIELDS = ("arch", "encoder_layers", "encoder_embed_dim", "encoder_ffn_embed_dim", "encoder_attention_heads",
                "max_positions", "layernorm_embedding")

#: options koroberta generates itself; passing them again via extra_args would make the printed command lie
_MANAGED = {"--task", "--criterion", "--arch", "--save-dir", "--tokens-per-sample", "--max-positions",
            "--batch-size", "--max-sentences", "--update-freq", "--lr", "--max-update", "--total-num-update",
            "--warmup-updates", "--seed", "--fp16", "--amp", "--cpu", "--sample-break-mode"}
#: fairseq-train options that load other weights at start: --finetune-from-model is what train.init_from passes (with
#: its content hash in the run identity), and fairseq raises on it together with --restore-file or a --reset-* flag;
#: --continue-once would load its file instead of init_from on the first launch
_INIT_LOADERS = ("--restore-file", "--reset-optimizer", "--reset-lr-scheduler", "--reset-meters", "--reset-dataloader",
                 "--continue-once")


@dataclasses.dataclass
class TrainConfig(Config):
    SECTION = "train"
    # Identity: what decides the trained weights. The effective batch (sequences per update) is identity through
    # derived_identity(); how it is split (batch_size x update_freq x ngpus x nnodes) and how the processes are
    # launched are not, so a run launched by scripts/pretrain.slurm is the same run `koroberta run` finds later.
    # device is where it runs; precision (auto/fp16/amp/fp32) is identity as configured.
    # num_workers is identity: measured, 0 vs 1 loader workers diverge after the first epoch (the worker seeds
    # differ). cpu_threads is identity: torch's CPU kernels reduce in a thread-count-dependent order.
    # Run-time fields: tests/train/test_identity_measured.py trains with all of them changed and compares weights.
    IDENTITY = ("arch", "encoder_layers", "encoder_embed_dim", "encoder_ffn_embed_dim", "encoder_attention_heads",
                "tokens_per_sample", "max_positions", "lr", "warmup_updates", "max_update", "end_learning_rate",
                "adam_betas", "adam_eps", "weight_decay", "dropout", "attention_dropout", "clip_norm", "mask_prob",
                "sample_break_mode", "precision", "cpu_threads", "seed", "num_workers", "extra_args",
                "layernorm_embedding")
    # null passes nothing to fairseq-train, as koroberta did before the field existed
    LATER_IDENTITY = {"layernorm_embedding": None}
    RUNTIME = ("batch_size", "update_freq", "ngpus", "nnodes", "device", "launcher", "master_port", "log_interval",
               "save_interval_updates", "keep_interval_updates", "validate_interval_updates", "recipe",
               "tensorboard", "min_free_disk_gb", "init_from")

    arch: str = option("roberta_base", help="fairseq architecture")
    encoder_layers: Optional[int] = option(None, help="override the arch's layer count (None = arch default)")
    encoder_embed_dim: Optional[int] = option(None, help="override the hidden size (None = arch default)")
    encoder_ffn_embed_dim: Optional[int] = option(None, help="override the FFN size (None = arch default)")
    encoder_attention_heads: Optional[int] = option(None, help="override the head count (None = arch default)")
    layernorm_embedding: Optional[bool] = option(
        None, help="LayerNorm on the embeddings (None = arch default: on, off for roberta_prenorm). true passes "
                   "--layernorm-embedding: a roberta_prenorm model needs it to be exported to Hugging Face")
    tokens_per_sample: int = option(512, help="tokens per sequence (block size)")
    max_positions: int = option(512, help="learned positions in the model; >= tokens_per_sample")
    batch_size: int = option(16, help="sequences per GPU (process) per forward/backward")
    update_freq: int = option(16, help="gradient accumulation steps per update")
    lr: float = option(5e-4, help="peak learning rate")
    warmup_updates: int = option(10000, help="linear warmup updates (polynomial_decay scheduler)")
    max_update: int = option(125000, help="total updates (also the decay horizon, total_num_update)")
    end_learning_rate: float = option(0.0, help="lr at max_update (polynomial decay, power 1)")
    adam_betas: list[float] = option(default_factory=lambda: [0.9, 0.98], help="Adam beta1 beta2")
    adam_eps: float = option(1e-6, help="Adam epsilon")
    weight_decay: float = option(0.01, help="decoupled weight decay")
    dropout: float = option(0.1, help="dropout")
    attention_dropout: float = option(0.1, help="attention dropout")
    clip_norm: float = option(0.0, help="gradient clipping norm (0 = off, the RoBERTa recipe)")
    mask_prob: float = option(0.15, help="fraction of tokens masked (re-sampled every epoch: dynamic masking)")
    sample_break_mode: str = option("complete", choices=["complete", "complete_doc", "none"],
                                    help="how sequences are cut: whole sentences (complete), whole sentences not "
                                         "crossing documents (complete_doc), or fixed blocks (none)")
    precision: str = option("auto", choices=["auto", "fp32", "fp16", "amp"],
                            help="auto = fp16 on CUDA, fp32 on CPU. bf16 is not offered: fairseq-train's --bf16 "
                                 "implies --tpu")
    device: str = option("auto", choices=["auto", "cpu", "cuda"], help="auto = cuda when available")
    ngpus: int = option(1, help="GPUs per node (processes per node on CPU)")
    nnodes: int = option(1, help="nodes")
    launcher: str = option("local", choices=["local", "torchrun", "slurm"],
                           help="local = one fairseq-train process (fairseq spawns one per GPU itself); torchrun = "
                                "one node; slurm = multi-node (srun + torchrun rendezvous)")
    cpu_threads: int = option(0, help="CPU only: OMP threads per fairseq process (0 = torch default). On a busy "
                                      "2-core box 1 thread ran 30 tiny updates in 1.7 s vs 15.7 s with 2")
    master_port: int = option(29500, help="torchrun rendezvous port")
    seed: int = option(1, help="random seed")
    log_interval: int = option(100, help="updates between train_inner log lines")
    save_interval_updates: int = option(2000, help="save a checkpoint every N updates (0 = only per epoch)")
    keep_interval_updates: int = option(3, help="keep the last N update checkpoints (-1 = all)")
    validate_interval_updates: int = option(2000, help="validate every N updates (0 = only per epoch)")
    num_workers: int = option(2, help="data loader workers per process")
    recipe: Optional[str] = option(None, choices=sorted(RECIPES),
                                   help="named recipe whose effective batch preflight checks (None = no check)")
    tensorboard: bool = option(True, help="write tensorboard events to SAVE_DIR/tensorboard")
    min_free_disk_gb: float = option(1.0, help="free space to keep on the save_dir disk beyond the checkpoints")
    # a path, so run-time: the run identity holds the file's sha256 instead (koroberta.train.preflight.run_identity),
    # so moving the file keeps the run and replacing it makes another
    init_from: Optional[str] = option(None, help="fairseq checkpoint to start from (`koroberta import-hf` OUT/"
                                                 "checkpoint.pt, or a checkpoint_last.pt): its weights with a fresh "
                                                 "optimizer, lr schedule and data position; a rerun resumes from "
                                                 "SAVE_DIR/checkpoint_last.pt (None = random init)")
    extra_args: list[str] = option(default_factory=list,
                                   help="extra fairseq-train arguments, appended verbatim: a list (one argument per "
                                        "item) or one string split like a shell command line")

    def __post_init__(self) -> None:
        if isinstance(self.extra_args, str):
            # `extra_args: "--max-epoch 5 --no-progress-bar"` in YAML: the command-line spelling, split like a shell
            try:
                self.extra_args = shlex.split(self.extra_args)
            except ValueError as e:
                raise with_fields(ConfigError(f"{self._section()}: extra_args {self.extra_args!r}: {e} (shell "
                                               f"quoting)", fix="balance the quotes, or give a list with one "
                                                                "argument per item"), ["extra_args"]) from None
        super().__post_init__()

    def validate(self) -> None:
        r = self.require
        r(self.tokens_per_sample >= 8, f"tokens_per_sample={self.tokens_per_sample} must be >= 8")
        r(self.tokens_per_sample <= self.max_positions,
          f"tokens_per_sample={self.tokens_per_sample} > max_positions={self.max_positions}: the model has no "
          f"position embedding for tokens beyond {self.max_positions}; raise max_positions or lower tokens_per_sample")
        for name in ("encoder_layers", "encoder_embed_dim", "encoder_ffn_embed_dim", "encoder_attention_heads"):
            v = getattr(self, name)
            r(v is None or v >= 1, f"{name}={v} must be >= 1 (or null for the arch default)")
        if self.encoder_embed_dim and self.encoder_attention_heads:
            r(self.encoder_embed_dim % self.encoder_attention_heads == 0,
              f"encoder_embed_dim={self.encoder_embed_dim} is not divisible by "
              f"encoder_attention_heads={self.encoder_attention_heads}")
        # fairseq-train has only the store_true --layernorm-embedding, and every arch but roberta_prenorm defaults to
        # it on: false cannot be expressed there, and passing nothing would train a model the config did not ask for
        r(self.layernorm_embedding is not False or self.arch == "roberta_prenorm",
          f"layernorm_embedding=false with arch {self.arch}: fairseq-train cannot turn the embedding LayerNorm off "
          f"(only roberta_prenorm trains without it); use null (the arch's default) or true", ["layernorm_embedding"])
        r(self.layernorm_embedding is not False or "--layernorm-embedding" not in self.extra_args,
          "layernorm_embedding=false but extra_args has --layernorm-embedding; drop one of them",
          ["layernorm_embedding", "extra_args"])
        r(self.batch_size >= 1, "batch_size must be >= 1")
        r(self.update_freq >= 1, "update_freq must be >= 1")
        r(self.lr > 0, f"lr={self.lr} must be > 0")
        r(self.max_update >= 1, "max_update must be >= 1")
        r(0 <= self.warmup_updates < self.max_update,
          f"warmup_updates={self.warmup_updates} must be >= 0 and < max_update={self.max_update}")
        r(0 <= self.end_learning_rate < self.lr, "end_learning_rate must be >= 0 and < lr")
        r(len(self.adam_betas) == 2 and all(0 <= b < 1 for b in self.adam_betas),
          f"adam_betas={self.adam_betas} must be two numbers in [0, 1)")
        r(self.adam_eps > 0, "adam_eps must be > 0")
        r(self.weight_decay >= 0, "weight_decay must be >= 0")
        for name in ("dropout", "attention_dropout"):
            r(0 <= getattr(self, name) < 1, f"{name}={getattr(self, name)} must be in [0, 1)")
        r(self.clip_norm >= 0, "clip_norm must be >= 0 (0 = off)")
        r(0 < self.mask_prob < 1, "mask_prob must be in (0, 1)")
        r(self.ngpus >= 1 and self.nnodes >= 1, "ngpus and nnodes must be >= 1")
        r(self.nnodes == 1 or self.launcher == "slurm",
          f"nnodes={self.nnodes} needs launcher: slurm (local and torchrun start processes on one node only)")
        r(not (self.precision in ("fp16", "amp") and self.device == "cpu"),
          f"precision={self.precision} needs CUDA but device=cpu; use precision: fp32 (or auto) on CPU")
        r(1 <= self.master_port <= 65535, "master_port must be in 1..65535")
        r(self.log_interval >= 1, "log_interval must be >= 1")
        for name in ("save_interval_updates", "validate_interval_updates"):
            r(getattr(self, name) >= 0, f"{name} must be >= 0 (0 = only per epoch)")
        r(self.keep_interval_updates >= -1 and self.keep_interval_updates != 0,
          "keep_interval_updates must be >= 1 (or -1 to keep all)")
        r(self.num_workers >= 0, "num_workers must be >= 0")
        r(self.cpu_threads >= 0, "cpu_threads must be >= 0 (0 = torch default)")
        r(self.min_free_disk_gb >= 0, "min_free_disk_gb must be >= 0")
        r(self.init_from is None or self.init_from.strip() != "", "init_from is empty: give a checkpoint path, or "
                                                                   "null to start from random weights")
        for a in self.extra_args:
            flag = a.split("=", 1)[0]
            r(flag != "--finetune-from-model", f"extra_args {a}: set train.init_from instead (koroberta passes "
                                               f"--finetune-from-model for it and checks the checkpoint)",
              ["extra_args"])
            r(not (self.init_from and flag in _INIT_LOADERS),
              f"extra_args {a} with init_from: "
              + ("it would load its checkpoint instead of init_from" if flag == "--continue-once" else
                 f"fairseq refuses {flag} together with --finetune-from-model, which init_from passes")
              + " (init_from starts from fresh optimizer, lr schedule and data position already)",
              ["extra_args", "init_from"])
            # fields=: the message names other keys (train.max_update) that are not what is wrong here
            r(flag not in ("--bf16", "--tpu"), f"extra_args {a}: fairseq-train's --bf16 implies --tpu (it would "
                                               f"not run on GPU); use precision: fp16 or amp", ["extra_args"])
            r(flag not in _MANAGED, f"extra_args {a}: set it with the train.{flag[2:].replace('-', '_')} key "
                                    f"instead (koroberta builds that option itself)", ["extra_args"])
            # `- "--max-epoch 5"` in YAML is ONE argv word for fairseq, which it reports as unrecognized
            r(not (flag.startswith("-") and len(flag.split()) > 1),
              f"extra_args item {a!r} holds a space: fairseq would get it as one word; give each argument as its "
              f"own list item ({', '.join(map(repr, flag.split()))}, ...) or one string for the whole line "
              f"(extra_args: \"{a}\")", ["extra_args"])

    @property
    def world_size(self) -> int:
        return self.ngpus * self.nnodes

    def derived_identity(self) -> dict[str, object]:
        return {"sequences_per_update": self.batch_size * self.update_freq * self.world_size}

    def shape(self) -> dict[str, object]:
        return {k: getattr(self, k) for k in SHAPE_FIELDS}


@dataclasses.dataclass(frozen=True)
class TrainOptions(RunOptions):
    """The train stage's run-time options (``koroberta run --restart/--extend``): what to do with checkpoints that
    are there already, never what to make."""

    restart: bool = False     # move checkpoints of a different run aside and start over
    extend: bool = False      # continue the checkpoints to a raised max_update
