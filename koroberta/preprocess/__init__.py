"""preprocess stage: split text -> spm ids -> fairseq mmap data-bin (fused writer, fairseq-preprocess reference)."""

from koroberta.preprocess.config import PreprocessConfig
from koroberta.preprocess.stage import binarize, encode_file, preprocess

__all__ = ["PreprocessConfig", "preprocess", "encode_file", "binarize"]
