"""Configuration of the corpus stage (YAML section ``corpus:``)."""

from __future__ import annotations

import dataclasses
from typing import Any, Optional

from koroberta.config import Config, option
from koroberta.encoding import UTF8, codec_name
from koroberta.errors import ConfigError

BACKENDS = ("punct", "fast", "pecab", "mecab")
#: how a plain-text source is cut into documents: "blank" = a blank line between documents (the single-source rule),
#: "line" = every non-empty line is a document of its own (reviews, comments, one sentence per line)
DOCUMENTS = ("blank", "line")
#: source kinds whose default filter profile is "wiki" (curated encyclopedia text); every other kind gets "web"
WIKI_KINDS = ("dump", "wikiextractor")
#: the keys of one item of the top-level `sources:` list
SOURCE_KEYS = ("name", "path", "weight", "profile", "documents")
_BAD_NAME_CHARS = ",:/"


@dataclasses.dataclass
class CorpusConfig(Config):
    """extract -> clean -> sentence split -> train/valid/test split."""

    SECTION = "corpus"
    # Every field shapes the text (report adds report.md/PNGs to the split directory). The worker count is not a
    # field: it is passed per call and the output is byte-identical for any count (tests/corpus/test_build.py).
    # encoding decides which text the source's bytes are, so it is identity like the rest.
    IDENTITY = ("encoding", "dbname", "keep_disambiguation", "drop_sections", "normalization", "min_chars",
                "min_line_chars", "dedup", "backend", "valid_fraction", "test_fraction", "split_salt", "report",
                "sources", "near_dedup", "special_literals", "documents")
    # keep_intermediates decides what stays on disk after the stage, never what split/ holds
    RUNTIME = ("keep_intermediates",)
    # corpora built before `encoding` existed were read as UTF-8; before `sources`/`near_dedup` a corpus had one
    # source and exact dedup only. identity() resolves near_dedup=null first (off for one source), so a single-source
    # run keeps its pinned identity hash (tests/test_identity.py).
    # documents: "blank" is how plain text was read before the field existed
    LATER_IDENTITY = {"encoding": UTF8, "sources": [], "near_dedup": False, "special_literals": [],
                      "documents": "blank"}

    # extract
    encoding: str = option(UTF8, help="text encoding of a plain-text / WikiExtractor source: utf-8 (checked: CP949, "
                                      "EUC-KR and UTF-16 are refused with the iconv command that converts them) or "
                                      "the Python codec to convert from while reading, e.g. cp949, euc-kr, utf-16")
    documents: str = option("blank", help="how a plain-text `source:` is cut into documents: blank (a blank line "
                                          "between documents) or line (every non-empty line is one: reviews, "
                                          "comments, sentences); with `sources:`, each source's own `documents:`",
                            choices=DOCUMENTS)
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
    special_literals: list[str] = option(
        default_factory=list,
        help="literal strings removed from the text besides <s> <pad> </s> <unk> <mask>: the special tokens of an "
             "imported HF tokenizer ([CLS], [MASK] ...), which it would read as special ids (`koroberta run` fills it "
             "from init_from_hf)")
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
    keep_intermediates: bool = option(
        False, help="keep extract/, clean/ and sentences/ data once split/ is complete (otherwise removed then, "
                    "keeping their manifests; a later change that needs them redoes them)")
    # several sources (the top-level `sources:` of a run config)
    sources: list[dict] = option(
        default_factory=list, cli=False,
        help="filled from the top-level `sources:` list (do not write it here): each source's name, weight, "
             "resolved filter profile and document rule, in priority order; never its path (the path's content is a "
             "stage input)")
    near_dedup: Optional[bool] = option(
        None, cli=False,
        help="drop near-duplicate documents (MinHash LSH, ~70% similar shingles) across sources, keeping the one of "
             "the higher-priority source; null = on when top-level `sources:` is used, off for a single `source:`")

    def validate(self) -> None:
        # the codec's canonical name ("CP949", "cp-949" -> "cp949"): spellings of one codec are one identity
        self.encoding = codec_name(self.encoding, option="corpus.encoding")
        self.require(self.min_chars >= 0, "min_chars must be >= 0")
        self.require(self.min_line_chars >= 0, "min_line_chars must be >= 0")
        self.require(all(isinstance(x, str) and x and not any(c.isspace() for c in x) for x in self.special_literals),
                     "special_literals must be non-empty strings without whitespace")
        self.require(0.0 <= self.valid_fraction < 1.0, "valid_fraction must be in [0, 1)")
        self.require(0.0 <= self.test_fraction < 1.0, "test_fraction must be in [0, 1)")
        self.require(self.valid_fraction + self.test_fraction < 1.0, "valid_fraction + test_fraction must be < 1")
        # one rule per source: with `sources:` each item says its own, and a corpus-wide value would be ignored
        self.require(not (self.sources and self.documents != "blank"),
                     f"documents={self.documents!r} is for a single `source:`; with `sources:` set `documents:` on "
                     "each plain-text source", fields=("documents",))
        for i, item in enumerate(self.sources):
            self.require(isinstance(item, dict) and {"name", "weight", "profile", "documents"} <= set(item),
                         f"sources[{i}] must be a mapping with name, weight, profile, documents (the pipeline fills "
                         "it from the top-level `sources:`)", fields=("sources",))

    @property
    def near_dedup_on(self) -> bool:
        """near_dedup with null resolved: on for a multi-source corpus, off for a single source."""
        return bool(self.sources) if self.near_dedup is None else self.near_dedup

    def identity(self) -> dict[str, Any]:
        # null and the value it stands for are one output: the identity holds the resolved value, so writing the
        # default out explicitly reruns nothing (and a single source's null is False: left out, as before it existed)
        if self.near_dedup is None:
            return dataclasses.replace(self, near_dedup=self.near_dedup_on).identity()
        return super().identity()

    def part(self, *names: str) -> dict:
        """The config fields one sub-step depends on (its manifest key: other fields do not invalidate it)."""
        d = self.to_dict()
        d["near_dedup"] = self.near_dedup_on
        return {k: d[k] for k in names if not self.at_later_default(k, d[k])}

    def source_spec(self, name: str) -> dict:
        return next(s for s in self.sources if s["name"] == name)


EXTRACT_FIELDS = ("encoding", "documents", "dbname", "keep_disambiguation", "drop_sections", "normalization",
                  "min_line_chars", "min_chars", "special_literals")
CLEAN_FIELDS = ("dedup", "near_dedup")
SENTENCE_FIELDS = ("backend",)
SPLIT_FIELDS = ("valid_fraction", "test_fraction", "split_salt", "report")


def check_source_name(name: Any, where: str) -> str:
    """A source name: it prefixes document ids (``<name>/<id>``) and names the ``extract-<name>/`` directory and the
    ``source.<name>`` stage input, so it must be a non-empty string without ``,`` ``:`` ``/``."""
    if not isinstance(name, str) or not name.strip():
        raise ConfigError(f"{where}: `name` is missing or empty", fix="give every source a short name, e.g. kowiki")
    bad = sorted({c for c in name if c in _BAD_NAME_CHARS or c.isspace()})
    if bad:
        raise ConfigError(f"{where}: name {name!r} contains {' '.join(repr(c) for c in bad)}",
                          fix="use letters, digits, '-', '_' or '.' (the name prefixes document ids and names a "
                              "directory)")
    return name


def resolve_sources(items: Any, *, min_chars: int, kinds: dict[str, str | None]) -> list[dict]:
    """The identity entries of a top-level ``sources:`` list, in priority order: ``{name, weight, profile, documents}``
    with ``profile`` the resolved filter settings (:func:`koroberta.corpus.filters.make_profile`; ``wiki`` takes
    ``corpus.min_chars``). ``kinds`` maps a source's path to its detected kind (None: path not there yet); the default
    profile is ``wiki`` for dumps and WikiExtractor output and ``web`` for every other kind, left None while the kind
    is unknown (the run refuses a missing path before any work). Every problem is a one-line :class:`ConfigError`
    naming the source."""
    from koroberta.corpus.filters import make_profile

    if not isinstance(items, list) or not items:
        raise ConfigError("`sources:` must be a non-empty list of {name, path, weight, profile, documents}",
                          fix="list each source as `- {name: kowiki, path: dump.xml.bz2}`")
    out: list[dict] = []
    seen: set[str] = set()
    for i, item in enumerate(items):
        where = f"sources[{i}]"
        if not isinstance(item, dict):
            raise ConfigError(f"{where} must be a mapping, got {item!r}",
                              fix="write it as `- {name: NAME, path: PATH}`")
        name = check_source_name(item.get("name"), where)
        where = f"source {name!r}"
        unknown = sorted(set(item) - set(SOURCE_KEYS))
        if unknown:
            raise ConfigError(f"{where}: unknown key(s) {', '.join(map(str, unknown))}; valid keys: "
                              f"{', '.join(SOURCE_KEYS)}", fix="remove or rename it")
        if name in seen:
            raise ConfigError(f"{where}: two sources are named {name!r}",
                              fix="give each source its own name (it prefixes the document ids)")
        seen.add(name)
        path = item.get("path")
        if not isinstance(path, str) or not path.strip():
            raise ConfigError(f"{where}: `path` is missing or empty",
                              fix="set `path:` to the source's file or directory")
        weight = item.get("weight", 1.0)
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or weight != weight:
            raise ConfigError(f"{where}: weight must be a number, got {weight!r}",
                              fix="set weight to a number >= 0 (1 = every train document once)")
        if weight < 0:
            raise ConfigError(f"{where}: weight {weight} is negative",
                              fix="set weight >= 0 (0 = none of its train documents, 2 = each twice)")
        documents = item.get("documents", "blank")
        if documents not in DOCUMENTS:
            raise ConfigError(f"{where}: documents {documents!r} is not one of {', '.join(DOCUMENTS)}",
                              fix="documents: blank (a blank line between documents) or line (one per line)")
        kind = kinds.get(path)
        if "documents" in item and kind is not None and kind != "text":
            raise ConfigError(f"{where}: `documents:` applies to plain text, and this source is {kind}",
                              fix="remove `documents:` from this source")
        prof = item.get("profile")
        overrides: dict = {}
        if isinstance(prof, dict):  # {name: web, min_chars: 20}: a profile with some settings changed
            overrides = {k: v for k, v in prof.items() if k != "name"}
            prof = prof.get("name")
        if prof is None and kind is not None:
            prof = "wiki" if kind in WIKI_KINDS else "web"
        try:
            resolved = None if prof is None else make_profile(prof, overrides, wiki_min_chars=min_chars).to_dict()
        except ConfigError as e:
            raise ConfigError(f"{where}: {e}") from None  # its message already ends with the fix
        out.append({"name": name, "weight": float(weight), "profile": resolved, "documents": documents})
    return out
