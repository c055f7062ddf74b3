"""``convert:`` section — fairseq checkpoint -> Hugging Face export."""

from __future__ import annotations

import dataclasses

from koroberta.config import Config, option
from koroberta.errors import ConfigError


@dataclasses.dataclass
class ConvertConfig(Config):
    SECTION = "convert"
    # all identity: the parity settings and figures are written into the model card (README.md)
    IDENTITY = ("dtype", "parity", "parity_lines", "parity_sentences", "atol", "model_name", "language", "license",
                "data_description")
    RUNTIME = ()

    dtype: str = option("fp32", choices=("fp32", "fp16"), help="dtype of model.safetensors (parity is always checked in fp32)")
    parity: bool = option(True, help="check HF vs fairseq logits and token ids; --no-parity is required when fairseq "
                                     "is not installed")
    parity_lines: int = option(1000, help="non-blank lines of --parity-text whose HF token ids must equal fairseq's")
    parity_sentences: int = option(16, help="sentences whose logits are compared between fairseq and HF")
    atol: float = option(1e-5, help="max allowed |HF logit - fairseq logit| in fp32")
    model_name: str = option("koroberta", help="model name for the model card")
    language: str = option("ko", help="model card language tag")
    license: str = option("cc-by-sa-4.0", help="model card licence (kowiki text is CC BY-SA 4.0)")
    data_description: str = option("Korean Wikipedia (kowiki dump), cleaned and kss sentence-split",
                                    help="model card: what the model was pretrained on")

    def validate(self) -> None:
        self.require(self.parity_lines >= 0, "parity_lines must be >= 0")
        self.require(self.parity_sentences >= 0, "parity_sentences must be >= 0")
        self.require(self.atol > 0, "atol must be > 0")
        self.require(not self.parity or self.parity_sentences > 0,
                     "parity_sentences must be > 0 when parity is on (use --no-parity to skip the check)")
        if self.parity and self.parity_lines == 0:
            # an export marked checked whose token ids were never compared is worse than one marked unchecked
            raise ConfigError("convert: parity_lines 0 skips the token-id check that parity promises",
                              fix="give parity_lines > 0 (the default is 1000), or use --no-parity (parity: false) "
                                  "to export UNCHECKED")
