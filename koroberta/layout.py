"""The id layout that makes SentencePiece, fairseq and Hugging Face agree — by construction.

KoRoBERTa's recipe built ``dict.txt`` by counting *spm-id strings* in the encoded corpus and sorting them by
frequency, so fairseq row ``k`` corresponds to no tokenizer id at all. We use the XLM-R layout instead::

    spm id:        0=<unk> 1=<s> 2=</s> 3 ........... V-1
    fairseq id:    0=<s> 1=<pad> 2=</s> 3=<unk> 4 ... V | fillers ... | <mask>
                                                  = spm id + OFFSET (OFFSET = 1) for every ordinary piece

* SentencePiece is trained with ``unk_id=0, bos_id=1, eos_id=2, pad_id=-1``, so every ordinary piece has an
  id >= 3. User-defined symbols (``spm.user_symbols``: the corpus's PII placeholders such as ``<전화번호>``) are
  pieces like the others: spm puts them at ids 3, 4, ... right after ``</s>``, so they get fairseq ids 4, 5, ...
  by the same offset, and the HF vocabulary lists them as ordinary entries (:data:`USER_SYMBOL_SCORE`).
* ``dict.txt`` lists the spm pieces of ids 3..V-1 **in spm order** (never re-sorted), each with a strictly
  decreasing pseudo-count ``V - spm_id`` so that even a ``Dictionary.finalize()`` sort keeps the order. fairseq
  prepends its four specials, so the piece of spm id ``i`` gets fairseq id ``i + 1``.
* The fairseq ``masked_lm`` task appends ``<mask>`` when it loads the dict. To make the final embedding matrix
  (``<mask>`` included) a multiple of ``pad_to`` (8 by default: tensor cores), ``dict.txt`` ends with filler
  symbols ``madeupword0000, madeupword0001, ...`` (fairseq's own name for them) with count 0. SentencePiece
  never emits them (they are not spm pieces), so they are dead rows; the HF tokenizer carries them with a score
  that the Viterbi search never picks.
* The HF tokenizer's vocabulary is exactly :func:`fairseq_symbols`: same strings, same ids.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from koroberta.errors import InputError

FAIRSEQ_SPECIALS = ("<s>", "<pad>", "</s>", "<unk>")
BOS, PAD, EOS, UNK = 0, 1, 2, 3
MASK = "<mask>"
OFFSET = 1  # fairseq id = spm id + OFFSET for every ordinary piece
SPM_SPECIALS = {"unk_id": 0, "bos_id": 1, "eos_id": 2, "pad_id": -1}
FIRST_PIECE = 3  # first ordinary spm id
FILLER = "madeupword{:04d}"
_WS = re.compile(r"\s")  # what fairseq's tokenize_line splits on


#: the score a user-defined piece gets in spm's Unigram lattice, and so in the exported HF Unigram vocabulary.
#: sentencepiece (model_interface.cc, ``PopulateNodes``) scores it ``length * max_score_ - 0.1`` to make it win,
#: where ``max_score_`` starts at ``FLT_MIN`` (the smallest *positive* float) and only ever sees the ordinary
#: pieces' log-probabilities, which are negative: the score is -0.1 (to 1e-37), above every ordinary piece, so no
#: segmentation that splits the symbol can beat it -- in spm or in HF (tests/convert/test_user_symbols.py).
USER_SYMBOL_SCORE = -0.1
_USER_DEFINED = 4  # sentencepiece ModelProto.SentencePiece.Type.USER_DEFINED


def check_user_symbols(symbols: object, require) -> None:
    """``require(ok, message)`` for each rule a user-defined symbol list must keep: strings, unique, no whitespace
    (fairseq's ``tokenize_line`` would split them), no ``▁`` (the word-boundary mark), and none equal to or holding
    a fairseq special (``<s>``, ``<mask>`` ...: fairseq's dictionary would merge the rows) or a filler name."""
    require(isinstance(symbols, list) and all(isinstance(x, str) and x for x in symbols),
            "user_symbols must be a list of non-empty strings")
    require(len(set(symbols)) == len(symbols), "user_symbols lists a symbol twice")  # type: ignore[arg-type]
    for x in symbols:  # type: ignore[union-attr]
        require(not _WS.search(x) and "\u2581" not in x, f"user symbol {x!r} contains whitespace or '\u2581'")
        bad = [r for r in (*FAIRSEQ_SPECIALS, MASK, "madeupword") if r in x]
        require(not bad, f"user symbol {x!r} contains the reserved fairseq symbol {bad[0] if bad else ''!r}")


def filler(i: int) -> str:
    return FILLER.format(i)


def n_fillers(spm_vocab_size: int, pad_to: int) -> int:
    """Fillers needed so that 4 specials + (V-3) pieces + fillers + <mask> is a multiple of ``pad_to``."""
    if pad_to < 1:
        raise ValueError("pad_to must be >= 1")
    total = len(FAIRSEQ_SPECIALS) + (spm_vocab_size - FIRST_PIECE) + 1
    return (-total) % pad_to


@dataclass(frozen=True)
class Vocab:
    """The full fairseq/HF symbol list derived from an spm model."""

    pieces: tuple[str, ...]  # spm pieces, index = spm id (0..V-1)
    scores: tuple[float, ...]  # spm log-probs, index = spm id (0 for user-defined symbols, as spm stores them)
    pad_to: int
    user_symbols: tuple[str, ...] = ()  # the user-defined pieces (ids 3.. in spm)

    @property
    def fillers(self) -> list[str]:
        return [filler(i) for i in range(n_fillers(len(self.pieces), self.pad_to))]

    def dict_symbols(self) -> list[str]:
        """What ``dict.txt`` lists (without fairseq's 4 specials and without ``<mask>``)."""
        return list(self.pieces[FIRST_PIECE:]) + self.fillers

    def fairseq_symbols(self) -> list[str]:
        """Every symbol by fairseq (= HF) id, ``<mask>`` last."""
        return list(FAIRSEQ_SPECIALS) + self.dict_symbols() + [MASK]

    @property
    def mask_id(self) -> int:
        return len(self.fairseq_symbols()) - 1

    def dict_text(self) -> str:
        v = len(self.pieces)
        lines = [f"{p} {v - i}" for i, p in enumerate(self.pieces[FIRST_PIECE:], start=FIRST_PIECE)]
        lines += [f"{f} 0" for f in self.fillers]
        return "\n".join(lines) + "\n"


def check_pieces(pieces: list[str] | tuple[str, ...], where: object) -> None:
    """Refuse spm models that would silently shift fairseq ids.

    fairseq's ``Dictionary.add_symbol`` returns the *existing* index for a duplicate symbol, so an ordinary piece
    spelled like a fairseq special (``<pad>``, ``<mask>``, a filler) would collapse two rows and shift every id
    after it. A piece containing whitespace would be split in two by ``tokenize_line``.
    """
    if len(pieces) <= FIRST_PIECE or tuple(pieces[:3]) != ("<unk>", "<s>", "</s>"):
        raise InputError(f"spm model has specials {list(pieces[:3])}, expected ['<unk>', '<s>', '</s>'] at ids 0-2",
                         path=where, fix="train it with `koroberta spm train` (unk_id=0 bos_id=1 eos_id=2 pad_id=-1), "
                                         "or import a KoRoBERTa-style model with `koroberta spm import-legacy`")
    reserved = set(FAIRSEQ_SPECIALS) | {MASK}
    for i, p in enumerate(pieces[FIRST_PIECE:], start=FIRST_PIECE):
        if p in reserved or p.startswith("madeupword"):
            raise InputError(f"spm piece {i} is {p!r}, a reserved fairseq symbol", path=where,
                             fix="retrain SentencePiece on text without that literal token")
        if not p or _WS.search(p):
            raise InputError(f"spm piece {i} {p!r} is empty or contains whitespace", path=where,
                             fix="clean the training text (koroberta corpus normalises whitespace) and retrain")
    if len(set(pieces)) != len(pieces):
        raise InputError("spm model has duplicate pieces", path=where, fix="retrain SentencePiece")


#: spm ``TrainerSpec.ModelType`` / ``SentencePiece.Type`` values (sentencepiece_model.proto)
_MODEL_TYPES = {1: "unigram", 2: "bpe", 3: "word", 4: "char"}
_PIECE_TYPES = {1: "normal", 2: "unknown", 3: "control", 4: "user-defined", 5: "unused", 6: "byte"}
_FIX_RETRAIN = "retrain it with `koroberta spm train` (model_type unigram or bpe; no byte fallback)"


def check_exportable(proto: Any, where: object, *, pieces: bool = True) -> str:
    """The model type (``unigram`` | ``bpe``) of an spm ``ModelProto`` whose ids the HF export reproduces exactly;
    :class:`InputError` for one it cannot, before any work is spent on it (a model made outside koroberta).

    ``koroberta spm train`` never makes the others, but a user can bring one: a char/word model (no HF equivalent
    kept here), byte fallback (spm spells an unknown character as ``<0xNN>`` pieces, the export as ``<unk>``),
    whitespace as a suffix (the export's Metaspace prepends), and -- ``pieces`` -- any ordinary id holding a
    control, unused or byte piece (matched by spm before segmenting, scored by HF like any piece), a user-defined
    piece in a BPE model (spm keeps it an atom no merge touches; HF BPE builds tokens only by merges) or one that
    is not among the first ids, or a piece spanning a word boundary (``split_by_whitespace: false``; the export
    splits at every ``▁``). User-defined pieces of a Unigram model are exported (:data:`USER_SYMBOL_SCORE`).
    """
    ts = proto.trainer_spec
    kind = _MODEL_TYPES.get(ts.model_type, f"type {ts.model_type}")
    if kind not in ("unigram", "bpe"):
        raise InputError(f"spm model_type is {kind}: only unigram and bpe models can be exported to a Hugging Face "
                         "tokenizer with the same ids", path=where, fix=_FIX_RETRAIN)
    if ts.byte_fallback:
        raise InputError("spm model was trained with byte_fallback (<0xNN> pieces for unknown characters), which the "
                         "HF export cannot reproduce", path=where, fix=_FIX_RETRAIN)
    if ts.treat_whitespace_as_suffix:
        raise InputError("spm model was trained with treat_whitespace_as_suffix, which the HF export cannot "
                         "reproduce", path=where, fix=_FIX_RETRAIN)
    if pieces:
        user = True  # user-defined pieces come first (spm puts them right after the specials)
        for i, p in enumerate(proto.pieces[FIRST_PIECE:], start=FIRST_PIECE):
            if p.type == _USER_DEFINED and user:
                if kind != "unigram":
                    raise InputError(f"spm piece {i} {p.piece!r} is a user-defined symbol in a {kind} model, which "
                                     "the HF export cannot keep whole", path=where,
                                     fix="retrain it with `koroberta spm train` (model_type unigram: user symbols need it)")
                continue
            user = False
            if p.type != 1:
                raise InputError(f"spm piece {i} {p.piece!r} is a {_PIECE_TYPES.get(p.type, p.type)} piece; the "
                                 "layout needs ordinary pieces after <unk> <s> </s>", path=where, fix=_FIX_RETRAIN)
            if "\u2581" in p.piece[1:]:
                raise InputError(f"spm piece {i} {p.piece!r} spans a word boundary (split_by_whitespace: false), "
                                 "which the HF export cannot reproduce", path=where, fix=_FIX_RETRAIN)
    return kind


def load_processor(spm_model: str | Path) -> Any:
    """The one way koroberta opens a SentencePiece model: a missing or foreign file is a one-line InputError."""
    import sentencepiece as spm

    p = Path(spm_model)
    if not p.is_file():
        raise InputError("SentencePiece model not found", path=p, fix="run `koroberta spm train` first")
    try:
        return spm.SentencePieceProcessor(model_file=str(p))
    except (RuntimeError, OSError) as e:
        raise InputError(f"not a SentencePiece model ({e})", path=p, fix="pass the spm.model written by "
                                                                       "`koroberta spm train`") from None


def load_vocab(spm_model: str | Path, pad_to: int = 8) -> Vocab:
    p = Path(spm_model)
    sp = load_processor(p)
    pieces = tuple(sp.id_to_piece(i) for i in range(sp.get_piece_size()))
    check_pieces(pieces, p)
    from sentencepiece import sentencepiece_model_pb2 as pb

    proto = pb.ModelProto()
    proto.ParseFromString(sp.serialized_model_proto())
    check_exportable(proto, p)
    user = tuple(x.piece for x in proto.pieces if x.type == _USER_DEFINED)
    return Vocab(pieces=pieces, scores=tuple(sp.get_score(i) for i in range(len(pieces))), pad_to=pad_to,
                 user_symbols=user)


def read_dict_symbols(dict_path: str | Path) -> list[str]:
    p = Path(dict_path)
    if not p.is_file():
        raise InputError("fairseq dict.txt not found", path=p, fix="it is written by `koroberta spm train`")
    out = []
    for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1):
        parts = line.rstrip("\n").rsplit(" ", 1)
        if len(parts) != 2 or not parts[1].lstrip("-").isdigit():
            # fairseq also accepts a trailing '#fairseq:overwrite' flag; we never write it
            raise InputError(f"line {n} is not '<symbol> <count>': {line[:60]!r}", path=p,
                             fix="regenerate it with `koroberta spm train`")
        out.append(parts[0])
    return out


def check_dict_matches(dict_path: str | Path, spm_model: str | Path, pad_to: int | None = None) -> Vocab:
    """Raise :class:`InputError` unless ``dict.txt`` is exactly the layout derived from ``spm_model``.

    ``pad_to`` None infers it from the number of fillers (any value that explains them is accepted).
    """
    symbols = read_dict_symbols(dict_path)
    vocab = load_vocab(spm_model, pad_to=pad_to or 1)
    pieces = list(vocab.pieces[FIRST_PIECE:])
    if symbols[: len(pieces)] != pieces:
        first = next((i for i, (a, b) in enumerate(zip(symbols, pieces)) if a != b), min(len(symbols), len(pieces)))
        raise InputError(f"dict.txt does not belong to {spm_model}: first difference at dict line {first + 1} "
                         f"({symbols[first] if first < len(symbols) else 'EOF'!r} vs spm piece "
                         f"{pieces[first] if first < len(pieces) else 'EOF'!r})", path=dict_path,
                         fix="use the dict.txt written next to that spm.model by `koroberta spm train`")
    extra = symbols[len(pieces):]
    if extra != [filler(i) for i in range(len(extra))]:
        raise InputError("dict.txt has symbols after the spm pieces that are not madeupword fillers", path=dict_path,
                         fix="use the dict.txt written by `koroberta spm train`")
    if pad_to is None:
        total = len(FAIRSEQ_SPECIALS) + len(symbols) + 1
        pad_to = max((k for k in (128, 64, 8, 1) if total % k == 0 and n_fillers(len(vocab.pieces), k) == len(extra)),
                     default=1)
    return Vocab(pieces=vocab.pieces, scores=vocab.scores, pad_to=pad_to, user_symbols=vocab.user_symbols)
