"""``spm:`` section — SentencePiece vocabulary training options."""

from __future__ import annotations

import dataclasses
from typing import Any, Optional

from koroberta.config import Config, available_cpus, option

#: the default ``input_sentence_size``. Why 2M: spm's peak memory grows ~1.5 KB per sampled sentence (the fit in
#: BENCHMARKS.md, koroberta.spm.train.estimate_peak_bytes): 2M is ~4 GiB, which an 8 GB laptop, VM or default SLURM
#: allocation holds, where every sentence of full kowiki (~5-6M) needs over 8 GB. The presets for full kowiki set
#: 4M (~7 GiB) explicitly; a corpus of fewer sentences is trained on all of them, byte for byte as with 0.
DEFAULT_SENTENCES = 2_000_000


@dataclasses.dataclass
class SpmConfig(Config):
    """How ``koroberta spm train`` builds the vocabulary (ids laid out by :mod:`koroberta.layout`)."""

    SECTION = "spm"
    # threads is identity: spm merges its EM statistics per thread, so the model bytes depend on the thread count
    # (why the presets pin it); identity() holds threads 0 as the count it stands for. Nothing here is a pure
    # run-time knob.
    IDENTITY = ("model_type", "vocab_size", "character_coverage", "normalization_rule_name", "input_sentence_size",
                "shuffle", "seed", "threads", "pad_to", "max_sentence_length", "max_sentencepiece_length",
                "hard_vocab_limit", "split_digits", "user_symbols")
    RUNTIME = ()
    # null = no user symbols, how every vocabulary was trained before the field existed.
    # input_sentence_size is not here although its default changed from 0 (every sentence): a vocabulary trained
    # on every sentence of a corpus larger than the new default would now be built from a sample, so configs that
    # relied on the old default must not find it complete. They retrain spm once; a corpus of no more sentences
    # than the sample gives the same bytes as before (koroberta.spm.train), so later stages stay complete.
    LATER_IDENTITY = {"user_symbols": None}

    # both export to an HF fast tokenizer with spm's ids (Unigram / BPE model: koroberta.convert.vocab); spm's char
    # and word models have no such export, so they are not offered
    model_type: str = option("unigram", help="SentencePiece algorithm (the HF export reproduces either exactly)",
                             choices=("unigram", "bpe"))
    vocab_size: int = option(32000, help="spm pieces incl. <unk>,<s>,</s>; the fairseq/HF vocab adds <pad>, "
                                         "fillers and <mask>")
    character_coverage: float = option(0.9995, help="share of characters covered by the alphabet; the rest is <unk>")
    normalization_rule_name: str = option("nmt_nfkc", help="spm normaliser, applied in training AND encoding (and "
                                                           "carried into the HF tokenizer as its precompiled charsmap)",
                                          choices=("nmt_nfkc", "nfkc", "nmt_nfkc_cf", "nfkc_cf", "identity"))
    input_sentence_size: int = option(DEFAULT_SENTENCES, help="sample this many sentences for training (0 = all); "
                                                              "peak memory grows ~1.5 KB per sentence: 2M ~4 GiB")
    shuffle: bool = option(True, help="sample randomly (reservoir, seeded) instead of taking the first N sentences")
    seed: int = option(1, help="random seed of the sampler and of spm's trainer")
    threads: int = option(0, help="trainer threads (0 = the CPUs this process may use, a count that the identity "
                                   "records); the model bytes depend on this number: pin it")
    pad_to: int = option(8, help="pad the final vocab (incl. <mask>) to a multiple of this with madeupword fillers")
    max_sentence_length: int = option(4192, help="sentences longer than this many bytes are skipped by the trainer")
    max_sentencepiece_length: int = option(16, help="longest piece in characters")
    hard_vocab_limit: bool = option(True, help="fail when the text cannot support vocab_size pieces (false: accept "
                                               "a smaller vocab)")
    split_digits: bool = option(False, help="split numbers into single digits")
    user_symbols: Optional[list[str]] = option(
        None, cli=False,
        help="strings that are always one piece (spm user-defined symbols, ids 3.. right after <unk> <s> </s>; "
             "ordinary entries of the HF vocabulary). null: koroberta run fills in the corpus's PII placeholders "
             "when a source's profile replaces PII, else none")

    def resolved_threads(self) -> int:
        """The trainer's thread count: ``threads``, or for 0 the CPUs this process may use now."""
        return self.threads or available_cpus()

    def identity(self) -> dict[str, Any]:
        # threads 0 is a different count on every machine and spm's bytes follow the count: the identity holds the
        # resolved count, so a vocabulary trained with 0 on 2 CPUs is not complete for 0 on 16 (it would be built
        # differently there), and 0 on 16 CPUs is one output with an explicit `threads: 16`
        if self.threads == 0:
            return dataclasses.replace(self, threads=self.resolved_threads()).identity()
        return super().identity()

    def validate(self) -> None:
        self.require(self.vocab_size >= 16, f"vocab_size={self.vocab_size} is too small (>= 16)")
        self.require(0.9 <= self.character_coverage <= 1.0, "character_coverage must be in [0.9, 1.0]")
        self.require(self.input_sentence_size >= 0, "input_sentence_size must be >= 0 (0 = all)")
        self.require(self.threads >= 0, "threads must be >= 0 (0 = the CPUs this process may use)")
        self.require(1 <= self.pad_to <= 1024, "pad_to must be in 1..1024")
        self.require(self.max_sentence_length >= 16, "max_sentence_length must be >= 16 bytes")
        self.require(1 <= self.max_sentencepiece_length <= 64, "max_sentencepiece_length must be in 1..64")
        if self.user_symbols is not None:
            from koroberta.layout import check_user_symbols

            check_user_symbols(self.user_symbols, self.require)
            # spm's BPE encoder treats a user symbol as one atom that no merge touches; an HF BPE model can only
            # build a token by merges of vocabulary entries, so no export could reproduce it
            self.require(not self.user_symbols or self.model_type == "unigram",
                         "user_symbols (PII placeholders) need model_type: unigram (an HF BPE tokenizer cannot keep "
                         "them whole)", fields=("user_symbols", "model_type"))
