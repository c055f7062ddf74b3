"""The tokenizer half of an import: HF tokenizer files -> ``tokenizer/`` (verbatim) + ``dict.txt`` + ``vocab.json``.

See :mod:`koroberta.hfvocab` for the directory layout and why fairseq id = HF id holds.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Any

from koroberta.errors import DependencyError, InputError
from koroberta.hfvocab import (RECORD, ROLES, TOKENIZER_DIR, TOKENIZER_JSON, dict_text, fairseq_symbols,
                               load_tokenizer, special_strings, write_record)

log = logging.getLogger("koroberta.import_hf")

#: the files a Hugging Face tokenizer is saved as (copied verbatim; weights and the model config are not among them)
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json",
                   "vocab.txt", "vocab.json", "merges.txt", "sentencepiece.bpe.model", "spiece.model",
                   "tokenizer.model", "chat_template.jinja")


def _hf_tokenizer(hf_dir: Path) -> Any:
    """The directory's tokenizer as transformers loads it (its special-token roles come from tokenizer_config.json /
    special_tokens_map.json); refused unless it is a fast (``tokenizers``-backed) tokenizer."""
    from koroberta.hfcompat import import_transformers

    tf = import_transformers()
    fix = ("give the directory a fast tokenizer: `AutoTokenizer.from_pretrained(DIR).save_pretrained(DIR)` with a "
           "transformers version that converts it writes tokenizer.json")
    if not any((hf_dir / f).is_file() for f in TOKENIZER_FILES):
        raise InputError("no tokenizer files (tokenizer.json, vocab.txt, sentencepiece.bpe.model, ...)", path=hf_dir,
                         fix="copy the model's tokenizer files into the directory (save_pretrained writes them)")
    try:
        tok = tf.AutoTokenizer.from_pretrained(str(hf_dir), local_files_only=True)
    except Exception as e:  # transformers raises many types for an unusable tokenizer
        raise InputError(f"transformers cannot load its tokenizer ({str(e).splitlines()[0][:160]})", path=hf_dir,
                         fix=fix) from None
    backend = getattr(tok, "backend_tokenizer", None) if getattr(tok, "is_fast", False) else None
    if backend is None:
        raise InputError(f"the tokenizer ({type(tok).__name__}) has no fast version", path=hf_dir, fix=fix)
    return tok


def _check_roles(tok: Any, hf_dir: Path) -> None:
    """Ids 0-3 must be the cls/bos, pad, sep/eos and unk tokens: fairseq puts <s> <pad> </s> <unk> there."""
    for names, want in ROLES:
        ids = {n: tok.convert_tokens_to_ids(getattr(tok, n)) for n in names if getattr(tok, n, None) is not None}
        if not ids:
            raise InputError(f"the tokenizer defines no {' / '.join(names)}", path=hf_dir,
                             fix=f"fairseq needs that token at id {want}; only such tokenizers can be imported")
        bad = {n: i for n, i in ids.items() if i != want}
        if len(bad) == len(ids):
            n, i = next(iter(bad.items()))
            raise InputError(f"the tokenizer's {n} {getattr(tok, n)!r} has id {i}, but fairseq's {n.split('_')[0]} "
                             f"is id {want} (<s>=0 <pad>=1 </s>=2 <unk>=3)", path=hf_dir,
                             fix="only tokenizers with the RoBERTa/XLM-R/klue special ids can keep their ids in "
                                 "fairseq")
    if tok.mask_token is None:
        raise InputError("the tokenizer has no mask token", path=hf_dir,
                         fix="masked-LM pretraining needs one; only such tokenizers can be imported")


def write_vocab(hf_dir: str | Path, out: str | Path, rows: int) -> dict[str, Any]:
    """Write ``out/tokenizer/`` (the original files, plus tokenizer.json when only slow files were there),
    ``out/dict.txt`` and ``out/vocab.json`` for a model with ``rows`` embedding rows; returns the record."""
    from koroberta.artifacts import sha256_file

    hf_dir, out = Path(hf_dir), Path(out)
    try:
        import tokenizers  # noqa: F401
    except ImportError:
        raise DependencyError("the `tokenizers` library is not installed", fix="run scripts/setup_env.sh") from None
    tok = _hf_tokenizer(hf_dir)
    _check_roles(tok, hf_dir)
    tdir = out / TOKENIZER_DIR
    tdir.mkdir(parents=True, exist_ok=True)
    copied = [f for f in TOKENIZER_FILES if (hf_dir / f).is_file()]
    for f in copied:
        shutil.copyfile(hf_dir / f, tdir / f)
    if TOKENIZER_JSON not in copied:
        tok.backend_tokenizer.save(str(tdir / TOKENIZER_JSON))
        log.info("import-hf: %s has no tokenizer.json: wrote the one transformers converted", hf_dir)
    backend = load_tokenizer(tdir / TOKENIZER_JSON)
    id_to_token = {i: t for t, i in backend.get_vocab(with_added_tokens=True).items()}
    symbols = fairseq_symbols(id_to_token, rows, tok.mask_token, where=hf_dir)
    (out / "dict.txt").write_text(dict_text(symbols), encoding="utf-8")
    rec = {"kind": "hf", "tokenizer_sha256": sha256_file(tdir / TOKENIZER_JSON),
           "dict_sha256": sha256_file(out / "dict.txt"), "mask_id": symbols.index("<mask>"),
           "mask_token": tok.mask_token, "tokenizer_class": type(tok).__name__, "tokenizer_tokens": len(id_to_token),
           "rows": rows, "literals": special_strings(backend), "files": sorted(copied)}
    write_record(out / RECORD, **rec)
    return rec
