"""corpus stage: kowiki dump (or WikiExtractor output / plain text) -> clean, kss-split, document-preserving text.

``build_corpus`` runs extract -> clean (merge + dedup) -> sentences (kss) -> split (train/valid/test by page-id
hash); each sub-step is its own complete-marked directory under ``out_dir`` (see :mod:`koroberta.corpus.steps`).
"""

from __future__ import annotations

from pathlib import Path

from koroberta.corpus.config import CorpusConfig
from koroberta.text import clean_text
from koroberta.errors import OutputError

_OWN = ("extract", "clean", "sentences", "split")


def _check_out_dir(out_dir: Path, overwrite: bool) -> None:
    """``out_dir`` holds only our step directories (or is new); a foreign file there is an error."""
    if not out_dir.exists():
        return
    if not out_dir.is_dir():
        raise OutputError(f"{out_dir}: exists and is not a directory", fix="choose another output directory")
    foreign = sorted(e.name for e in out_dir.iterdir()
                     if not e.name.startswith(".") and not any(e.name == o or e.name.startswith(o + "-") for o in _OWN))
    if foreign and not overwrite:
        raise OutputError(f"{out_dir}: output directory holds files koroberta did not write ({', '.join(foreign[:3])})",
                          fix="choose an empty or new directory (or pass --overwrite to write next to them)")


def build_corpus(cfg: CorpusConfig, source: str | Path, out_dir: str | Path, *, workers: int = 1,
                 force: bool = False, overwrite: bool = False) -> Path:
    """extract -> clean -> sentence split -> train/valid/test; returns the complete ``out_dir/split`` directory
    with ``train.txt``/``valid.txt``/``test.txt`` and manifest stats (documents/sentences/characters per split,
    drop reasons). Completed sub-steps are skipped unless ``force``."""
    from koroberta.corpus import steps

    out = Path(out_dir)
    _check_out_dir(out, overwrite)
    steps.extract(cfg, source, out, workers=workers, force=force, overwrite=overwrite)
    steps.clean(cfg, out, force=force, overwrite=overwrite)
    steps.sentences(cfg, out, workers=workers, force=force, overwrite=overwrite)
    return steps.split(cfg, out, force=force, overwrite=overwrite)


__all__ = ["CorpusConfig", "build_corpus", "clean_text"]
