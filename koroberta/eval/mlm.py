"""Did the model learn anything? Masked-token accuracy and loss of the export against a unigram baseline.

A masked LM that has learned nothing beyond token frequencies predicts the most frequent token everywhere and has
the unigram distribution's cross-entropy. So the check masks tokens of held-out text (the valid split), lets the
exported HF model predict them, and scores the unigram model -- token frequencies of the *training* data-bin -- on
exactly the same positions:

* accuracy: model argmax vs "always the most frequent training token";
* loss: model cross-entropy vs unigram cross-entropy, both in bits per masked token (fairseq's unit).

Masking is deterministic (seeded), every selected token is replaced by ``<mask>`` (no 80/10/10: this measures
prediction, not training), and special tokens are never masked.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from koroberta.errors import InputError


@dataclass
class MaskedLMCheck:
    lines: int
    masked: int
    accuracy: float
    loss_bits: float
    unigram_accuracy: float
    unigram_loss_bits: float
    unigram_top_token: str
    frequent_ids: list[int]  # the 20 most frequent training tokens (to tell "answers with frequencies" apart)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def describe(self) -> str:
        verdict = ("learned beyond token frequencies" if self.accuracy > self.unigram_accuracy
                   and self.loss_bits < self.unigram_loss_bits else "NOT better than the unigram baseline")
        return (f"masked-token accuracy {self.accuracy:.3f} vs {self.unigram_accuracy:.3f} for always "
                f"{self.unigram_top_token!r}; loss {self.loss_bits:.2f} vs {self.unigram_loss_bits:.2f} bits "
                f"(unigram) over {self.masked:,} masked tokens of {self.lines:,} valid lines: {verdict}")


def unigram_counts(data_bin: str | Path, vocab_rows: int, chunk: int = 1 << 24) -> np.ndarray:
    """Token counts of ``data_bin/train.bin`` (fairseq ids), read in chunks so a multi-GB split stays flat in
    memory. ``vocab_rows`` = symbols the data-bin was written with (4 specials + dict.txt rows)."""
    from koroberta.databin import mmap_dtype, shard_names

    # a sharded data-bin (preprocess.shards) has its train split in shard<k>/: the counts of all of them
    paths = [Path(data_bin) / s / "train.bin" for s in shard_names(data_bin)] or [Path(data_bin) / "train.bin"]
    counts = np.zeros(vocab_rows + 1, dtype=np.int64)  # + <mask>, which never occurs in the data
    for path in paths:
        if not path.is_file():
            raise InputError("train.bin not found", path=path.parent,
                             fix="pass the data-bin written by `koroberta preprocess`")
        # the dtype the .idx records (what preprocess wrote), not one guessed from vocab_rows: an imported
        # vocabulary's rows count <mask> once (it sits inside dict.txt), so a guess could cross a dtype boundary
        ids = np.memmap(path, dtype=mmap_dtype(path.with_suffix(".idx")), mode="r")
        for start in range(0, len(ids), chunk):
            counts += np.bincount(ids[start:start + chunk], minlength=len(counts))[: len(counts)]
    return counts


def unigram_model(counts: np.ndarray, special_ids: Iterable[int]) -> tuple[int, np.ndarray]:
    """The baseline of the check from token ``counts`` (float, zeroed in place for ``special_ids``, which are never
    masked and never an answer): its answer (the most frequent token) and every token's log2 probability, add-one
    smoothed so that a valid token unseen in train has a finite cost."""
    for i in special_ids:
        if i < len(counts):
            counts[i] = 0.0
    return int(counts.argmax()), np.log2((counts + 1.0) / (counts.sum() + len(counts)))


def masked_lm_check(model_dir: str | Path, text: str | Path, data_bin: str | Path, *, max_lines: int = 1000,
                    mask_prob: float = 0.15, max_length: int = 256, seed: int = 0,
                    batch_size: int = 32) -> MaskedLMCheck:
    """Score the HF export in ``model_dir`` on the first ``max_lines`` non-blank lines of ``text``."""
    import torch

    from koroberta.hfcompat import import_transformers

    tf = import_transformers()
    tok = tf.AutoTokenizer.from_pretrained(str(model_dir))
    model = tf.AutoModelForMaskedLM.from_pretrained(str(model_dir), dtype=torch.float32).eval()
    lines = []
    with open(text, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                lines.append(line.rstrip("\n"))
                if len(lines) >= max_lines:
                    break
    if not lines:
        raise InputError("no non-blank lines to score", path=text, fix="pass the corpus stage's valid.txt")
    # fairseq id == HF id in koroberta's layout (koroberta.layout); the data-bin has no <mask> row
    counts = unigram_counts(data_bin, len(tok) - 1).astype(np.float64)
    special = set(tok.all_special_ids)
    top, logp = unigram_model(counts, special)

    gen = torch.Generator().manual_seed(seed)
    n_masked = correct = uni_correct = 0
    loss_bits = uni_bits = 0.0
    with torch.no_grad():
        for start in range(0, len(lines), batch_size):
            enc = tok(lines[start:start + batch_size], truncation=True, max_length=max_length, padding=True,
                      return_tensors="pt")
            ids = enc["input_ids"]
            can = enc["attention_mask"].bool()
            for s in special:
                can &= ids != s
            pick = (torch.rand(ids.shape, generator=gen) < mask_prob) & can
            if not pick.any():
                continue
            inputs = ids.masked_fill(pick, tok.mask_token_id)
            logits = model(input_ids=inputs, attention_mask=enc["attention_mask"]).logits[pick]
            gold = ids[pick]
            n_masked += int(gold.numel())
            correct += int((logits.argmax(-1) == gold).sum())
            loss_bits += float(torch.nn.functional.cross_entropy(logits, gold, reduction="sum")) / math.log(2)
            g = gold.numpy()
            uni_correct += int((g == top).sum())
            uni_bits += float(-logp[g].sum())
    if n_masked == 0:
        raise InputError("no tokens were masked (lines too short?)", path=text, fix="score more lines")
    return MaskedLMCheck(lines=len(lines), masked=n_masked, accuracy=correct / n_masked,
                         loss_bits=loss_bits / n_masked, unigram_accuracy=uni_correct / n_masked,
                         unigram_loss_bits=uni_bits / n_masked, unigram_top_token=tok.convert_ids_to_tokens(top),
                         frequent_ids=[int(i) for i in np.argsort(-counts, kind="stable")[:20]])
