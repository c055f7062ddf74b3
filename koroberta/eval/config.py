"""``eval:`` section — fine-tune-and-score the HF export on a Korean benchmark task, over several seeds."""

from __future__ import annotations

import dataclasses

from koroberta.config import Config, option

#: task name -> what its files look like (used in --help and in error fixes)
TASKS = {
    "nsmc": "NSMC TSV: header `id<TAB>document<TAB>label`, labels 0/1 (ratings_train.txt / ratings_test.txt)",
    "tsv": "any TSV with a header: one text column and one label column (--text-column, --label-column, --labels)",
    "klue-nli": "KLUE-NLI JSON (klue-nli-v1.1_train.json): a list of objects with premise, hypothesis, gold_label",
    "kornli": "KorNLI TSV (multinli.train.ko.tsv, xnli.dev.ko.tsv): header `sentence1<TAB>sentence2<TAB>gold_label`",
    "klue-sts": "KLUE-STS JSON (klue-sts-v1.1_train.json): a list of objects with sentence1, sentence2 and "
                "labels.real-label in [0, 5]",
    "klue-ner": "KLUE-NER TSV (klue-ner-v1.1_train.tsv): `## <id><TAB><sentence>` then one `<char><TAB><BIO tag>` "
                "line per character, a blank line between sentences",
}


@dataclasses.dataclass
class EvalConfig(Config):
    SECTION = "eval"
    # all identity: every field can move the metrics. threads and eval_batch_size gave byte-identical metrics.json
    # on the tiny test model (1 vs 2 threads; eval batch 1 vs 128), but float reduction order is not guaranteed
    # across thread counts or padded widths on larger models / under autocast, so they stay identity.
    IDENTITY = ("task", "text_column", "label_column", "labels", "max_length", "batch_size", "eval_batch_size",
                "epochs", "lr", "warmup_ratio", "weight_decay", "grad_clip", "seeds", "seed", "dev_fraction",
                "max_train_rows", "max_eval_rows", "device", "precision", "threads", "save_model")
    RUNTIME = ()
    # save_model came after eval outputs existed; off, an eval directory holds what it held before it
    LATER_IDENTITY = {"save_model": False}

    task: str = option("nsmc", choices=tuple(TASKS),
                       help="benchmark task; on the command line it is the subcommand (`koroberta eval klue-nli ...`)")
    text_column: str = option("document", help="tsv task: column holding the text")
    label_column: str = option("label", help="tsv task: column holding the label")
    labels: list[str] = option(default_factory=lambda: ["0", "1"], help="tsv task: the label set, in class-id order")
    max_length: int = option(128, help="truncate inputs to this many tokens (incl. <s> </s>; pairs: both sentences)")
    batch_size: int = option(32, help="training batch size")
    eval_batch_size: int = option(128, help="prediction batch size")
    epochs: int = option(3, help="passes over the training rows, per seed")
    lr: float = option(5e-5, help="peak learning rate (AdamW)")
    warmup_ratio: float = option(0.1, help="fraction of the updates with linear warm-up")
    weight_decay: float = option(0.01, help="AdamW weight decay (not on biases / LayerNorm)")
    grad_clip: float = option(1.0, help="max gradient norm (0 = off)")
    seeds: int = option(3, help="number of fine-tuning runs; the report gives mean ± std over them")
    seed: int = option(42, help="first seed; run i uses seed + i (head init, dropout, batch order)")
    dev_fraction: float = option(0.1, help="without --dev: fraction of the training rows held out as dev set "
                                           "(the same split for every seed)")
    max_train_rows: int = option(0, help="use at most this many training rows (0 = all)")
    max_eval_rows: int = option(0, help="score at most this many rows of each evaluation file (0 = all)")
    device: str = option("auto", choices=("auto", "cpu", "cuda"), help="auto = cuda when available")
    precision: str = option("auto", choices=("auto", "fp32", "bf16", "fp16"),
                            help="auto = fp32 on CPU (deterministic), bf16 on CUDA where supported, else fp16")
    threads: int = option(0, help="torch CPU threads (0 = torch default)")
    save_model: bool = option(False, help="also write the first seed's fine-tuned model (safetensors + tokenizer, "
                                          "loadable with from_pretrained) to OUT/model/")

    def validate(self) -> None:
        self.require(len(self.labels) >= 2 and len(set(self.labels)) == len(self.labels),
                     "labels must list at least two distinct labels")
        self.require(bool(self.text_column) and bool(self.label_column) and self.text_column != self.label_column,
                     "text_column and label_column must be two different column names")
        self.require(self.max_length >= 8, "max_length must be >= 8")
        self.require(self.batch_size >= 1 and self.eval_batch_size >= 1, "batch sizes must be >= 1")
        self.require(self.epochs >= 1, "epochs must be >= 1")
        self.require(self.lr > 0, "lr must be > 0")
        self.require(0.0 <= self.warmup_ratio < 1.0, "warmup_ratio must be in [0, 1)")
        self.require(self.weight_decay >= 0 and self.grad_clip >= 0, "weight_decay and grad_clip must be >= 0")
        self.require(1 <= self.seeds <= 100, "seeds must be between 1 and 100")
        self.require(self.seed >= 0, "seed must be >= 0")
        self.require(0.0 < self.dev_fraction < 1.0, "dev_fraction must be in (0, 1)")
        self.require(self.max_train_rows >= 0 and self.max_eval_rows >= 0, "max_*_rows must be >= 0")
        self.require(self.threads >= 0, "threads must be >= 0")
        self.require(not (self.device == "cpu" and self.precision == "fp16"),
                     "precision fp16 needs CUDA; use fp32 (or bf16) on the CPU")

    @property
    def seed_list(self) -> list[int]:
        return [self.seed + i for i in range(self.seeds)]

    def tsv_task_hint(self, found: str) -> str:
        """How a user of this section's command reads an NSMC-layout file whose labels are ``found`` (as --labels
        takes them): the tsv task, spelled the way that command is typed."""
        return (f"`koroberta eval tsv MODEL_DIR --train FILE [--dev FILE] --labels {found} --out DIR` (the same "
                f"layout; --labels in class-id order)")
