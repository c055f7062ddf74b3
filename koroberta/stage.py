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
its output directory and where its inputs come from. Every stage package has the same files: ``config.py`` (what to
make), ``stage.py`` (``run``, ``INPUTS``/``OPTIONAL`` and nothing else), ``cli.py`` (thin), and the implementation in
modules named for what they do (``corpus/build.py``, ``spm/train.py``, ``preprocess/build.py``, ``train/launch.py``,
``convert/export.py``; the finetune step is the eval harness, ``eval/benchmark.py``). Those library functions stay
public for the stage CLIs' sub-steps. ``tests/test_stage_contract.py`` checks the layout.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

Manifest = dict[str, Any]


@dataclass(frozen=True)
class RunOptions:
    """How to run, never what to make: none of these can change a stage's output bytes. A stage with options of
    its own subclasses this next to its config (``koroberta.train.config.TrainOptions``)."""

    workers: int = 1          # worker processes / threads (corpus, preprocess); already resolved (never 0)


def check_inputs(stage: str, inputs: Mapping[str, Path | None], required: tuple[str, ...],
                 optional: tuple[str, ...] = (), prefixes: tuple[str, ...] = ()) -> dict[str, Path | None]:
    """The stage's inputs as Paths; a missing or unknown key is a programming error (the pipeline wires them).
    ``prefixes`` declares families of keys ``<prefix>.<anything>`` (the corpus stage's ``source.<name>``, one per
    source of a multi-source run); ``required`` then means required unless a key of such a family is given."""
    family = [k for k in inputs if any(k.startswith(p + ".") for p in prefixes)]
    missing = [] if family else [k for k in required if inputs.get(k) is None]
    unknown = sorted(set(inputs) - set(required) - set(optional) - set(family))
    if missing or unknown:
        raise TypeError(f"{stage}.run: inputs missing {missing}, unknown {unknown}")
    return {k: (Path(v) if v is not None else None) for k, v in inputs.items()}


def manifest_of(stage: str, out: Path) -> Manifest:
    """The manifest of the complete output ``out`` that ``stage`` just made or found. A stage that returns without a
    manifest is a bug, never an empty result: say so instead of handing ``{}`` downstream."""
    from koroberta.artifacts import read_manifest

    m = read_manifest(out)
    if not m:
        raise RuntimeError(f"{stage}.run: {out} has no manifest after the stage returned")
    return m
