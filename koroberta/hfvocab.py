"""An imported Hugging Face tokenizer as a koroberta vocabulary, with fairseq id = HF id for every token.

``koroberta import-hf HF_DIR OUT`` writes a *vocab directory* that later stages take where they take the spm
stage's ``spm.model`` + ``dict.txt``:

    OUT/dict.txt            fairseq's dictionary: line k is the HF token of id k + 4, the mask token written
                            ``<mask>``, then ``madeupwordNNNN`` fillers for embedding rows the tokenizer never emits
    OUT/tokenizer/          the original HF tokenizer files, copied byte for byte (``tokenizer.json`` always: the
                            import writes it when the source directory had only a slow tokenizer's files)
    OUT/vocab.json          :data:`RECORD`: sha256s of tokenizer.json and dict.txt, the mask id, the special strings
    OUT/checkpoint.pt       the model as a fairseq ``roberta`` checkpoint (``train.init_from``)

Why ids line up: fairseq's ``Dictionary`` puts ``<s> <pad> </s> <unk>`` at ids 0-3 and ``dict.txt``'s lines after
them, so the HF tokenizer's ids 0-3 must play those roles (``[CLS] [PAD] [SEP] [UNK]`` in ``klue/roberta-base``,
``<s> <pad> </s> <unk>`` in XLM-R and our exports). The ``masked_lm`` task calls ``add_symbol("<mask>")``, which
returns an existing row only for a symbol literally named ``<mask>``: any other spelling (``[MASK]``) would append
a new, untrained row. Tokens are written as themselves otherwise; ``dict.txt`` is only read by fairseq (and by the
``method: fairseq`` reference path, which maps the token strings back to the same ids).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from koroberta.errors import InputError
from koroberta.layout import FAIRSEQ_SPECIALS, MASK, UNK, filler

TOKENIZER_DIR = "tokenizer"
TOKENIZER_JSON = "tokenizer.json"
RECORD = "vocab.json"
CHECKPOINT = "checkpoint.pt"
#: HF special-token roles that must sit at fairseq's ids 0-3 (either name of a role is accepted)
ROLES = ((("cls_token", "bos_token"), 0), (("pad_token",), 1), (("sep_token", "eos_token"), 2), (("unk_token",), 3))
_FIX_IMPORT = "import the model again with `koroberta import-hf HF_DIR OUT`"


def is_hf_vocab(vocab_dir: str | Path) -> bool:
    """A vocab directory made by ``koroberta import-hf`` (as opposed to ``koroberta spm train``)."""
    return (Path(vocab_dir) / RECORD).is_file()


def load_tokenizer(path: str | Path) -> Any:
    """A ``tokenizers.Tokenizer`` from ``tokenizer.json``; a missing or foreign file is a one-line InputError."""
    from tokenizers import Tokenizer

    p = Path(path)
    if not p.is_file():
        raise InputError("tokenizer.json not found", path=p, fix=_FIX_IMPORT)
    try:
        return Tokenizer.from_file(str(p))
    except Exception as e:  # the Rust side raises a bare Exception for a malformed file
        raise InputError(f"not a Hugging Face fast tokenizer file ({str(e).splitlines()[0][:120]})", path=p,
                         fix=_FIX_IMPORT) from None


def fairseq_symbols(id_to_token: dict[int, str], rows: int, mask_token: str, *, where: object) -> list[str]:
    """Every fairseq symbol by id (= HF id): ids 0-3 as fairseq's specials, the mask token as ``<mask>``, the other
    tokens as themselves, fillers up to ``rows`` (the model's embedding rows). InputError for a vocabulary fairseq
    cannot hold with the same ids."""
    n = len(id_to_token)
    if sorted(id_to_token) != list(range(n)):
        gap = next(i for i in range(n + 1) if i not in id_to_token)
        raise InputError(f"the tokenizer's ids are not contiguous (no token has id {gap})", path=where,
                         fix="only tokenizers whose ids run 0..N-1 can be imported")
    if n > rows:
        raise InputError(f"the tokenizer has {n} tokens but the model's embedding only {rows} rows", path=where,
                         fix="pass the tokenizer the model was trained with")
    tokens = [id_to_token[i] for i in range(n)]
    if mask_token not in tokens[len(FAIRSEQ_SPECIALS):]:
        raise InputError(f"the mask token {mask_token!r} is not among the tokenizer's ids >= 4", path=where,
                         fix="masked-LM pretraining needs a mask token after the four specials at ids 0-3")
    out = list(FAIRSEQ_SPECIALS)
    reserved = set(FAIRSEQ_SPECIALS) | {MASK}
    for i, t in enumerate(tokens[len(FAIRSEQ_SPECIALS):], start=len(FAIRSEQ_SPECIALS)):
        if t == mask_token:
            out.append(MASK)
            continue
        if t in reserved:
            raise InputError(f"token {i} is {t!r}, which fairseq reserves for id {FAIRSEQ_SPECIALS.index(t)}"
                             if t in FAIRSEQ_SPECIALS else f"token {i} is {t!r} but the mask token is {mask_token!r}",
                             path=where, fix="such a vocabulary cannot keep its ids in fairseq; it cannot be imported")
        if not t or any(c.isspace() for c in t):
            raise InputError(f"token {i} {t!r} is empty or holds whitespace, which fairseq's dict.txt cannot hold",
                             path=where, fix="such a vocabulary cannot keep its ids in fairseq; it cannot be imported")
        out.append(t)
    taken = set(out)
    fillers = [filler(k) for k in range(rows - n)]
    clash = taken.intersection(fillers)
    if clash:
        raise InputError(f"the tokenizer has a token named {sorted(clash)[0]!r}, the name fairseq fillers take",
                         path=where, fix="pad the tokenizer to the model's embedding rows before importing")
    return out + fillers


def dict_text(symbols: list[str]) -> str:
    """``dict.txt`` for :func:`fairseq_symbols`: strictly decreasing counts (a ``finalize()`` sort keeps the order),
    0 for fillers -- the same convention as the spm layout."""
    body = symbols[len(FAIRSEQ_SPECIALS):]
    return "".join(f"{s} {0 if s.startswith('madeupword') else len(symbols) - i}\n"
                   for i, s in enumerate(body, start=len(FAIRSEQ_SPECIALS)))


@dataclass(frozen=True)
class HFVocab:
    """An import's vocabulary: what preprocess encodes with and what convert exports."""

    dir: Path
    tokenizer_json: Path
    dict_path: Path
    symbols: tuple[str, ...]     # fairseq symbol by id (what fairseq's Dictionary holds once <mask> is "added")
    mask_id: int
    literals: tuple[str, ...]    # the tokenizer's special strings, matched in raw text: removed from the corpus
    record: dict[str, Any]

    unk_id: int = UNK

    @property
    def rows(self) -> int:
        return len(self.symbols)

    def tokenizer(self) -> Any:
        return load_tokenizer(self.tokenizer_json)


def load_hf_vocab(vocab_dir: str | Path) -> HFVocab:
    """Read and check an import's vocab directory: ``dict.txt`` and ``tokenizer.json`` must be the ones the import
    recorded (sha256), so a file replaced afterwards is refused before anything is encoded with it."""
    from koroberta.artifacts import read_json, sha256_file
    from koroberta.layout import read_dict_symbols

    d = Path(vocab_dir)
    rec_path = d / RECORD
    try:
        rec = read_json(rec_path)
    except (OSError, ValueError) as e:
        raise InputError(f"unreadable import record ({e})", path=rec_path, fix=_FIX_IMPORT) from None
    tj, dict_path = d / TOKENIZER_DIR / TOKENIZER_JSON, d / "dict.txt"
    for p, key in ((tj, "tokenizer_sha256"), (dict_path, "dict_sha256")):
        if not p.is_file():
            raise InputError(f"{p.name} not found in the imported vocab dir", path=d, fix=_FIX_IMPORT)
        if rec.get(key) != sha256_file(p):
            raise InputError(f"{p.name} is not the file the import wrote ({RECORD} records another sha256): it was "
                             "replaced or edited afterwards", path=p, fix=_FIX_IMPORT)
    symbols = tuple(FAIRSEQ_SPECIALS) + tuple(read_dict_symbols(dict_path))
    mask_id = int(rec["mask_id"])
    if symbols[mask_id:mask_id + 1] != (MASK,):
        raise InputError(f"dict.txt has no <mask> at id {mask_id}", path=dict_path, fix=_FIX_IMPORT)
    return HFVocab(dir=d, tokenizer_json=tj, dict_path=dict_path, symbols=symbols, mask_id=mask_id,
                   literals=tuple(rec.get("literals", ())), record=rec)


def special_strings(tokenizer: Any) -> list[str]:
    """The content of every *special* added token of a ``tokenizers.Tokenizer`` (``[CLS]``, ``<mask>`` ...): the
    tokenizer matches them in raw text before anything else, so a literal ``[MASK]`` in a document would become the
    mask id, which fairseq's ``masked_lm`` asserts never occurs in its input."""
    return sorted({t.content for t in tokenizer.get_added_tokens_decoder().values() if t.special and t.content})


def write_record(path: Path, **fields: Any) -> None:
    path.write_text(json.dumps(fields, indent=2, ensure_ascii=False, sort_keys=True) + "\n", encoding="utf-8")
