"""Which HF id is which fairseq row, and the fast tokenizer that produces those ids.

Two vocab layouts are supported:

* **koroberta layout** (``koroberta.layout``): HF vocab == fairseq symbols, so HF id == fairseq row.
* **legacy KoRoBERTa layout**: ``dict.txt`` lists *spm-id strings* ordered by corpus frequency (``"1532 88123"``),
  and the spm model has BERT-style specials (``[PAD] [UNK] [CLS] [SEP] [MASK]``). Fairseq row ``r`` means spm id
  ``int(dict[r])``, so no tokenizer can emit fairseq rows directly. We build an HF vocab in spm order
  (``<s> <pad> </s> <unk>``, every ordinary spm piece, ``<mask>``) and gather the embedding rows / LM-head bias
  through ``hf_to_fairseq``: HF id ``h`` reads fairseq row ``hf_to_fairseq[h]``. A piece that never made it into
  the legacy dict maps to fairseq's ``<unk>`` row — exactly what fairseq's ``Dictionary.encode_line`` did to it.

The tokenizer reproduces spm's segmentation for both spm algorithms koroberta trains: a Unigram model (Viterbi over
the piece scores; user-defined symbols such as the PII placeholders are ordinary entries scored as spm's lattice
scores them) and a BPE model (merges recovered from the pieces, ranked by piece score; see :func:`bpe_merges`).
Models whose segmentation it cannot reproduce (char/word models, byte fallback, user-defined pieces in a BPE model:
:func:`koroberta.layout.check_exportable`) are refused before any work.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from koroberta.errors import InputError
from koroberta.layout import (BOS, EOS, FAIRSEQ_SPECIALS, FIRST_PIECE, MASK, PAD, UNK, USER_SYMBOL_SCORE,
                              check_dict_matches, check_exportable, read_dict_symbols)

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
    spm_model: Path | None  # None for an imported HF vocabulary (koroberta.hfvocab)
    dict_path: Path
    model_type: str = "unigram"  # the spm algorithm ("unigram" | "bpe"), and so the HF tokenizer model; "hf": imported
    imported: Any = None  # the koroberta.hfvocab.HFVocab of an import-hf vocab dir: its tokenizer files are exported

    @property
    def mask_id(self) -> int:
        return self.imported.mask_id if self.imported is not None else len(self.hf_vocab) - 1

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
    from koroberta.hfvocab import is_hf_vocab, load_hf_vocab

    d = Path(vocab_dir)
    if is_hf_vocab(d):  # koroberta import-hf: fairseq id = HF id, the original tokenizer files are exported
        hv = load_hf_vocab(d)
        if hv.rows != checkpoint_rows:
            raise InputError(f"dict.txt gives {hv.rows} fairseq symbols but the checkpoint's embedding has "
                             f"{checkpoint_rows} rows", path=hv.dict_path,
                             fix="pass as VOCAB_DIR the import-hf output the checkpoint's data-bin was made with")
        return ExportVocab(hf_vocab=tuple((sym, 0.0) for sym in hv.symbols), hf_to_fairseq=tuple(range(hv.rows)),
                           fairseq_symbols=hv.symbols, legacy=False, spm_model=None, dict_path=hv.dict_path,
                           model_type="hf", imported=hv)
    spm_model, dict_path = d / "spm.model", d / "dict.txt"
    for p in (spm_model, dict_path):
        if not p.is_file():
            raise InputError(f"{p.name} not found in the vocab dir", path=d,
                             fix="pass as VOCAB_DIR the output of `koroberta spm train` (spm.model + dict.txt)")
    if is_legacy_dict(dict_path):
        ev = _legacy_vocab(spm_model, dict_path)
    else:
        vocab = check_dict_matches(dict_path, spm_model)  # also refuses an spm model the export cannot reproduce
        fs = vocab.fairseq_symbols()
        user = set(vocab.user_symbols)  # PII placeholders: ordinary entries with the score spm's lattice gives them
        scores = [0.0] * len(FAIRSEQ_SPECIALS) \
            + [USER_SYMBOL_SCORE if p in user else sc for p, sc in zip(vocab.pieces[FIRST_PIECE:],
                                                                       vocab.scores[FIRST_PIECE:])] \
            + [FILLER_SCORE] * len(vocab.fillers) + [0.0]
        ev = ExportVocab(hf_vocab=tuple(zip(fs, scores)), hf_to_fairseq=tuple(range(len(fs))),
                         fairseq_symbols=tuple(fs), legacy=False, spm_model=spm_model, dict_path=dict_path,
                         model_type=check_exportable(spm_proto(spm_model), spm_model))
    if len(ev.fairseq_symbols) != checkpoint_rows:
        raise InputError(f"dict.txt gives {len(ev.fairseq_symbols)} fairseq symbols (incl. 4 specials and <mask>) but "
                         f"the checkpoint's embedding has {checkpoint_rows} rows", path=dict_path,
                         fix="pass as VOCAB_DIR the directory (spm.model + dict.txt) the checkpoint was trained with")
    return ev


def _legacy_vocab(spm_model: Path, dict_path: Path) -> ExportVocab:
    """HF ids in spm order (specials first, <mask> last); each reads the fairseq row the legacy dict gave its spm
    id (:func:`koroberta.spm.legacy.build_legacy_map`, which also validates the dict against the model)."""
    from koroberta.spm.legacy import build_legacy_map

    if check_exportable(spm_proto(spm_model), spm_model, pieces=False) != "unigram":
        # KoRoBERTa's models are Unigram; a legacy-layout BPE export would be a path no test has ever run
        raise InputError("a legacy (KoRoBERTa-layout) vocab with a BPE spm model cannot be exported", path=spm_model,
                         fix="legacy vocabs are exported with Unigram models only; retrain with `koroberta spm train`")
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


def bpe_merges(proto, vocab: dict[str, int]) -> list[tuple[str, str]]:
    """The merge list that makes an HF BPE model segment like spm's BPE model ``proto``.

    spm's BPE encoder does not store merges: it repeatedly joins the adjacent pair whose concatenation is a piece of
    highest score (scores are minus the order of learning). So every split of every ordinary piece into two pieces
    of ``vocab`` is a merge, ranked by the piece's score, splits of one piece by their parts' ids -- the rule of
    transformers' SentencePieceExtractor. Measured: identical ids on 2,900 kowiki lines and 400 NSMC reviews
    (tests/convert/test_export_kinds.py), and once on 40,000 strings built to make merges compete (overlapping
    pieces, repeated syllables, digit runs). Only ordinary spm pieces are merge results: a filler that happened to
    split into two pieces must never be produced.
    """
    normal = [(p.piece, p.score) for p in proto.pieces if p.type == _NORMAL and p.piece in vocab]
    merges = []
    for piece, score in normal:
        local = [(piece[:k], piece[k:]) for k in range(1, len(piece)) if piece[:k] in vocab and piece[k:] in vocab]
        local.sort(key=lambda lr: (vocab[lr[0]], vocab[lr[1]]))
        merges += [(score, lr) for lr in local]
    merges.sort(key=lambda m: -m[0])  # stable: equal scores keep their piece order
    return [lr for _, lr in merges]


def build_tokenizer(ev: ExportVocab):
    """A ``tokenizers.Tokenizer`` equivalent to spm + the fairseq dictionary (see module docstring)."""
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

    proto = spm_proto(ev.spm_model)
    ns = proto.normalizer_spec
    if ev.model_type == "bpe":
        vocab = {s: i for i, (s, _) in enumerate(ev.hf_vocab)}
        # fuse_unk: spm's BPE encoder yields one <unk> for a run of unknown characters (measured on NSMC's "ㄷㄷㄷ")
        tok = Tokenizer(models.BPE(vocab=vocab, merges=bpe_merges(proto, vocab), unk_token="<unk>", fuse_unk=True,
                                   byte_fallback=False))
    else:
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
        # spm: drop leading/trailing spaces, collapse runs -- of ' ' only, after the charsmap (which maps tabs etc.
        # to ' ' in the nmt_* rules). Not normalizers.Strip: it strips every Unicode space, so a tab (nfkc), an
        # NBSP (identity) or U+0085 (nmt_nfkc) at a line's end gave other ids than spm
        norms += [normalizers.Replace(Regex("^ +| +$"), ""), normalizers.Replace(Regex(" {2,}"), " ")]
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


def _symbols_or_none(dict_path: Path) -> list[str] | None:
    try:
        return read_dict_symbols(dict_path)
    except (InputError, OSError, UnicodeDecodeError):
        return None  # not a dict we can read: it proves nothing either way


def _first_difference(a: list[str], b: list[str]) -> str:
    i = next((k for k, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
    return f"first difference at line {i + 1}: {a[i] if i < len(a) else 'EOF'!r} vs {b[i] if i < len(b) else 'EOF'!r}"


def check_trained_with(ck, ev: ExportVocab) -> None:
    """Refuse a vocab dir that is not the one ``ck`` was trained with, even when its size matches.

    :func:`resolve_vocab` compared row counts, which any two vocabularies of one ``vocab_size`` share: an spm model
    retrained with another seed or text has other pieces at the same ids, and its export would load and run, with
    every token meaning something else. What training used is looked up in two places:

    * the data-bin fairseq recorded in the checkpoint (``cfg.task.data``), when it is still there and is this
      checkpoint's -- its dict.txt has the sha256 the train stage recorded next to the checkpoint
      (``train_config.json``), or, with no record, gives the checkpoint's row count: its dict.txt must list the same
      symbols, and the spm model must be the one preprocess encoded it with (the same pieces with other scores
      segment text differently);
    * else the sha256s of dict.txt and spm.model that the train stage recorded in ``train_config.json``.

    A checkpoint with neither (copied alone, trained outside koroberta) keeps the row-count check only.
    """
    from koroberta.artifacts import read_json, read_manifest, sha256_file
    from koroberta.train.preflight import TRAIN_STATE

    state_path = ck.path.parent / TRAIN_STATE
    try:
        state = read_json(state_path) if state_path.is_file() else {}
    except (ValueError, OSError):
        state = {}
    state = state if isinstance(state, dict) else {}
    rec_dict, rec_spm = state.get("dict_sha256"), state.get("spm_sha256")
    name = ck.path.name
    fix = ("pass as VOCAB_DIR the directory (spm.model + dict.txt) that the checkpoint's data-bin was preprocessed "
           "with")

    data = str(ck.task.get("data") or "").split(":")[0]  # fairseq takes colon-separated data shards
    db = Path(data) if data else None
    db_symbols = _symbols_or_none(db / "dict.txt") if db is not None and (db / "dict.txt").is_file() else None
    if db_symbols is not None:
        ours = rec_dict == sha256_file(db / "dict.txt") if rec_dict else \
            len(FAIRSEQ_SPECIALS) + len(db_symbols) + 1 == ck.vocab_rows
        if ours:
            if (db / "spm.model").is_file():
                fix = f"pass {db} as VOCAB_DIR (the data-bin holds both files) or the spm output it was made from"
            symbols = read_dict_symbols(ev.dict_path)
            if symbols != db_symbols:
                raise InputError(f"dict.txt is not the vocabulary {name} was trained with: its data-bin {db} "
                                 f"(cfg.task.data in the checkpoint) has another dict.txt "
                                 f"({_first_difference(symbols, db_symbols)})", path=ev.dict_path, fix=fix)
            stats = (read_manifest(db) or {}).get("stats", {})
            want = stats.get("spm_sha256") or rec_spm or (
                sha256_file(db / "spm.model") if (db / "spm.model").is_file() else None)
            if ev.imported is not None:  # the tokenizer preprocess encoded with (koroberta.hfvocab)
                have = ev.imported.record.get("tokenizer_sha256")
                want_tok = stats.get("tokenizer_sha256")
                if want_tok and want_tok != have:
                    raise InputError(f"tokenizer.json is not the one the data {name} was trained on was encoded "
                                     f"with (its data-bin {db} records sha256 {want_tok[:12]}...)",
                                     path=ev.imported.tokenizer_json, fix=fix)
                return
            if want and want != sha256_file(ev.spm_model):
                raise InputError(f"spm.model is not the one the data {name} was trained on was encoded with (its "
                                 f"data-bin {db} records spm sha256 {want[:12]}...): the same pieces with other "
                                 "scores segment text differently", path=ev.spm_model, fix=fix)
            return
    # the data-bin is gone (or moved): the hashes the train stage recorded are what is left
    for path, want, what in ((ev.dict_path, rec_dict, "dict.txt"), (ev.spm_model, rec_spm, "spm.model")):
        if want and path is not None and want != sha256_file(path):
            raise InputError(f"{what} is not the one {name} was trained with ({state_path} records sha256 "
                             f"{want[:12]}..., this file has {sha256_file(path)[:12]}...)", path=path, fix=fix)
