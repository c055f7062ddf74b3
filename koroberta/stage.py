"""The stage contract: every stage package has a ``stage.py`` whose entry point is

    run(cfg: <Stage>Config, inputs: Mapping[str, Path | None], out: Path, *, force: bool = False,
        opts: RunOptions = RunOptions()) -> Manifest

* ``cfg`` is the stage's config dataclass (``koroberta/<stage>/config.py``; identity vs run-time fields there);
* ``inputs`` names the files/directories it reads (the stage module's ``INPUTS`` lists the keys; ``None`` = an
  optional input left out); their *contents* key the completion marker (:mod:`koroberta.artifacts`);
* ``out`` is the output directory, complete (manifest + ``_COMPLETE`` written last) when ``run`` returns;
* the return value is that directory's manifest: ``{"stage", "config", "identity", "inputs", "outputs", "stats"}``;
* a complete output for the same identity and input contents is returned as it is (``force`` redoes it).

``koroberta run`` (:mod:`koroberta.pipeline`) is a walk over :data:`koroberta.pipeline.STEPS`, each a stage name,
its output directory and where its inputs come from. The library functions behind ``run`` (``build_corpus``,
``train_vocab``, ``preprocess``, ``train``, ``convert``, ``finetune``) stay public for the stage CLIs' sub-steps.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

Manifest = dict[str, Any]


@dataclass(frozen=True)
class RunOptions:
    """How to run, never what to make: none of these can change a stage's output bytes."""

    workers: int = 1          # worker processes / threads (corpus, preprocess)
    restart: bool = False     # train: move checkpoints of a different run aside and start over
    extend: bool = False      # train: continue the checkpoints to a raised max_update


def check_inputs(stage: str, inputs: Mapping[str, Path | None], required: tuple[str, ...],
                 optional: tuple[str, ...] = ()) -> dict[str, Path | None]:
    """The stage's inputs as Paths; a missing or unknown key is a programming error (the pipeline wires them)."""
    missing = [k for k in required if inputs.get(k) is None]
    unknown = sorted(set(inputs) - set(required) - set(optional))
    if missing or unknown:
        raise TypeError(f"{stage}.run: inputs missing {missing}, unknown {unknown}")
    return {k: (Path(v) if v is not None else None) for k, v in inputs.items()}
