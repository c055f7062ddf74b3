"""``train_vocab``: SentencePiece on the train split, laid out so that fairseq id = spm id + 1 (see layout.py)."""

from __future__ import annotations

import io
import logging
import resource
import time
from pathlib import Path
from typing import Iterator

from koroberta.artifacts import StageOutput, skip_if_complete
from koroberta.config import available_cpus
from koroberta.errors import ConfigError, InputError
from koroberta.spm.config import SpmConfig
from koroberta.spm.layout import SPM_SPECIALS, load_vocab
from koroberta.spm.text import Repairs, iter_line_chunks

log = logging.getLogger("koroberta.spm")
STAGE = "spm"


def _sentences(path: Path, counts: dict[str, int], repairs: Repairs) -> Iterator[str]:
    """Non-blank lines of the train split (blank lines are document separators, not sentences)."""
    for chunk in iter_line_chunks(path, 20000, policy="repair", repairs=repairs):
        for line in chunk:
            if line.strip():
                counts["sentences"] += 1
                yield line
            else:
                counts["blank_lines"] += 1


def _fmt_score(x: float) -> str:
    return "0" if x == 0 else f"{x:.6g}"


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def spm_trainer_kwargs(cfg: SpmConfig) -> dict[str, object]:
    """The exact ``SentencePieceTrainer.train`` options (besides input/output) used for ``cfg``."""
    kwargs: dict[str, object] = dict(
        model_type=cfg.model_type, vocab_size=cfg.vocab_size, character_coverage=cfg.character_coverage,
        normalization_rule_name=cfg.normalization_rule_name, input_sentence_size=cfg.input_sentence_size,
        shuffle_input_sentence=cfg.shuffle, num_threads=cfg.threads or available_cpus(),
        max_sentence_length=cfg.max_sentence_length, max_sentencepiece_length=cfg.max_sentencepiece_length,
        hard_vocab_limit=cfg.hard_vocab_limit, split_digits=cfg.split_digits,
        # the XLM-R layout: no pad piece, no user-defined symbols, so every ordinary piece has id >= 3
        **SPM_SPECIALS,
        # byte_fallback would add 256 <0xNN> pieces; kowiki at 0.9995 coverage leaves ~0.01% <unk>, measured
        byte_fallback=False, minloglevel=2,
        # spm >= 0.2 trains from a big corpus fine without it; it only widens internal counters
        train_extremely_large_corpus=False,
    )
    return kwargs


#: piece scores are rounded to multiples of this (2^-8). Why: a Viterbi tie between two segmentations with the same
#: pieces in another order ("1|00|0" vs "1|0|00") is an exact tie mathematically, but spm sums float32 scores over
#: the whole sentence while the HF tokenizer sums float64 per word, so rounding noise broke such ties differently
#: (measured: 2 of 423 valid lines of the e2e fixture, e.g. "그래프1000"). With scores on a 2^-8 grid every path
#: sum below 2^15 in magnitude (a few thousand pieces) is exact in both, ties stay ties and both take the same
#: (first-found) path. The change to each log-prob is < 0.002, far below what separates real alternatives.
SCORE_QUANTUM = 2.0 ** -8


def quantize_scores(model: bytes) -> bytes:
    """Round the scores of the ordinary pieces of a serialized spm model to :data:`SCORE_QUANTUM`."""
    from sentencepiece import sentencepiece_model_pb2 as pb

    proto = pb.ModelProto()
    proto.ParseFromString(model)
    for piece in proto.pieces:
        if piece.type == pb.ModelProto.SentencePiece.NORMAL:
            piece.score = round(piece.score / SCORE_QUANTUM) * SCORE_QUANTUM
    return proto.SerializeToString()


def train_vocab(cfg: SpmConfig, train_text: str | Path, out_dir: str | Path, *, force: bool = False,
                overwrite: bool = False) -> Path:
    """Train SentencePiece on ``train_text`` and write ``spm.model``, ``spm.vocab`` and ``dict.txt`` to ``out_dir``.

    Returns the complete output directory (skipped when already complete for the same config and input, unless
    ``force``). Deterministic: spm's sampler is seeded with ``cfg.seed`` and its EM statistics are merged in thread
    order, so the same input, config and thread count give byte-identical files.
    """
    import sentencepiece as spm

    train_text, out = Path(train_text), Path(out_dir)
    if not train_text.is_file():
        raise InputError("train split not found", path=train_text, fix="run `koroberta corpus` first")
    inputs = {"train": train_text}
    if skip_if_complete(out, STAGE, cfg, inputs, force=force, log=log):
        return out
    with StageOutput(out, stage=STAGE, config=cfg, inputs=inputs, overwrite=overwrite) as st:
        counts = {"sentences": 0, "blank_lines": 0}
        repairs = Repairs()
        kwargs = spm_trainer_kwargs(cfg)
        spm.set_random_generator_seed(cfg.seed)
        t0 = time.perf_counter()
        try:
            # model_writer instead of model_prefix: spm stores model_prefix in the model's TrainerSpec, so training
            # into two different (temporary) directories would give two different spm.model files
            model_bytes = io.BytesIO()
            spm.SentencePieceTrainer.train(sentence_iterator=_sentences(train_text, counts, repairs),
                                           model_writer=model_bytes, **kwargs)
        except RuntimeError as e:
            msg = str(e).strip().splitlines()[-1] if str(e).strip() else repr(e)
            if counts["sentences"] == 0:
                raise InputError("train split has no non-blank lines", path=train_text,
                                 fix="check the corpus stage output") from None
            if "Vocabulary size is smaller than required_chars" in msg:
                raise ConfigError(f"spm.vocab_size={cfg.vocab_size} cannot hold the alphabet of {train_text} ({msg})",
                                  fix="raise vocab_size or lower character_coverage (Korean text needs ~1,500-2,500 "
                                      "characters at 0.9995)") from None
            if "Vocabulary size too high" in msg:
                raise ConfigError(f"spm.vocab_size={cfg.vocab_size} is too large for {train_text} ({msg})",
                                  fix="use a smaller vocab_size or set `hard_vocab_limit: false`") from None
            raise InputError(f"SentencePiece training failed: {msg}", path=train_text,
                             fix="check the text and the spm options") from None
        st.timing["train_s"] = round(time.perf_counter() - t0, 3)
        st.timing["peak_rss_mb"] = round(_peak_rss_mb(), 1)
        st.timing["threads"] = int(kwargs["num_threads"])  # type: ignore[arg-type]
        if counts["sentences"] == 0:
            raise InputError("train split has no non-blank lines", path=train_text, fix="check the corpus stage output")
        (st.tmp / "spm.model").write_bytes(quantize_scores(model_bytes.getvalue()))
        vocab = load_vocab(st.tmp / "spm.model", pad_to=cfg.pad_to)
        # spm.vocab as spm itself writes it (piece<TAB>score), for people; nothing reads it back
        (st.tmp / "spm.vocab").write_text("".join(f"{p}\t{_fmt_score(sc)}\n" for p, sc in zip(vocab.pieces, vocab.scores)),
                                          encoding="utf-8")  # raises on a reserved/whitespace piece
        (st.tmp / "dict.txt").write_text(vocab.dict_text(), encoding="utf-8")
        st.stats.update({
            "pieces": len(vocab.pieces),
            "fillers": len(vocab.fillers),
            "final_vocab_size": len(vocab.fairseq_symbols()),
            "mask_id": vocab.mask_id,
            "sentences_read": counts["sentences"],
            "blank_lines_skipped": counts["blank_lines"],
            "repairs": repairs.to_dict(),
            "trainer": {k: v for k, v in kwargs.items() if k != "minloglevel"},
            "score_quantum": SCORE_QUANTUM,
        })
        log.info("spm: %d pieces (+%d fillers, final vocab %d incl. <mask>) from %d sentences in %.1fs, peak RSS "
                 "%.0f MB", len(vocab.pieces), len(vocab.fillers), len(vocab.fairseq_symbols()),
                 counts["sentences"], st.timing["train_s"], st.timing["peak_rss_mb"])
    return out

