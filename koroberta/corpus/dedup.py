r"""Exact and near-duplicate detection for a corpus built from several sources (issue 22).

The corpus stage feeds documents in one deterministic priority order (source priority, then source order) and asks,
per document, :class:`ExactDedup` and then :class:`NearDedup` whether an earlier document already holds it: the first
of a group survives, whatever its source. Every figure below comes from ``bench/dedup_bench.py`` on real data (23,381
kowiki articles of one WikiExtractor shard, 150,000 NSMC-format reviews); the tables are in bench/results/dedup.md.

Normalisation (:func:`normalize`; decontamination uses it too)
    NFKC, case-folded, every run of non-word characters (``[^\w\s]``: punctuation, symbols such as ``~ ^ ♥``,
    combining marks) and of whitespace one space. On the reviews, raw text finds 3,798 exact duplicates, NFKC +
    casefold + whitespace 3,818, punctuation as space 5,266, all non-word characters as space 5,618 (+48 % over raw).
    What the two last steps merge are the same review written twice (``진짜 최고!!`` = ``진짜 최고``, ``재밌다^^`` =
    ``재밌다``, ``최고`` = ``최고~``), not different texts: the share of merged reviews whose sentiment label differs
    from their group's first is 7.1 % (punctuation step) and 7.8 % (symbol step), below the 10.5 % of byte-identical
    reviews (label noise). On kowiki every level finds the same 2 duplicates, so nothing distinct is merged there.
    Symbols go with punctuation also because ``[^\w\s]`` is the cheaper class: 2.9 against 7.9 CPU-s to normalise
    the 23,381 articles with a class of the 819 punctuation code points.

Exact dedup (:func:`dedup_key`, :class:`ExactDedup`)
    The key is the 128-bit BLAKE2b digest of the normalised text (a collision among 10^9 documents has probability
    ~10^-21); the index keeps the 16 digest bytes and ``(source, doc)`` per distinct document:
    :data:`EXACT_BYTES_PER_DOC` bytes measured, so 16 GB holds over 100 million documents.

Near dedup (:class:`NearDedup`): MinHash LSH from datasketch
    * Shingles: character 3-grams of the normalised text (spaces kept), chosen by measurement against 4- and
      5-grams, eojeol 2-grams and kiwipiepy morpheme 2/3-grams (bench (c): 300 articles and 1,500 reviews with one
      edited copy per edit rate; 1,500 articles and 9,852 reviews unplanted). Caught at 1/3/5/10 % character edits:
      char 3-grams articles 99/96/84/6 %, reviews 95/95/77/13 %; char 5-grams 91/72/18/0 and 68/64/25/3; morpheme
      2-grams 91/74/21/3 and 79/75/46/8. Unplanted pairs confirmed: char 3-grams 6, all templated stubs with a
      difflib ratio >= 0.88; morpheme 2-grams 20, 6 of them below 0.8 (``CJ, Cj, cj는 다음 뜻을 ...`` ~ ``DU, Du, du는
      ...``). Morphemes also cost kiwipiepy (95 % of their CPU time): 45-53 articles/s against 1,300-1,600 for
      characters. Characters win on recall, precision and speed, so the library has no kiwipiepy dependency (the
      bench uses it).
      3-grams beat 5-grams because an edit changes n shingles: 3 % edits leave a true Jaccard of 0.85 with 3-grams.
    * Shingle hash: a polynomial hash of the n code points finished by splitmix64 and cut to 32 bits, one numpy
      pass per document; datasketch's default (SHA-1 of every shingle) is 2.6x (articles) to 4.5x (reviews) slower
      for the same MinHash (bench (f)). The MinHash itself is datasketch's (``affine32``, 14 x 8 = 112 seeded
      permutations).
    * LSH: 14 bands x 8 rows (datatrove's): a pair becomes a candidate with probability 1 - (1 - J^8)^14, 50 % at
      J ~ 0.72 and 92 % at J = 0.8.
    * Confirmation: estimated Jaccard (``MinHash.jaccard``) >= 0.7, the lowest threshold at which no confirmed pair
      of 20,000 real documents is a non-duplicate by either independent check (bench (b): at 0.65, 35 pairs have a
      true 3-gram Jaccard < 0.6 and 21 a difflib ratio < 0.8; at 0.7 none). 0.8 would cost recall at 5 % edits:
      82 -> 31 % (articles), 78 -> 39 % (reviews). The estimate's standard error, sqrt(J(1 - J) / 112), is 0.045
      at J = 0.65, so pairs with a true Jaccard just under 0.7 pass sometimes: 255 of the 607 pairs in (b) are in
      [0.609, 0.7). Every pair in (b) joins two kowiki stubs of at most 112 characters (``1983년은 토요일로 시작하는
      평년이다.`` ~ ``2011년은 ...``; difflib ratio >= 0.8): noise around a population of near-identical
      templates, not distinct documents merged. Near dedup dropped 607 of the 10,000 articles (0.1 % of their
      characters) and none of the 10,000 reviews.
    * ``min_chars`` = 20 normalised characters, where one edit stops defeating the 0.7 threshold. All 150,000
      reviews by length (bench, "where near dedup stops"): a copy with one character edit is found for 38 % (5-9
      characters), 45 % (10-19), 91 % (20-29), 99 % (30-39); a 15-character text has 13 3-grams and one
      substitution changes 3. Below 20 near dedup would find little beyond exact copies while calling 1.1-3.0 % of
      the (distinct) short reviews duplicates (0.2 % at 20-29). Exact dedup still applies to short texts.
    * Recall with these defaults (bench (a), 1,000 articles, 3,000 reviews >= 20 characters): 1/3/5/10/20 % edits
      caught 97/97/81/7/0 % (articles) and 95/94/78/15/1 % (reviews).
    * Deterministic: datasketch draws the permutations from ``numpy.random.RandomState(seed)``, shingle hashes are
      fixed arithmetic (word ids BLAKE2b, never ``hash()``), LSH candidates are sorted before confirmation. The same
      input order gives the same result in any process (tested with two PYTHONHASHSEED values) and on any machine
      with the same Unicode database: NFKC and ``\w`` follow the running Python's ``unicodedata`` version.

Memory and scale
    The near index costs :data:`NEAR_BYTES_PER_DOC` bytes per indexed document (tracemalloc): 448 bytes of
    signature, the rest datasketch's dict storage (a set per band bucket, and per key its 14 band hashes). 16 GB
    therefore hold ~2.9 million documents (16e9 / 5,500). Throughput on one core: ~950 articles/s (2.8 M
    characters/s) and ~8,800 reviews/s; exact dedup alone ~4,400 articles/s, nearly all of it the normalisation,
    which near dedup then takes from :func:`normalize`'s cache (exact then near: 932 articles/s, near alone 948).
    A larger corpus needs the disk-backed, sharded pass of datatrove's four MinHash stages, not implemented:
    (1) signatures per input shard, written to disk per band; (2) per band, the (band hash, document) records
    sorted on disk and the documents sharing a bucket emitted as pairs; (3) the pairs clustered (union-find), each
    cluster keeping its first document in priority order; (4) a second pass over the corpus dropping the others.
    Memory is then one shard's sort buffer instead of the whole index.
"""

from __future__ import annotations

import functools
import hashlib
import re
import unicodedata

import numpy as np

SHINGLES = ("char", "word")
#: measured bytes of index per document (bench/results/dedup.md (f), tracemalloc): near index per indexed document
#: (5,263 on kowiki articles, 5,502 on reviews), exact index per distinct document (117 / 129)
NEAR_BYTES_PER_DOC = 5_500
EXACT_BYTES_PER_DOC = 130


# Every character that is neither a word character (letter, digit, underscore -- Hangul syllables and jamo are
# letters) nor whitespace: punctuation (P*), symbols (S*: ~ ^ ♥ ★ + =), combining marks. Why symbols go too, and why
# this class rather than one of the punctuation code points: the module docstring.
_NON_WORD = re.compile(r"[^\w\s]+")


@functools.lru_cache(maxsize=8)
def normalize(text: str) -> str:
    """The text both dedup keys and shingles (and decontamination) are computed on: NFKC, case-folded, every run of
    non-word characters (punctuation, symbols, marks) and whitespace one space, stripped.

    A non-word run becomes a space, not nothing, so ``1.5`` and ``15`` stay apart. Text made only of non-word
    characters keeps them (whitespace still collapsed): ``...`` and ``!!!`` are not one empty key.

    Cached for the last few texts: the caller computes :func:`dedup_key`, then :meth:`NearDedup.match` and
    :meth:`~koroberta.corpus.decontaminate.Decontaminator.match` on the same document, and the normalisation is
    most of the first one's cost.
    """
    if not unicodedata.is_normalized("NFKC", text):
        text = unicodedata.normalize("NFKC", text)
    text = text.casefold()
    out = " ".join(_NON_WORD.sub(" ", text).split())
    return out if out else " ".join(text.split())


def dedup_key(text: str) -> str:
    """The exact-dedup key of ``text``: the 128-bit BLAKE2b digest (32 hex characters) of :func:`normalize`."""
    return hashlib.blake2b(normalize(text).encode("utf-8"), digest_size=16).hexdigest()


class ExactDedup:
    """First-come exact dedup on :func:`dedup_key` keys, across sources."""

    def __init__(self) -> None:
        self._first: dict[bytes, tuple[str, str]] = {}

    def seen(self, key_text: str, doc: str, source: str) -> tuple[str, str] | None:
        """``(source, doc)`` of the first document recorded with key ``key_text`` (a :func:`dedup_key` value), else
        record this one and return None."""
        try:
            key = bytes.fromhex(key_text)
        except (TypeError, ValueError):
            key = b""
        if len(key) != 16:
            raise ValueError(f"ExactDedup.seen takes dedup_key(text) (32 hex characters), not {key_text[:40]!r}")
        hit = self._first.get(key)
        if hit is not None:
            return hit
        self._first[key] = (source, doc)
        return None

    def __len__(self) -> int:
        return len(self._first)

    @staticmethod
    def memory_per_document() -> int:
        """Bytes of index per distinct document, as measured: :data:`EXACT_BYTES_PER_DOC`."""
        return EXACT_BYTES_PER_DOC


# -- shingles ----------------------------------------------------------------------------------------------------------
_MUL = np.uint64(0x9E3779B97F4A7C15)  # odd: the polynomial step is a bijection on the running value


def _mix64(h: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser (a bijection on uint64 that spreads every input bit over the output)."""
    h = h ^ (h >> np.uint64(30))
    h = h * np.uint64(0xBF58476D1CE4E5B9)
    h = h ^ (h >> np.uint64(27))
    h = h * np.uint64(0x94D049BB133111EB)
    return h ^ (h >> np.uint64(31))


def ngram_hashes(units: np.ndarray, n: int) -> np.ndarray:
    """The distinct 32-bit hashes of the ``n``-grams of ``units`` (uint64 ids of characters, words or morphemes), in
    ascending order. A fixed arithmetic hash, so the same text gives the same values in any process."""
    count = len(units) - n + 1
    if count <= 0:
        return np.zeros(0, dtype=np.uint32)
    with np.errstate(over="ignore"):  # wrap-around is the intended arithmetic mod 2**64
        h = units[:count].copy()
        for k in range(1, n):
            h = h * _MUL + units[k:k + count]
        h = _mix64(h)
    # the high 32 bits: datasketch's affine32 scheme takes 32-bit input hashes
    return np.unique((h >> np.uint64(32)).astype(np.uint32))


def char_units(norm: str) -> np.ndarray:
    """The code points of ``norm`` as uint64."""
    return np.frombuffer(norm.encode("utf-32-le"), dtype="<u4").astype(np.uint64)


def word_units(words: list[str]) -> np.ndarray:
    """A stable 64-bit id per word (BLAKE2b, not ``hash()``: that changes with PYTHONHASHSEED)."""
    ids = {w: int.from_bytes(hashlib.blake2b(w.encode("utf-8"), digest_size=8).digest(), "little")
           for w in set(words)}
    return np.fromiter((ids[w] for w in words), dtype=np.uint64, count=len(words))


def _identity(x: int) -> int:
    """MinHash's ``hashfunc`` for shingles that arrive hashed (:func:`ngram_hashes`); a module-level function, not a
    lambda, so that a MinHash stays picklable."""
    return x


class NearDedup:
    """First-come near-duplicate detection: MinHash LSH (datasketch) over shingles of :func:`normalize`.

    ``match`` returns the earliest-added document among the LSH candidates whose estimated Jaccard similarity is at
    least ``threshold``, else adds the document. ``shingle``: ``"char"`` (character ``n``-grams, the default, see
    the module docstring) or ``"word"`` (whitespace-word n-grams, measured far weaker on Korean: bench (c)).
    ``bands`` x ``rows`` permutations, drawn from ``seed``. Documents whose normalised text is shorter than
    ``min_chars`` characters are neither matched nor added. The defaults are the measured choices.
    """

    _BLOCK = 4096  # signatures per storage block: one numpy array per 4,096 documents, not one object per document

    def __init__(self, *, shingle: str = "char", n: int = 3, bands: int = 14, rows: int = 8, seed: int = 1,
                 min_chars: int = 20, threshold: float = 0.7) -> None:
        # imported here, not with the module: datasketch loads scipy (~1.4 s), and users of normalize/dedup_key
        # alone (exact dedup, decontamination) do not need it
        from datasketch import MinHash, MinHashLSH

        if shingle not in SHINGLES:
            raise ValueError(f"shingle must be one of {', '.join(SHINGLES)}, not {shingle!r}")
        if n < 1 or bands < 2 or rows < 1:
            raise ValueError(f"need n >= 1, bands >= 2, rows >= 1 (got n={n}, bands={bands}, rows={rows})")
        if not 0.0 < threshold <= 1.0:
            raise ValueError(f"threshold must be in (0, 1], not {threshold}")
        self.shingle, self.n, self.bands, self.rows, self.seed = shingle, n, bands, rows, seed
        self.min_chars, self.threshold = min_chars, threshold
        self.num_perm = bands * rows
        # one MinHash made here only for its seeded permutations; every document's MinHash shares them
        self._perms = MinHash(num_perm=self.num_perm, seed=seed).permutations
        self._lsh = MinHashLSH(num_perm=self.num_perm, params=(bands, rows))
        self._blocks: list[np.ndarray] = []
        self._ids: list[tuple[str, str]] = []

    def __len__(self) -> int:
        return len(self._ids)

    @staticmethod
    def memory_per_document() -> int:
        """Bytes of index per indexed document, as measured: :data:`NEAR_BYTES_PER_DOC` (see the module docstring
        for the corpus size that fits in memory)."""
        return NEAR_BYTES_PER_DOC

    def shingle_hashes(self, norm: str) -> np.ndarray:
        """The shingle hashes of an already normalised text (:func:`normalize`): uint32, distinct."""
        if self.shingle == "char":
            return ngram_hashes(char_units(norm), self.n)
        return ngram_hashes(word_units(norm.split(" ")), self.n)

    def minhash(self, text: str):
        """The datasketch ``MinHash`` of ``text`` (normalised here), or None when it is shorter than ``min_chars``
        or has no shingle (an empty signature would equal every other empty one)."""
        from datasketch import MinHash

        norm = normalize(text)
        if len(norm) < self.min_chars:
            return None
        hv = self.shingle_hashes(norm)
        if not len(hv):
            return None
        m = MinHash(num_perm=self.num_perm, seed=self.seed, permutations=self._perms, scheme="affine32",
                    hashfunc=_identity)
        m.update_batch(hv.tolist())
        return m

    def _stored(self, i: int):
        from datasketch import LeanMinHash

        return LeanMinHash(seed=self.seed, hashvalues=self._blocks[i // self._BLOCK][i % self._BLOCK],
                           scheme="affine32")

    def _first_match(self, m) -> int | None:
        """The earliest-added candidate of ``m`` whose estimated Jaccard is at least ``threshold``."""
        for i in sorted(self._lsh.query(m)):  # earliest first; sorted so that set order cannot matter
            if m.jaccard(self._stored(i)) >= self.threshold:
                return i
        return None

    def find(self, text: str) -> tuple[str, str] | None:
        """What :meth:`match` would return for ``text``, without adding it."""
        m = self.minhash(text)
        i = None if m is None else self._first_match(m)
        return None if i is None else self._ids[i]

    def match(self, doc: str, source: str, text: str) -> tuple[str, str] | None:
        """``(source, doc)`` of an earlier-added document that ``text`` near-duplicates, else add it and return None.

        The caller feeds documents in priority order: the first of a group survives, and a document found to be a
        duplicate is not added (a chain of small edits cannot walk away from the survivor)."""
        m = self.minhash(text)
        if m is None:
            return None
        i = self._first_match(m)
        if i is not None:
            return self._ids[i]
        i = len(self._ids)
        if i % self._BLOCK == 0:
            self._blocks.append(np.empty((self._BLOCK, self.num_perm), dtype=np.uint32))
        self._blocks[-1][i % self._BLOCK] = m.hashvalues
        self._ids.append((source, doc))
        self._lsh.insert(i, m, check_duplication=False)
        return None
