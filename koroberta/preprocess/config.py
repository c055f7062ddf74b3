"""``preprocess:`` section — encoding + binarisation options (worker count is a caller argument)."""

from __future__ import annotations

import dataclasses

from koroberta.config import Config, option


@dataclasses.dataclass
class PreprocessConfig(Config):
    """How ``koroberta preprocess`` turns split text into a fairseq data-bin."""

    SECTION = "preprocess"
    # method: fused and fairseq write byte-identical .bin/.idx (tests/preprocess); chunk_lines only bounds memory;
    # max_line_tokens only counts/warns. keep_encoded adds <split>.spm files, so it is identity here -- but training
    # fingerprints only dict.txt/*.bin/*.idx, so toggling it never touches checkpoints.
    # shards decides which files hold which train lines (and where valid lives), so it is identity; data-bins made
    # before it existed are the one-directory layout, shards: 1, whose identity must not change (tests pin it)
    IDENTITY = ("bad_lines", "keep_encoded", "shards")
    RUNTIME = ("method", "chunk_lines", "max_line_tokens")
    LATER_IDENTITY = {"shards": 1}

    method: str = option("fused", help="fused: token ids (spm, or an imported HF tokenizer) written straight to "
                                       "fairseq's mmap .bin/.idx (byte-identical to fairseq-preprocess, ~10x "
                                       "faster); fairseq: piece text + fairseq-preprocess",
                         choices=("fused", "fairseq"))
    chunk_lines: int = option(20000, help="lines per tokenizer batch call (bounds memory)")
    max_line_tokens: int = option(1024, help="warn about (and count) lines with more pieces than this")
    bad_lines: str = option("repair", help="control characters / odd whitespace / non-UTF-8 bytes / literal fairseq "
                                           "special tokens: repair (counted in the manifest) or error",
                            choices=("repair", "error"))
    keep_encoded: bool = option(False, help="also keep the encoded piece text (<split>.spm) in the output")
    shards: int = option(1, help="1: one data-bin directory; N > 1: shard0/ .. shard{N-1}/, each a fairseq data-bin "
                                 "with dict.txt and a part of train (documents assigned by a hash of their text), "
                                 "valid/test in shard0; fairseq-train loads one shard per epoch, so a node holds "
                                 "1/N of train in memory")

    def validate(self) -> None:
        self.require(self.chunk_lines >= 1, "chunk_lines must be >= 1")
        self.require(self.max_line_tokens >= 1, "max_line_tokens must be >= 1")
        self.require(self.shards >= 1, "shards must be >= 1 (1 = one data-bin directory)")
