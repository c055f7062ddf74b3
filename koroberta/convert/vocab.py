"""Which HF id is which fairseq row, and the fast tokenizer that produces those ids.

Two vocab layouts are supported:

* **koroberta layout** (``koroberta.spm.layout``): HF vocab == fairseq symbols, so HF id == fairseq row.
* **legacy KoRoBERTa layout**: ``dict.txt`` lists *spm-id strings* ordered by corpus frequency (``"1532 88123"``),
  and the spm model has BERT-style specials (``[PAD] [UNK] [CLS] [SEP] [MASK]``). Fairseq row ``r`` means spm id
  ``int(dict[r])``, so no tokenizer can emit fairseq rows directly. We build an HF vocab in spm order
  (``<s> <pad> </s> <unk>``, every ordinary spm piece, ``<mask>``) and gather the embedding rows / LM-head bias
  through ``hf_to_fairseq``: HF id ``h`` reads fairseq row ``hf_to_fairseq[h]``. A piece that never made it into
  the legacy dict maps to fairseq's ``<unk>`` row — exactly what fairseq's ``Dictionary.encode_line`` did to it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from koroberta.errors import InputError
from koroberta.spm.layout import (BOS, EOS, FAIRSEQ_SPECIALS, FIRST_PIECE, MASK, PAD, UNK, check_dict_matches,
                                  read_dict_symbols)

# Fillers must never win the Viterbi search (they are dead fairseq rows); the unk score is unaffected because HF,
# like spm, only inserts an <unk> node where no single-character piece exists.
FILLER_SCORE = -1e9
_NORMAL, _UNKNOWN = 1, 2  # sentencepiece ModelProto.SentencePiece.Type


@dataclass(frozen=True)
class ExportVocab:
    """HF vocabulary (symbol, unigram score) by HF id, and the fairseq row each HF id reads."""

    hf_vocab: tuple[tuple[str, float], ...]
    hf_to_fairseq: tuple[int, ...]
    fairseq_symbols: tuple[str, ...]  # by fairseq row, <mask> last (what fairseq's Dictionary holds)
    legacy: bool
    spm_model: Path
    dict_path: Path

    @property
    def mask_id(self) -> int:
        return len(self.hf_vocab) - 1

    def fairseq_text(self, sp, line: str) -> str:
        """The text fairseq's ``Dictionary.encode_line`` saw for ``line`` (what preprocess wrote)."""
        if self.legacy:
            return " ".join(str(i) for i in sp.encode(line))
        return " ".join(sp.encode(line, out_type=str))


def spm_proto(spm_model: str | Path):
    from sentencepiece import sentencepiece_model_pb2 as pb

    m = pb.ModelProto()
    try:
        m.ParseFromString(Path(spm_model).read_bytes())
    except Exception as e:  # protobuf DecodeError
        raise InputError(f"not a SentencePiece model ({e})", path=spm_model, fix="pass the spm.model of the run") from None
    if not m.pieces:
        raise InputError("SentencePiece model has no pieces", path=spm_model, fix="pass the spm.model of the run")
    return m


def is_legacy_dict(dict_path: str | Path) -> bool:
    """A dict over spm-id strings (KoRoBERTa) rather than spm pieces."""
    syms = [s for s in read_dict_symbols(dict_path) if not s.startswith("madeupword")]
    return bool(syms) and all(s.isdigit() for s in syms)


def resolve_vocab(vocab_dir: str | Path, checkpoint_rows: int) -> ExportVocab:
    """Read ``spm.model`` + ``dict.txt`` from ``vocab_dir`` and check them against the checkpoint's vocab size."""
    d = Path(vocab_dir)
    spm_model, dict_path = d / "spm.model", d / "dict.txt"
    for p in (spm_model, dict_path):
        if not p.is_file():
            raise InputError(f"{p.name} not found in the vocab dir", path=d,
                             fix="pass --vocab-dir pointing at the output of `koroberta spm train` (spm.model + dict.txt)")
    if is_legacy_dict(dict_path):
        ev = _legacy_vocab(spm_model, dict_path)
    else:
        vocab = check_dict_matches(dict_path, spm_model)
        fs = vocab.fairseq_symbols()
        scores = [0.0] * len(FAIRSEQ_SPECIALS) + list(vocab.scores[FIRST_PIECE:]) + [FILLER_SCORE] * len(vocab.fillers) + [0.0]
        ev = ExportVocab(hf_vocab=tuple(zip(fs, scores)), hf_to_fairseq=tuple(range(len(fs))),
                         fairseq_symbols=tuple(fs), legacy=False, spm_model=spm_model, dict_path=dict_path)
    if len(ev.fairseq_symbols) != checkpoint_rows:
        raise InputError(f"dict.txt gives {len(ev.fairseq_symbols)} fairseq symbols (incl. 4 specials and <mask>) but "
                         f"the checkpoint's embedding has {checkpoint_rows} rows", path=dict_path,
                         fix="pass the --vocab-dir (spm.model + dict.txt) the checkpoint was trained with")
    return ev


def _legacy_vocab(spm_model: Path, dict_path: Path) -> ExportVocab:
    """HF ids in spm order (specials first, <mask> last); each reads the fairseq row the legacy dict gave its spm
    id (:func:`koroberta.spm.legacy.build_legacy_map`, which also validates the dict against the model)."""
    from koroberta.spm.legacy import build_legacy_map

    spm_to_fairseq = build_legacy_map(spm_model, dict_path)["spm_to_fairseq"]
    recorded = spm_model.parent / "legacy_map.json"
    if recorded.is_file():
        # a directory made by `koroberta spm import-legacy`: the map it recorded must be the one these files give
        # (a dict.txt or model swapped after the import would otherwise export silently with other rows)
        import json

        if json.loads(recorded.read_text(encoding="utf-8")).get("spm_to_fairseq") != spm_to_fairseq:
            raise InputError("legacy_map.json does not match spm.model + dict.txt next to it (one of them was "
                             "replaced after the import)", path=recorded,
                             fix="rerun `koroberta spm import-legacy` with the model and dict the checkpoint used")
    proto = spm_proto(spm_model)
    fs = list(FAIRSEQ_SPECIALS) + read_dict_symbols(dict_path) + [MASK]
    unk_ids = [i for i, p in enumerate(proto.pieces) if p.type == _UNKNOWN]
    hf: list[tuple[str, float]] = [(s, 0.0) for s in FAIRSEQ_SPECIALS]
    rows = [BOS, PAD, EOS, spm_to_fairseq[unk_ids[0]] if unk_ids else UNK]
    reserved = set(FAIRSEQ_SPECIALS) | {MASK}
    for i, p in enumerate(proto.pieces):
        if p.type != _NORMAL:
            continue  # [PAD]/[CLS]/... (control/user-defined) are never produced for plain text
        if p.piece in reserved or any(c.isspace() for c in p.piece):
            raise InputError(f"legacy spm piece {i} {p.piece!r} collides with a special token or holds whitespace",
                             path=spm_model, fix="this spm model cannot be exported faithfully")
        hf.append((p.piece, float(p.score)))
        rows.append(spm_to_fairseq[i])
    hf.append((MASK, 0.0))
    rows.append(len(fs) - 1)
    return ExportVocab(hf_vocab=tuple(hf), hf_to_fairseq=tuple(rows), fairseq_symbols=tuple(fs), legacy=True,
                       spm_model=spm_model, dict_path=dict_path)


def build_tokenizer(ev: ExportVocab):
    """A ``tokenizers.Tokenizer`` equivalent to spm + the fairseq dictionary (see module docstring)."""
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

    proto = spm_proto(ev.spm_model)
    ns = proto.normalizer_spec
    tok = Tokenizer(models.Unigram(list(ev.hf_vocab), unk_id=UNK, byte_fallback=False))
    norms = []
    if ns.precompiled_charsmap:
        norms.append(normalizers.Precompiled(ns.precompiled_charsmap))
        if "nfkc" in ns.name:
            # spm matches its charsmap longest-first over the whole string, so a *sequence* such as compatibility
            # jamo "ㅇㅣ" becomes the syllable "이"; HF's Precompiled maps one grapheme at a time ("ᄋ" "ᅵ") and never
            # composes. NFC afterwards composes them the way spm does. Measured on 60k NSMC reviews (informal
            # text, typed jamo): 52 lines differed without it, 0 with it; kowiki text: 0 either way. Known residual:
            # a precomposed syllable followed by a final-only compatibility letter ("자료ㄳ": spm "료"+"ᆪ", NFC "룏");
            # tests/convert/test_tokenizer_parity.py pins the cases that must agree.
            norms.append(normalizers.NFC())
    if ns.remove_extra_whitespaces:
        # spm: drop leading/trailing spaces, collapse runs (after the charsmap mapped tabs etc. to ' ')
        norms += [normalizers.Strip(left=True, right=True), normalizers.Replace(Regex(" {2,}"), " ")]
    if norms:
        tok.normalizer = normalizers.Sequence(norms)
    scheme = "always" if ns.add_dummy_prefix else "never"
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme=scheme, split=True)
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme=scheme, split=True)
    tok.add_special_tokens([AddedToken(s, special=True, normalized=False) for s in FAIRSEQ_SPECIALS]
                           + [AddedToken(MASK, special=True, lstrip=True, normalized=False)])
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", pair="<s> $A </s> </s> $B </s>", special_tokens=[("<s>", BOS), ("</s>", EOS)])
    return tok
