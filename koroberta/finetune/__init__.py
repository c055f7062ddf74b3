"""finetune stage: sentence classification (NSMC or any TSV) on the HF export; accuracy/F1 report."""

from koroberta.finetune.config import FinetuneConfig
from koroberta.finetune.core import finetune, metrics

__all__ = ["FinetuneConfig", "finetune", "metrics"]
