"""``train_vocab``: SentencePiece on the train split, laid out so that fairseq id = spm id + 1 (see layout.py)."""

from __future__ import annotations

import io
import itertools
import logging
import resource
import time
from pathlib import Path
from typing import Iterable, Iterator

from koroberta.artifacts import StageOutput, check_output_location, skip_if_complete
from koroberta.encoding import check_text_file
from koroberta.errors import ConfigError, InputError, KorobertaError
from koroberta.spm.config import SpmConfig
from koroberta.layout import SPM_SPECIALS, load_vocab
from koroberta.textfile import Repairs, iter_line_chunks

log = logging.getLogger("koroberta.spm")
STAGE = "spm"


def _sentences(path: Path, counts: dict[str, int], repairs: Repairs, failed: list[InputError]) -> Iterator[str]:
    """Non-blank lines of the train split (blank lines are document separators, not sentences). Its encoding was
    checked before (train_vocab); a refusal while streaming (too many invalid bytes further on) is kept in
    ``failed``: spm turns an exception raised in its sentence iterator into a RuntimeError with the text only."""
    try:
        for chunk in iter_line_chunks(path, 20000, policy="repair", repairs=repairs, checked=True):
            for line in chunk:
                if line.strip():
                    counts["sentences"] += 1
                    yield line
                else:
                    counts["blank_lines"] += 1
    except InputError as e:
        failed.append(e)
        raise


def sample_sentences(sentences: Iterable[str], n: int, shuffle: bool, seed: int) -> list[str]:
    """``n`` of ``sentences`` (all when there are fewer), in their file order: a seeded reservoir sample
    (Algorithm R, ``random.Random(seed)``) when ``shuffle``, else the first ``n``.

    Why not spm's own ``input_sentence_size`` sampling: in sentencepiece 0.2.3 it is not reproducible across
    processes even after ``set_random_generator_seed`` (measured: the same text, seed and options gave a different
    spm.model in every new process, the same one on repeated calls within a process), which would make a sampled
    vocabulary (configs/base.yaml samples 4M sentences) differ from machine to machine. Sampling here costs one
    Python pass over the lines and keeps at most ``n`` of them, as spm's reservoir does.
    """
    import random

    if not shuffle:
        return list(itertools.islice(sentences, n))
    rng = random.Random(seed)
    keep: list[tuple[int, str]] = []
    for i, s in enumerate(sentences):
        if i < n:
            keep.append((i, s))
        else:
            j = rng.randrange(i + 1)
            if j < n:
                keep[j] = (i, s)
    return [s for _, s in sorted(keep)]


def _fmt_score(x: float) -> str:
    return "0" if x == 0 else f"{x:.6g}"


def _peak_rss_mb() -> float:
    """Peak RSS of this process or a child it waited for (the trainer process): Linux reports KiB."""
    return max(resource.getrusage(who).ru_maxrss for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)) / 1024


class _TrainerTraceback(Exception):
    """The traceback of an unexpected exception in the trainer process, chained to it when re-raised here."""


def _die_with_parent(parent: int) -> None:
    """Linux: have the kernel kill this process when its parent dies. A parent killed outright (SIGKILL, a plain
    SIGTERM) runs no cleanup, and the trainer would otherwise go on for hours with no one to take its result."""
    import ctypes
    import os
    import signal
    import sys

    if not sys.platform.startswith("linux"):
        return
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # the parent was gone before prctl took effect
        os._exit(1)


def run_trainer_job(job: dict) -> tuple:
    """The trainer process (``python -m koroberta.spm.trainer_process``): SentencePiece on :func:`_sentences` of the
    train text (read here: a sentence iterator cannot cross processes). Returns (exception, its traceback, model bytes, and the
    reader's counts, repairs and refusals, which ``train_vocab`` reports whether training succeeded or not)."""
    import pickle
    import signal
    import traceback

    import sentencepiece as spm

    # Ctrl-C reaches every process of the terminal's process group. The parent stops the run and kills this
    # process; here it would only become a KeyboardInterrupt that spm reports as a "training failed" RuntimeError.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _die_with_parent(job["parent"])
    spm.set_random_generator_seed(job["seed"])
    counts, repairs, failed = job["counts"], job["repairs"], job["failed"]
    kwargs = dict(job["kwargs"])
    model = io.BytesIO()
    err: BaseException | None = None
    tb = None
    try:
        sentences: Iterable[str] = _sentences(job["train_text"], counts, repairs, failed)
        n = int(kwargs.get("input_sentence_size") or 0)
        if n:
            shuffle = bool(kwargs.get("shuffle_input_sentence"))
            sample = sample_sentences(sentences, n, shuffle, job["seed"])
            sentences = sample
            kwargs.update(input_sentence_size=0)  # spm trains on exactly these
            # a sample that is every sentence (fewer than n; or the reservoir read no more than n) keeps the options
            # input_sentence_size 0 gives, since spm stores them in the model: the same text gives the same bytes as
            # 0, so a vocabulary trained before the default became a sample stays the same for later stages
            if not (len(sample) < n or (shuffle and counts["sentences"] == len(sample))):
                kwargs.update(shuffle_input_sentence=False)
        spm.SentencePieceTrainer.train(sentence_iterator=iter(sentences), model_writer=model, **kwargs)
    except Exception as e:  # sent to the parent, which raises it where the in-process call would have
        err, tb = e, traceback.format_exc()
        try:
            pickle.loads(pickle.dumps(e))
        except Exception:
            err = RuntimeError(f"{type(e).__name__}: {e}")
    return err, tb, model.getvalue(), counts, repairs, failed


def _train_in_child(model_writer: io.BytesIO, seed: int, train_text: Path, counts: dict[str, int],
                    repairs: Repairs, failed: list[InputError], kwargs: dict[str, object]) -> None:
    """``SentencePieceTrainer.train`` into ``model_writer``, run in a child process so that Ctrl-C stops it.

    The C++ trainer holds the thread for the whole run (hours on the base config) and never returns to Python to
    notice a signal; this process only waits on the child's pipe, which Ctrl-C interrupts at once
    (KeyboardInterrupt): the trainer is then killed, and the caller's StageOutput removes the temporary output.

    A fresh interpreter (``python -m koroberta.spm.trainer_process``), not multiprocessing: a *forked* child of a
    process that holds threads (torch's OpenMP pool, a test run that loaded it) can deadlock on a lock one of them held (seen:
    stuck in futex_wait), and a *spawned* one re-imports the caller's ``__main__``, which breaks any script without
    a main guard. The job and the result travel as pickles over the child's stdin/stdout (our own process on both
    ends). Same input, seed and options, so the same model bytes; spm's own log lines go to the inherited stderr.
    ``counts``, ``repairs`` and ``failed`` are updated as if the reader had run here, and the trainer's exception
    (spm's RuntimeError, a reader's InputError) is raised here.
    """
    import os
    import pickle
    import subprocess
    import sys

    job = {"parent": os.getpid(), "seed": seed, "train_text": Path(train_text), "counts": counts,
           "repairs": repairs, "failed": failed, "kwargs": kwargs}
    proc = subprocess.Popen([sys.executable, "-m", "koroberta.spm.trainer_process"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE)
    try:
        out, _ = proc.communicate(pickle.dumps(job))
    finally:
        if proc.poll() is None:  # Ctrl-C (KeyboardInterrupt in communicate) or another error here: stop it now
            proc.kill()
            proc.wait()
    if proc.returncode != 0 or not out:
        code = proc.returncode or 0
        how = f"was killed by signal {-code}" if code < 0 else f"exited with status {code}"
        raise InputError(f"the SentencePiece trainer process {how} before it finished", path=train_text,
                         fix="if the machine ran out of memory (signal 9; see `dmesg`), lower "
                             "spm.input_sentence_size or train on a machine with more memory")
    err, tb, model, child_counts, child_repairs, child_failed = pickle.loads(out)
    counts.update(child_counts)
    vars(repairs).update(vars(child_repairs))
    failed[:] = child_failed
    if err is not None:
        if tb is not None and not isinstance(err, KorobertaError):
            err.__cause__ = _TrainerTraceback(tb)
        raise err
    model_writer.write(model)


def _warn_pii_without_symbols(cfg: SpmConfig, train_text: Path) -> None:
    """``koroberta spm train`` on its own (not ``koroberta run``, which fills ``user_symbols``) over a corpus whose
    clean step replaced PII: the placeholders will be cut into ordinary pieces. Allowed (``user_symbols: []`` says
    so on purpose), but said, with the fix, since it cannot be undone without retraining the vocabulary."""
    if cfg.user_symbols is not None:
        return
    from koroberta.artifacts import read_manifest

    clean = read_manifest(train_text.parent.parent / "clean") or {}
    replaced = sum(int(s.get("pii_replaced") or 0) for s in clean.get("stats", {}).get("sources", {}).values())
    if replaced:
        log.warning("%s: its corpus replaced %d pieces of personal data with placeholders, but spm.user_symbols is "
                    "not set, so they will not be single pieces; fix: pass --config with the run config "
                    "(`sources:` fills it) or set spm.user_symbols to the placeholders", train_text, replaced)


def spm_trainer_kwargs(cfg: SpmConfig) -> dict[str, object]:
    """The exact ``SentencePieceTrainer.train`` options (besides input/output) used for ``cfg``."""
    kwargs: dict[str, object] = dict(
        model_type=cfg.model_type, vocab_size=cfg.vocab_size, character_coverage=cfg.character_coverage,
        normalization_rule_name=cfg.normalization_rule_name, input_sentence_size=cfg.input_sentence_size,
        shuffle_input_sentence=cfg.shuffle, num_threads=cfg.resolved_threads(),
        max_sentence_length=cfg.max_sentence_length, max_sentencepiece_length=cfg.max_sentencepiece_length,
        hard_vocab_limit=cfg.hard_vocab_limit, split_digits=cfg.split_digits,
        # the XLM-R layout: no pad piece; user-defined symbols (PII placeholders) take ids 3.. like any piece
        **SPM_SPECIALS,
        # byte_fallback would add 256 <0xNN> pieces; kowiki at 0.9995 coverage leaves ~0.01% <unk>, measured
        byte_fallback=False, minloglevel=2,
        # spm >= 0.2 trains from a big corpus fine without it; it only widens internal counters
        train_extremely_large_corpus=False,
    )
    if cfg.user_symbols:
        kwargs["user_defined_symbols"] = list(cfg.user_symbols)
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


#: spm's peak RSS (the trainer process) for 1M and 5M sampled sentences, in MiB, as measured for BENCHMARKS.md
#: ("spm train ... RSS", bench/results/spm_preprocess.md: 32k unigram, kowiki sentences of ~140 bytes, 2 threads)
SPM_RSS_MEASURED_MIB = {1_000_000: 2623, 5_000_000: 8702}
(_LO, _LO_MIB), (_HI, _HI_MIB) = sorted(SPM_RSS_MEASURED_MIB.items())
#: the fit through them: +1.5 KB per sampled sentence over a fixed ~1.1 GiB
SPM_RSS_PER_SENTENCE_BYTES = (_HI_MIB - _LO_MIB) * 2 ** 20 / (_HI - _LO)
SPM_RSS_BASE_BYTES = _LO_MIB * 2 ** 20 - _LO * SPM_RSS_PER_SENTENCE_BYTES
#: share of the memory limit the trainer may be estimated to need: the rest is this process, the page cache and
#: the fit's error (the benchmark text repeats 0.71M distinct sentences; real text may cost more)
MEMORY_SHARE = 0.9


def estimate_peak_bytes(sentences: int) -> int:
    """spm's estimated peak memory training on ``sentences`` sentences: the fit in BENCHMARKS.md, and below 1M
    sentences the line from 0 to the 1M measurement. Why: the fit's fixed ~1.1 GiB is where the line through two
    big samples meets 0, not a cost a small sample has (measured: 300k sentences 795 MiB, the line from 0 says
    787; the demo's 2k sentences 45 MiB), and a small job must not be refused for it."""
    return int(min(SPM_RSS_BASE_BYTES + SPM_RSS_PER_SENTENCE_BYTES * sentences,
                   _LO_MIB * 2 ** 20 * sentences / _LO))


def max_sentences(memory: float) -> int:
    """The most sentences :func:`estimate_peak_bytes` puts within ``memory`` bytes (its inverse)."""
    return int(max((memory - SPM_RSS_BASE_BYTES) / SPM_RSS_PER_SENTENCE_BYTES, memory * _LO / (_LO_MIB * 2 ** 20)))


def _round_down(n: int) -> int:
    """``n`` rounded down to two significant digits: a value to type into a config, still within the estimate."""
    step = 10 ** max(0, len(str(n)) - 2)
    return n // step * step


def count_sentences(path: Path) -> int:
    """Non-blank lines of ``path`` as the trainer's reader reads them (decoded, stray bytes counted and a file that is
    not UTF-8 refused here, before the plan line is logged: a bad input stays a one-line error). One decoding pass,
    a small cost next to spm training."""
    from koroberta.textfile import iter_line_chunks

    return sum(1 for chunk in iter_line_chunks(path, policy="repair", checked=True, literals=False)
               for line in chunk if line.strip())


def _gib(n: float) -> str:
    if n >= 2 ** 30:
        return f"{n / 2 ** 30:.1f} GiB"
    return f"{n / 2 ** 20:.0f} MiB" if n >= 10 * 2 ** 20 else f"{n / 2 ** 20:.1f} MiB"


def check_memory(cfg: SpmConfig, sentences: int, train_text: Path) -> str:
    """What training will cost (the stage's first log line: sentences sampled, threads, estimated peak memory), and
    a :class:`ConfigError` before any work when the estimate exceeds :data:`MEMORY_SHARE` of the memory this machine
    or job may use: the kernel would otherwise kill the trainer after minutes or hours. The caller logs the line
    once the output directory is taken, so a refused output location stays a one-line error."""
    from koroberta.corpus.steps import memory_limit  # RAM or the cgroup limit a container or SLURM job sets

    n = cfg.input_sentence_size
    used = min(n, sentences) if n else sentences
    need = estimate_peak_bytes(used)
    limit = memory_limit()
    what = (f"a sample of {n:,} of {sentences:,} sentences" if n and n < sentences else
            f"all {sentences:,} sentences" + (f" (input_sentence_size {n:,})" if n else " (input_sentence_size 0)"))
    threads = cfg.resolved_threads()
    plan = (f"spm: training on {what} with {threads} thread{'' if threads == 1 else 's'} (~{_gib(need)} peak by the "
            f"fit in BENCHMARKS.md; memory limit {_gib(limit) if limit else 'unknown'})")
    if limit and need > MEMORY_SHARE * limit:
        fits = _round_down(max_sentences(MEMORY_SHARE * limit))
        fix = (f"set spm.input_sentence_size: {fits} (~{_gib(estimate_peak_bytes(fits))}) or train on a machine "
               "with more memory" if fits > 0 else "train on a machine with more memory")
        raise ConfigError(f"spm.input_sentence_size={n}: training on {used:,} sentences of {train_text} needs "
                          f"~{_gib(need)} by the fit in BENCHMARKS.md, more than {MEMORY_SHARE:.0%} of the "
                          f"{_gib(limit)} this machine or job may use", fix=fix)
    return plan


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
    check_output_location(out, STAGE, inputs, overwrite=overwrite)  # before any work: nothing to undo
    if skip_if_complete(out, STAGE, cfg, inputs, force=force, log=log):
        return out
    check_text_file(train_text)  # UTF-16, CP949 or not UTF-8: refused (with the iconv command) before any output
    sentences = count_sentences(train_text)
    if sentences == 0:  # said before a trainer process starts
        raise InputError("train split has no non-blank lines", path=train_text, fix="check the corpus stage output")
    plan = check_memory(cfg, sentences, train_text)
    _warn_pii_without_symbols(cfg, train_text)
    with StageOutput(out, stage=STAGE, config=cfg, inputs=inputs, overwrite=overwrite) as st:
        from koroberta.resources import announce, spm_needs

        announce(log, STAGE, spm_needs(cfg, sentences), out)  # the first line: once the output is taken
        log.info("%s", plan)
        counts = {"sentences": 0, "blank_lines": 0}
        repairs = Repairs()
        failed: list[InputError] = []
        kwargs = spm_trainer_kwargs(cfg)
        spm.set_random_generator_seed(cfg.seed)
        t0 = time.perf_counter()
        try:
            # model_writer instead of model_prefix: spm stores model_prefix in the model's TrainerSpec, so training
            # into two different (temporary) directories would give two different spm.model files
            model_bytes = io.BytesIO()
            _train_in_child(model_bytes, cfg.seed, train_text, counts, repairs, failed, kwargs)
        except RuntimeError as e:
            if failed:  # the reader refused the text (see _sentences): its own one-line error, not spm's wrapper
                raise failed[0] from None
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

