"""Export with an imported vocabulary (``koroberta import-hf``): the original HF tokenizer files, checked against
what the model was trained on.

The spm path builds its tokenizer and compares it with spm + fairseq's dictionary. Here the tokenizer is the user's
own, byte for byte, so comparing it with itself would prove nothing: its ids are compared with the **data-bin's**
encoding of the same lines -- what fairseq actually trained on -- when the checkpoint's data-bin (``cfg.task.data``)
is there and was made from the parity text; otherwise (a checkpoint straight from the import, a moved data-bin) with
the preprocess stage's encoder (``tokenizers`` batch encoding of ``tokenizer.json``), and the manifest says which.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from koroberta.convert.parity import TokenParity
from koroberta.layout import BOS, EOS, UNK


def export_tokenizer_files(ev: Any, out_dir: Path) -> list[str]:
    """Copy the imported tokenizer's files (``vocab_dir/tokenizer/*``) into ``out_dir`` unchanged."""
    src = ev.imported.tokenizer_json.parent
    names = sorted(f.name for f in src.iterdir() if f.is_file())
    for n in names:
        shutil.copyfile(src / n, out_dir / n)
    return names


def _data_bin_lines(ck: Any, ev: Any, parity_text: Path | None) -> tuple[Path, Any] | None:
    """``(data_bin, items of valid)`` when the checkpoint's data-bin is there, holds this dict.txt, and its valid
    subset was made from ``parity_text`` (same content); else None."""
    from koroberta.artifacts import fingerprint, read_manifest, sha256_file
    from koroberta.databin import read_mmap

    data = str(ck.task.get("data") or "").split(":")[0]
    if not data or parity_text is None:
        return None
    db = Path(data)
    # a sharded data-bin is passed to fairseq as shard0:shard1:...; its manifest is the parent's, valid is shard0's
    m = read_manifest(db) or (read_manifest(db.parent) if db.name.startswith("shard") else None)
    if m is None or not (db / "valid.idx").is_file() or not (db / "dict.txt").is_file():
        return None
    if sha256_file(db / "dict.txt") != sha256_file(ev.dict_path):
        return None
    if m.get("inputs", {}).get("valid", {}).get("fingerprint") != fingerprint(parity_text):
        return None
    sizes, flat = read_mmap(db / "valid")
    return db, (sizes, flat)


def check_token_ids(tokenizer: Any, ev: Any, ck: Any, parity_text: Path | None, lines: list[str],
                    ) -> tuple[TokenParity, str]:
    """``tokenizer(line)`` ids == ``<s>`` + the ids fairseq trained on + ``</s>`` per line, and what the fairseq side
    was: ``"data-bin valid"`` or ``"preprocess encoder"``."""
    import numpy as np

    res = TokenParity()
    found = _data_bin_lines(ck, ev, parity_text)
    if found is not None:
        # every line of the text (blank ones included) is one item of the .bin, in order
        db, (sizes, flat) = found
        ends = np.cumsum(sizes)
        with open(parity_text, encoding="utf-8") as f:  # type: ignore[arg-type]
            raw = [l.rstrip("\n") for l in f]
        pairs = []
        for i, line in enumerate(raw[: len(sizes)]):
            if line.strip():
                pairs.append((i + 1, line, [int(x) for x in flat[ends[i] - sizes[i]:ends[i]]]))
            if len(pairs) >= len(lines):
                break
        against = f"data-bin valid ({db})"
    else:
        enc = ev.imported.tokenizer().encode_batch(lines, add_special_tokens=False)
        pairs = [(n, line, list(e.ids) + [EOS]) for n, (line, e) in enumerate(zip(lines, enc), 1)]
        against = "preprocess encoder"
    hf_all = tokenizer([p[1] for p in pairs], add_special_tokens=True)["input_ids"]
    for (n, line, fs), hf in zip(pairs, hf_all):
        want = [BOS] + fs
        res.lines += 1
        res.tokens += len(want)
        res.fairseq_unk_tokens += sum(1 for i in fs if i == UNK)
        if list(hf) != want:
            res.mismatches += 1
            if len(res.examples) < 3:
                res.examples.append({"line": n, "text": line[:80], "hf": list(hf)[:20], "fairseq": want[:20]})
    return res, against


def same_ids_logit_diff(fs_model: Any, hf_model: Any, tokenizer: Any, sentences: list[str], max_positions: int,
                        ) -> tuple[float, int]:
    """max |fairseq - HF| logit over every position and vocabulary row of ``sentences`` (each unpadded), both fed
    the HF tokenizer's ids with its specials: fairseq id = HF id is what an imported vocabulary promises."""
    import torch

    worst, n = 0.0, 0
    with torch.inference_mode():
        for s in sentences:
            ids = torch.tensor([tokenizer(s, add_special_tokens=True)["input_ids"][:max_positions]])
            hf = hf_model(input_ids=ids).logits[0].float()
            fs = fs_model(ids)[0][0].float()
            if hf.shape != fs.shape:
                return float("inf"), n + 1
            worst = max(worst, float((hf - fs).abs().max()))
            n += 1
    return worst, n
