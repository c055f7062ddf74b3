"""HF export vs fairseq: token ids on N lines and logits on M sentences."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from koroberta.convert.checkpoint import RobertaCheckpoint
from koroberta.convert.vocab import ExportVocab
from koroberta.text import find_special_literal
from koroberta.layout import load_processor
from koroberta.errors import InputError, ParityError
from koroberta.layout import BOS, EOS, UNK

# Used when no --parity-text is given (own sentences; mixed Hangul, numbers, Latin, punctuation).
BUILTIN_SENTENCES = [
    "대한민국의 수도는 서울이다.",
    "이 문서는 한국어 위키백과의 문장을 바탕으로 한 시험용 문장입니다.",
    "1990년대 후반에 발표된 이 작품은 큰 인기를 얻었다.",
    "그는 2003년 Seoul National University에서 박사 학위를 받았다.",
    "강은 산맥을 따라 남쪽으로 흐르며, 여러 지류가 합쳐진다.",
    "  공백이   여러 개   있는 문장도 같은 토큰이 되어야 한다.  ",
    "〈삼국사기〉에 따르면 고구려는 기원전 37년에 세워졌다.",
    "ＡＢＣ와 ①②③ 같은 문자는 정규화된다.",
]


def fairseq_available() -> bool:
    """True when ``import fairseq`` works (an installed-but-broken fairseq counts as missing)."""
    # importing fairseq imports its speech tasks, which log "Please install tensorboardX" at INFO: noise on the
    # convert stage's output, which uses neither
    logging.getLogger("fairseq.tasks.text_to_speech").setLevel(logging.WARNING)
    try:
        import fairseq  # noqa: F401
    except ImportError:
        return False
    return True


def read_parity_lines(path: str | Path | None, n: int) -> list[str]:
    if path is None:
        return list(BUILTIN_SENTENCES)
    p = Path(path)
    fix = "pass the corpus stage's valid split, e.g. runs/<name>/corpus/split/valid.txt"
    if p.is_dir():
        raise InputError("parity text is a directory, not a text file", path=p, fix=fix)
    if not p.is_file():
        raise InputError("parity text not found", path=p, fix=fix)
    out: list[str] = []
    with open(p, encoding="utf-8", errors="strict") as f:
        try:
            for lineno, line in enumerate(f, 1):
                s = line.rstrip("\n")
                if "\0" in s:
                    # valid UTF-8 all the same: a data-bin .bin of small ids decodes as control characters, and
                    # the token-id check would pass on them while checking nothing
                    raise InputError(f"binary data, not text (a NUL character on line {lineno})", path=p,
                                     fix=fix)
                if s.strip():
                    out.append(s)
                    if len(out) >= n:
                        break
        except UnicodeDecodeError as e:
            raise InputError(f"not UTF-8 text ({e.reason} at byte {e.start})", path=p, fix=fix) from None
    if not out:
        raise InputError("parity text has no non-blank lines", path=p, fix=fix)
    return out


@dataclass
class TokenParity:
    lines: int = 0
    mismatches: int = 0
    examples: list[dict[str, Any]] = field(default_factory=list)
    fairseq_unk_tokens: int = 0
    tokens: int = 0
    #: first mismatching line that holds a literal special token: (line number, the literal, the text)
    literal: tuple[int, str, str] | None = None
    literal_mismatches: int = 0  # mismatching lines that hold one


def token_mismatch_error(tp: TokenParity, where: object) -> ParityError:
    """The error for a failed token-id check, naming the cause.

    A line holding a literal special token (``<mask>``, ``</s>``, ...) is the cause we know: spm and fairseq split it
    into ordinary pieces while the HF tokenizer reads it as one special id, so no spm/dict pair can agree on it. The
    corpus cleaner removes them (koroberta.corpus.wikitext.remove_special_literals), so such a line means the text
    was not made by the current corpus stage. Any other mismatch is a tokenizer-export bug.
    """
    if tp.literal is not None:
        n, lit, text = tp.literal
        others = tp.mismatches - tp.literal_mismatches
        return ParityError(
            f"HF tokenizer ids differ from fairseq ids on {tp.mismatches}/{tp.lines} lines because line {n} holds a "
            f"literal special token {lit!r} ({text!r}), which HF reads as one special id and spm/fairseq split into "
            f"pieces" + (f"; {others} other line(s) differ without one" if others else ""), path=where,
            fix="rebuild the corpus with the current cleaner (`koroberta corpus build ... --force`, or `koroberta run "
                "CONFIG --force corpus`; it removes these literals), then spm/preprocess/train from it")
    ex = tp.examples[0]
    return ParityError(f"HF tokenizer ids differ from fairseq ids on {tp.mismatches}/{tp.lines} lines "
                       f"(first: line {ex['line']} {ex['text']!r}: HF {ex['hf']} vs fairseq {ex['fairseq']})",
                       path=where, fix="the spm.model/dict.txt pair is inconsistent with the tokenizer export; "
                                       "report this with the line")


def fairseq_encoder(ev: ExportVocab):
    """``text -> list[int]`` exactly like fairseq's ``Dictionary.encode_line(..., append_eos=True)``.

    Uses fairseq's own Dictionary when fairseq is installed, else the same rule re-stated (split on whitespace,
    unknown symbol -> <unk>, append </s>)."""
    if fairseq_available():
        from fairseq.data import Dictionary

        d = Dictionary.load(str(ev.dict_path))
        d.add_symbol("<mask>")
        if tuple(d.symbols) != ev.fairseq_symbols:
            raise InputError("fairseq's Dictionary reads dict.txt differently from koroberta", path=ev.dict_path,
                             fix="regenerate dict.txt with `koroberta spm train`")
        return lambda text: d.encode_line(text, add_if_not_exist=False, append_eos=True).tolist()
    index = {s: i for i, s in enumerate(ev.fairseq_symbols)}
    return lambda text: [index.get(t, UNK) for t in text.split()] + [EOS]


def check_token_ids(tokenizer, ev: ExportVocab, lines: list[str]) -> TokenParity:
    """HF ``tokenizer(line)`` ids (mapped to fairseq rows) == ``<s>`` + fairseq ``encode_line`` ids, per line."""

    sp = load_processor(ev.spm_model)
    enc = fairseq_encoder(ev)
    res = TokenParity()
    hf_all = tokenizer(lines, add_special_tokens=True)["input_ids"]
    for n, (line, hf_ids) in enumerate(zip(lines, hf_all), 1):
        fs_ids = [BOS] + enc(ev.fairseq_text(sp, line))
        mapped = [ev.hf_to_fairseq[h] for h in hf_ids]
        res.lines += 1
        res.tokens += len(fs_ids)
        res.fairseq_unk_tokens += sum(1 for i in fs_ids if i == UNK)
        if mapped != fs_ids:
            res.mismatches += 1
            if len(res.examples) < 3:
                res.examples.append({"line": n, "text": line[:80], "hf": mapped[:20], "fairseq": fs_ids[:20]})
            lit = find_special_literal(line)
            if lit is not None:
                res.literal_mismatches += 1
                if res.literal is None:
                    res.literal = (n, lit, line[:80])
    return res


def fairseq_model(model_args: Any, dict_path: Path, state: dict[str, Any]):
    """A RoBERTa state dict as fairseq itself runs it (eval mode, fp32), built from its model arguments on the
    dictionary ``dict_path`` with ``<mask>`` added as the masked_lm task adds it (an existing row is reused)."""
    import copy
    from types import SimpleNamespace

    from fairseq.data import Dictionary
    from fairseq.models.roberta import RobertaModel

    d = Dictionary.load(str(dict_path))
    d.add_symbol("<mask>")
    args = copy.deepcopy(model_args)
    task = SimpleNamespace(source_dictionary=d, target_dictionary=d, max_positions=lambda: args.max_positions)
    model = RobertaModel.build_model(args, task)
    model.load_state_dict(state, strict=True, model_cfg=args)
    return model.float().eval()


def build_fairseq_model(ck: RobertaCheckpoint, ev: ExportVocab):
    """The checkpoint as fairseq itself runs it (eval mode, fp32)."""
    return fairseq_model(ck.model_args, ev.dict_path, ck.state)


def max_logit_diff(fs_model, hf_model, tokenizer, ev: ExportVocab, sentences: list[str], max_positions: int,
                   ) -> tuple[float, int]:
    """max |HF logit - fairseq logit| over all positions/vocab of ``sentences`` (each run unpadded)."""
    import torch

    sp = load_processor(ev.spm_model)
    enc = fairseq_encoder(ev)
    cols = torch.tensor(ev.hf_to_fairseq, dtype=torch.long)
    worst, n = 0.0, 0
    with torch.inference_mode():
        for s in sentences:
            hf_ids = tokenizer(s, add_special_tokens=True)["input_ids"][:max_positions]
            fs_ids = ([BOS] + enc(ev.fairseq_text(sp, s)))[:max_positions]
            hf_logits = hf_model(input_ids=torch.tensor([hf_ids])).logits[0].float()
            fs_logits = fs_model(torch.tensor([fs_ids]))[0][0].float().index_select(-1, cols)
            if hf_logits.shape != fs_logits.shape:
                lit = find_special_literal(s)
                if lit is not None:  # the known cause (see token_mismatch_error), not the weight mapping
                    tp = TokenParity(lines=n + 1, mismatches=1, literal=(n + 1, lit, s[:80]), literal_mismatches=1)
                    raise token_mismatch_error(tp, "parity sentence")
                return float("inf"), n + 1
            worst = max(worst, float((hf_logits - fs_logits).abs().max()))
            n += 1
    return worst, n
