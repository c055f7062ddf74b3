"""``finetune:`` section — sentence classification on a TSV (NSMC by default) from the HF export."""

from __future__ import annotations

import dataclasses

from koroberta.config import Config, option


@dataclasses.dataclass
class FinetuneConfig(Config):
    SECTION = "finetune"
    # all identity: every field can move the saved model's bytes or the metrics (threads / eval_batch_size: float
    # reduction order is not guaranteed across thread counts or padded widths; see koroberta/eval/config.py)
    IDENTITY = ("task", "text_column", "label_column", "labels", "max_length", "batch_size", "eval_batch_size",
                "epochs", "lr", "warmup_ratio", "weight_decay", "grad_clip", "seed", "dev_fraction",
                "max_train_rows", "max_eval_rows", "device", "threads")
    RUNTIME = ()

    task: str = option("nsmc", choices=("nsmc", "tsv"), help="nsmc: id/document/label TSV with labels 0/1; "
                                                              "tsv: any TSV, columns and labels from the options")
    text_column: str = option("document", help="TSV column holding the text")
    label_column: str = option("label", help="TSV column holding the label")
    labels: list[str] = option(default_factory=lambda: ["0", "1"], help="the label set, in class-id order")
    max_length: int = option(128, help="truncate inputs to this many tokens (incl. <s> </s>)")
    batch_size: int = option(32, help="training batch size")
    eval_batch_size: int = option(128, help="evaluation batch size")
    epochs: int = option(1, help="passes over the training rows")
    lr: float = option(5e-5, help="peak learning rate (AdamW)")
    warmup_ratio: float = option(0.1, help="fraction of the updates with linear warm-up")
    weight_decay: float = option(0.01, help="AdamW weight decay (not on biases / LayerNorm)")
    grad_clip: float = option(1.0, help="max gradient norm (0 = off)")
    seed: int = option(42, help="seed for the split, the head init, dropout and shuffling")
    dev_fraction: float = option(0.1, help="fraction of the train TSV held out as dev set")
    max_train_rows: int = option(0, help="use at most this many training rows (0 = all)")
    max_eval_rows: int = option(0, help="evaluate on at most this many rows (0 = all)")
    device: str = option("auto", choices=("auto", "cpu", "cuda"), help="auto = cuda when available")
    threads: int = option(0, help="torch CPU threads (0 = torch default)")

    def validate(self) -> None:
        self.require(0.0 < self.dev_fraction < 1.0, "dev_fraction must be in (0, 1)")
        self.require(len(self.labels) >= 2 and len(set(self.labels)) == len(self.labels),
                     "labels must list at least two distinct labels")
        self.require(self.max_length >= 8, "max_length must be >= 8")
        self.require(self.batch_size >= 1 and self.eval_batch_size >= 1, "batch sizes must be >= 1")
        self.require(self.epochs >= 1, "epochs must be >= 1")
        self.require(self.lr > 0, "lr must be > 0")
        self.require(0.0 <= self.warmup_ratio < 1.0, "warmup_ratio must be in [0, 1)")
        self.require(self.weight_decay >= 0 and self.grad_clip >= 0, "weight_decay and grad_clip must be >= 0")
        self.require(self.max_train_rows >= 0 and self.max_eval_rows >= 0, "max_*_rows must be >= 0")
        self.require(self.threads >= 0, "threads must be >= 0")
        self.require(bool(self.text_column) and bool(self.label_column) and self.text_column != self.label_column,
                     "text_column and label_column must be two different column names")
