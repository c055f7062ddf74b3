"""``import_legacy``: record how a KoRoBERTa-style model's fairseq rows map to its spm pieces.

That recipe trained spm with BERT-style specials (e.g. ``[PAD]=0 [UNK]=1 [CLS]=2 [SEP]=3 [MASK]=4``), encoded
the corpus to spm *ids*, and let ``fairseq-preprocess`` build ``dict.txt`` by counting those id strings, sorted
by frequency (``1234 98765``: symbol = spm id as a decimal string). So fairseq row ``k`` is spm id ``int(symbol)``
for no fixed offset. ``legacy_map.json`` lists, for every fairseq row (``<mask>`` appended the way the masked_lm
task does), which spm id / piece it stands for, and the reverse map spm id -> fairseq row (spm pieces never seen
in the corpus have no row: fairseq turned them into ``<unk>``). The convert stage builds a tokenizer from it.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from typing import Any

from koroberta.artifacts import StageOutput, check_output_location, skip_if_complete
from koroberta.errors import InputError
from koroberta.layout import BOS, EOS, FAIRSEQ_SPECIALS, MASK, PAD, UNK, load_processor, read_dict_symbols

log = logging.getLogger("koroberta.spm")
STAGE = "spm-legacy"
FORMAT = "koroberta-legacy-map/1"
# which legacy spm piece plays each fairseq special's role (BERT-style names)
ROLE_PIECES = {"<s>": ("[CLS]", "<s>"), "<pad>": ("[PAD]", "<pad>"), "</s>": ("[SEP]", "</s>"),
               "<unk>": ("[UNK]", "<unk>"), MASK: ("[MASK]", "<mask>")}


def build_legacy_map(spm_model: str | Path, dict_txt: str | Path) -> dict[str, Any]:
    """The mapping (see module doc). Raises :class:`InputError` for a dict that cannot belong to the model."""
    spm_model, dict_txt = Path(spm_model), Path(dict_txt)
    if not spm_model.is_file():
        raise InputError("legacy spm model not found", path=spm_model, fix="pass the KoRoBERTa spm .model file")
    sp = load_processor(spm_model)
    n = sp.get_piece_size()
    symbols = read_dict_symbols(dict_txt)
    rows: list[dict[str, Any]] = [{"fairseq_id": i, "symbol": s, "kind": "special", "spm_id": None, "piece": None}
                                  for i, s in enumerate(FAIRSEQ_SPECIALS)]
    spm_to_fairseq: list[int] = [UNK] * n
    seen: set[int] = set()
    for k, sym in enumerate(symbols, start=1):
        fid = len(FAIRSEQ_SPECIALS) + k - 1
        if sym.isdigit():
            sid = int(sym)
            if sid >= n:
                raise InputError(f"dict line {k} is spm id {sid}, but the model has only {n} pieces", path=dict_txt,
                                 fix="pass the dict.txt built from this spm model's ids")
            if sid in seen:
                raise InputError(f"dict line {k}: spm id {sid} listed twice", path=dict_txt, fix="rebuild the dict")
            seen.add(sid)
            spm_to_fairseq[sid] = fid
            rows.append({"fairseq_id": fid, "symbol": sym, "kind": "piece", "spm_id": sid,
                         "piece": sp.id_to_piece(sid)})
        elif sym.startswith("madeupword"):
            rows.append({"fairseq_id": fid, "symbol": sym, "kind": "filler", "spm_id": None, "piece": None})
        else:
            raise InputError(f"dict line {k} symbol {sym!r} is neither an spm id nor a madeupword filler", path=dict_txt,
                             fix="this importer reads KoRoBERTa-style dicts over spm ids; a koroberta dict.txt "
                                 "needs no import")
    if not seen:
        raise InputError("dict.txt lists no spm ids", path=dict_txt, fix="pass the KoRoBERTa fairseq dict.txt")
    mask_id = len(rows)
    rows.append({"fairseq_id": mask_id, "symbol": MASK, "kind": "mask", "spm_id": None, "piece": None})
    pieces = {sp.id_to_piece(i): i for i in range(n)}
    specials: dict[str, Any] = {}
    for fs_sym, fid in (("<s>", BOS), ("<pad>", PAD), ("</s>", EOS), ("<unk>", UNK), (MASK, mask_id)):
        legacy_piece = next((p for p in ROLE_PIECES[fs_sym] if p in pieces), None)
        specials[fs_sym] = {"fairseq_id": fid, "legacy_piece": legacy_piece,
                            "legacy_spm_id": pieces.get(legacy_piece) if legacy_piece else None}
        if legacy_piece is not None:
            rows[fid]["piece"] = legacy_piece
            rows[fid]["spm_id"] = pieces[legacy_piece]
            # the special's spm id, if it also got a counted row (e.g. [UNK] emitted by spm), keeps that row;
            # otherwise encoding it must give the special's fairseq row
            if spm_to_fairseq[pieces[legacy_piece]] == UNK:
                spm_to_fairseq[pieces[legacy_piece]] = fid
    return {"format": FORMAT, "spm_pieces": n, "fairseq_rows": len(rows), "mask_id": mask_id,
            "unk_spm_id": sp.unk_id(), "rows": rows, "spm_to_fairseq": spm_to_fairseq, "specials": specials,
            "unseen_spm_ids": sum(1 for i in range(n) if i not in seen)}


def import_legacy(spm_model: str | Path, dict_txt: str | Path, out_dir: str | Path, *, force: bool = False,
                  overwrite: bool = False) -> Path:
    """Copy a legacy model + dict into ``out_dir`` with ``legacy_map.json``; returns the complete directory."""
    inputs = {"spm_model": Path(spm_model), "dict": Path(dict_txt)}
    config = {"format": FORMAT}
    check_output_location(out_dir, STAGE, inputs, overwrite=overwrite)  # before any work: nothing to undo
    if skip_if_complete(out_dir, STAGE, config, inputs, force=force, log=log):
        return Path(out_dir)
    mapping = build_legacy_map(spm_model, dict_txt)
    with StageOutput(out_dir, stage=STAGE, config=config, inputs=inputs, overwrite=overwrite) as st:
        shutil.copyfile(spm_model, st.tmp / "spm.model")
        shutil.copyfile(dict_txt, st.tmp / "dict.txt")
        (st.tmp / "legacy_map.json").write_text(json.dumps(mapping, ensure_ascii=False, indent=1) + "\n",
                                                encoding="utf-8")
        st.stats.update({k: mapping[k] for k in ("spm_pieces", "fairseq_rows", "mask_id", "unseen_spm_ids")})
    log.info("legacy import: %d fairseq rows, %d spm pieces (%d never seen -> <unk>)", mapping["fairseq_rows"],
             mapping["spm_pieces"], mapping["unseen_spm_ids"])
    return Path(out_dir)
