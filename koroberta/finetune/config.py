"""``finetune:`` section -- the pipeline's finetune step, which is the eval harness's nsmc (or tsv) task.

Every field, its meaning, its checks and its identity class are :class:`~koroberta.eval.config.EvalConfig`'s; only
the defaults the finetune step had before it ran on the harness differ (configs written for it keep meaning what
they meant), and the task is one of the two sentence-classification ones.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from koroberta.config import option
from koroberta.eval.config import EvalConfig

#: the tasks the finetune step runs: sentence classification, the one kind whose fine-tuned model it ships
FINETUNE_TASKS = ("nsmc", "tsv")
#: what the nsmc task reads, whatever text_column / label_column / labels say (those are the tsv task's)
_NSMC_FIXED = {"text_column": "document", "label_column": "label", "labels": ["0", "1"]}


def _eval_field(name: str, default: Any, **changes: Any) -> Any:
    """EvalConfig's field ``name`` with another default (and ``changes`` to its help/choices)."""
    (f,) = [f for f in dataclasses.fields(EvalConfig) if f.name == name]
    md = {**f.metadata, **changes}
    return option(default, help=md["help"], choices=md["choices"], cli=md["cli"])


@dataclasses.dataclass
class FinetuneConfig(EvalConfig):
    SECTION = "finetune"

    task: str = _eval_field("task", "nsmc", choices=FINETUNE_TASKS,
                            help="nsmc: id/document/label TSV with labels 0/1; tsv: any TSV, columns and labels from "
                                 "text_column / label_column / labels (on the command line: the subcommand)")
    epochs: int = _eval_field("epochs", 1)
    seeds: int = _eval_field("seeds", 1)
    save_model: bool = _eval_field("save_model", True)

    def validate(self) -> None:
        super().validate()
        if self.task == "nsmc":
            # the old finetune step read these for nsmc too; the harness's nsmc task does not, so say so rather
            # than read the file with NSMC's columns behind the user's back
            changed = [k for k, v in _NSMC_FIXED.items() if getattr(self, k) != v]
            self.require(not changed, f"{', '.join(changed)} set with task nsmc, whose columns and labels are "
                                      f"NSMC's (document, label, 0/1); set `task: tsv` to read another layout",
                         fields=changed)

    def tsv_task_hint(self, found: str) -> str:
        return (f"`koroberta finetune tsv MODEL_DIR TRAIN_TSV OUT --labels {found}` (the same layout; in a "
                f"`koroberta run` config: `task: tsv` and `labels: [{found.replace(' ', ', ')}]` in its finetune: "
                f"section)")
