"""Read NSMC-format / generic TSV files (the eval harness's strict TSV reader) into texts + class ids."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from koroberta.eval.readers import read_single_tsv
from koroberta.finetune.config import FinetuneConfig

NSMC_LAYOUT = "NSMC layout: a header line `id<TAB>document<TAB>label`, then one review per line (labels 0/1)"


@dataclass(frozen=True)
class Rows:
    texts: list[str]
    labels: list[int]  # class ids (index into cfg.labels)


def read_tsv(path: str | Path, cfg: FinetuneConfig, cache_dir: Path | None = None) -> Rows:
    """Rows of ``path``; errors name the file, the line and the fix. ``cache_dir`` is unused (kept for callers of
    the earlier ``datasets``-based reader, which cached Arrow files there).

    NSMC text contains bare double quotes (``"재밌다"고``), so quoting is off; empty documents (NSMC has a few) are
    kept as empty strings.
    """
    if cfg.task == "nsmc":
        layout = NSMC_LAYOUT
        column_fix = "use the NSMC header line `id<TAB>document<TAB>label`"
        # `finetune nsmc` has no --labels option: name the subcommand (and the config key) that takes other labels
        label_fix = (lambda found: f"correct or delete that line; for labels other than {', '.join(cfg.labels)} use "
                                   f"`koroberta finetune tsv MODEL_DIR TRAIN_TSV OUT --labels {found}` (the same "
                                   f"layout; in a `koroberta run` config: `labels: [{found.replace(' ', ', ')}]` in "
                                   f"its finetune: section)")
    else:
        label_fix = None
        layout = f"TSV layout: a header line naming '{cfg.text_column}' and '{cfg.label_column}', then one row per line"
        column_fix = (f"add a header with '{cfg.text_column}' and '{cfg.label_column}' or pass "
                      "--text-column/--label-column")
    d = read_single_tsv(path, cfg.text_column, cfg.label_column, cfg.labels, layout=layout, column_fix=column_fix,
                        label_fix=label_fix)
    return Rows(texts=d.text, labels=d.target)
