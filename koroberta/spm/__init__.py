"""spm stage: SentencePiece vocabulary whose ids line up with fairseq's dict and the HF tokenizer (layout.py)."""

from koroberta.spm.config import SpmConfig
from koroberta.spm.legacy import import_legacy
from koroberta.spm.train import train_vocab

__all__ = ["SpmConfig", "train_vocab", "import_legacy"]
