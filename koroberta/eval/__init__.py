"""eval stage: the Korean benchmark harness — NSMC, KLUE-NLI, KorNLI, KLUE-STS and KLUE-NER from local files,
fine-tuned once per seed on the HF export and reported as mean ± std (``metrics.json``, optionally the model card)."""

from koroberta.eval.config import TASKS, EvalConfig
from koroberta.eval.core import run_eval

__all__ = ["TASKS", "EvalConfig", "run_eval"]
