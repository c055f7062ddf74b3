"""``importhf:`` section — Hugging Face model -> fairseq checkpoint + vocabulary."""

from __future__ import annotations

import dataclasses

from koroberta.config import Config, option


@dataclasses.dataclass
class ImportHFConfig(Config):
    SECTION = "importhf"
    # identity: the parity settings are recorded in the manifest next to the figures they produced
    IDENTITY = ("parity", "parity_sentences", "atol")
    RUNTIME = ()

    parity: bool = option(True, help="check fairseq logits against the HF model's on --parity-text (or built-in "
                                     "Korean sentences); needs fairseq")
    parity_sentences: int = option(16, help="sentences whose logits are compared")
    atol: float = option(1e-5, help="max allowed |fairseq logit - HF logit| in fp32")

    def validate(self) -> None:
        self.require(self.parity_sentences > 0, "parity_sentences must be > 0")
        self.require(self.atol > 0, "atol must be > 0")
