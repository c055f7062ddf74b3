"""Configuration of the corpus stage (YAML section ``corpus:``)."""

from __future__ import annotations

import dataclasses

from koroberta.config import Config, option
from koroberta.encoding import UTF8, codec_name

BACKENDS = ("punct", "fast", "pecab", "mecab")


@dataclasses.dataclass
class CorpusConfig(Config):
    """extract -> clean -> sentence split -> train/valid/test split."""

    SECTION = "corpus"
    # Every field shapes the text (report adds report.md/PNGs to the split directory). The worker count is not a
    # field: it is passed per call and the output is byte-identical for any count (tests/corpus/test_build.py).
    # encoding decides which text the source's bytes are, so it is identity like the rest.
    IDENTITY = ("encoding", "dbname", "keep_disambiguation", "drop_sections", "normalization", "min_chars",
                "min_line_chars", "dedup", "backend", "valid_fraction", "test_fraction", "split_salt", "report")
    RUNTIME = ()
    LATER_IDENTITY = {"encoding": UTF8}  # corpora built before `encoding` existed were read as UTF-8

    # extract
    encoding: str = option(UTF8, help="text encoding of a plain-text / WikiExtractor source: utf-8 (checked: CP949, "
                                      "EUC-KR and UTF-16 are refused with the iconv command that converts them) or "
                                      "the Python codec to convert from while reading, e.g. cp949, euc-kr, utf-16")
    dbname: str = option("kowiki", help="expected <dbname> of the dump; another wiki is an error ('' = accept any, warn)")
    keep_disambiguation: bool = option(False, help="keep disambiguation (동음이의) pages")
    drop_sections: list[str] = option(
        default_factory=lambda: ["각주", "주석", "출처", "참고 문헌", "참고문헌", "외부 링크", "같이 보기", "관련 항목",
                                 "References", "External links", "See also", "Notes"],
        help="sections (heading text) whose whole body is dropped: reference lists and link lists, not prose")
    # extract: cleaning each page
    normalization: str = option("NFC", help="Unicode normal form of the corpus text (spm applies nmt_nfkc itself)",
                                choices=("NFC", "NFKC", "none"))
    min_chars: int = option(100, help="drop documents with fewer characters (after cleaning)")
    min_line_chars: int = option(2, help="drop lines (paragraphs) shorter than this")
    # clean: merge the extract shards
    dedup: bool = option(True, help="drop exact-duplicate documents (same cleaned text), keeping the first")
    # sentence split
    backend: str = option("punct", help="kss sentence-split backend (measured: bench/results/corpus.md)",
                          choices=BACKENDS)
    # train/valid/test
    valid_fraction: float = option(0.005, help="fraction of documents in valid.txt")
    test_fraction: float = option(0.005, help="fraction of documents in test.txt")
    split_salt: str = option("koroberta", help="salt of the document hash that assigns train/valid/test")
    report: bool = option(True, help="write report.md and length histograms (PNG) next to the split")

    def validate(self) -> None:
        # the codec's canonical name ("CP949", "cp-949" -> "cp949"): spellings of one codec are one identity
        self.encoding = codec_name(self.encoding, option="corpus.encoding")
        self.require(self.min_chars >= 0, "min_chars must be >= 0")
        self.require(self.min_line_chars >= 0, "min_line_chars must be >= 0")
        self.require(0.0 <= self.valid_fraction < 1.0, "valid_fraction must be in [0, 1)")
        self.require(0.0 <= self.test_fraction < 1.0, "test_fraction must be in [0, 1)")
        self.require(self.valid_fraction + self.test_fraction < 1.0, "valid_fraction + test_fraction must be < 1")

    def part(self, *names: str) -> dict:
        """The config fields one sub-step depends on (its manifest key: other fields do not invalidate it)."""
        d = self.to_dict()
        return {k: d[k] for k in names if not self.at_later_default(k, d[k])}


EXTRACT_FIELDS = ("encoding", "dbname", "keep_disambiguation", "drop_sections", "normalization", "min_line_chars",
                  "min_chars")
CLEAN_FIELDS = ("dedup",)
SENTENCE_FIELDS = ("backend",)
SPLIT_FIELDS = ("valid_fraction", "test_fraction", "split_salt", "report")
