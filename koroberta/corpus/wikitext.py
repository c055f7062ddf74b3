"""Wikitext -> plain prose, with linear scanners instead of regex loops.

What is removed: templates (``{{...}}``, nested, multi-line), tables (``{| ... |}``), ``<ref>`` (paired, named,
self-closing), HTML comments, ``<math>``/``<syntaxhighlight>``/``<source>``/``<gallery>``/... blocks, file and image
links (``파일:``, ``그림:``, ``File:``, ``Image:``, ``미디어:``), category links (``분류:``), interlanguage links
(``[[en:...]]``), HTML tags (their text is kept), bold/italic quotes and magic words (``__TOC__``).
What is kept: link text (``[[A|B]]`` -> ``B``, ``[[A]]`` -> ``A``), external-link labels, list-item text (markers
stripped), the text argument of ``{{lang|xx|TEXT}}``/``{{llang|xx|TEXT}}`` (so ``(, 1924년)`` does not lose the
original-language name). Entities are unescaped last.

Headings: heading lines (``== 생애 ==``) are **dropped**. They are not sentences (kss glues them to the next
sentence, WikiExtractor's ``생애.`` lines are noise for an MLM) and the section structure is not used downstream.
Sections whose heading is in ``drop_sections`` (각주, 참고 문헌, 외부 링크, 같이 보기, ...) are dropped whole: they
hold reference and link lists, not prose.

Malformed markup must never swallow the page: an unclosed ``{{``/``{|`` removes text only up to the end of its
paragraph (next blank line), an unclosed ``<ref>`` up to the end of its line, an unclosed ``[[`` only its two
brackets; stray ``}}``/``]]`` are dropped. (An unclosed ``<!--`` hides the rest of the page, as in MediaWiki.)

Output: one paragraph / list item per line, ``\\n``-joined, each line cleaned by
:func:`koroberta.text.normalize_form`.

Literal special tokens (``<mask>``, ``<s>``, ``</s>``, ``<pad>``, ``<unk>``) are removed from the final lines of every
source kind by :func:`remove_special_literals`, which the extract step calls once per document (after this cleaner
for dumps, after normalisation for WikiExtractor output and plain text). In a dump they arrive escaped
(``&lt;mask&gt;`` in the XML is ``<mask>`` in the wikitext, ``&amp;lt;mask&amp;gt;`` becomes it after entity
unescaping); ``<s>…</s>`` in wikitext is the strike-through tag, removed with the other HTML tags, its text kept.
"""

from __future__ import annotations

import functools
import html
import re
import unicodedata
from typing import Callable, Iterable

from koroberta.text import find_special_literal, normalize_block, strip_special_literals

_COMMENT = re.compile(r"<!--.*?-->", re.S)
_BLOCK_TAGS = ("math|chem|ce|syntaxhighlight|source|pre|gallery|timeline|score|templatedata|graph|mapframe|"
               "maplink|hiero|imagemap|references|inputbox|categorytree|includeonly|noinclude")
_BLOCK = re.compile(rf"<({_BLOCK_TAGS})\b[^>]*?(?:/>|>.*?</\1\s*>)", re.S | re.I)
_REF_SELF = re.compile(r"<ref\b[^>]*/>", re.I)
# A paired ref may not contain another <ref opening or a blank line: that is an unclosed ref. The body is written
# as an unrolled loop (runs of ``[^<\n]`` between single ``<``/``\n`` that start no ref token) rather than the
# tempered ``(?:(?!<ref[\s>/]|\n\n).)*?``: the same matches (the body ends at the first ``</ref>``, ``<ref`` or
# blank line either way) without a lookahead per character: 0.44 s -> 0.20 s on the 20k-page bench dump.
_REF_PAIR = re.compile(r"<ref\b[^>/]*(?:/(?!>)[^>/]*)*>"
                       r"[^<\n]*(?:(?:<(?!ref[\s>/]|/ref\s*>)|\n(?!\n))[^<\n]*)*</ref\s*>", re.I)
_REF_OPEN = re.compile(r"<ref\b[^>\n]*>[^\n]*", re.I)
_REF_CLOSE = re.compile(r"</ref\s*>", re.I)
# Brace and link tokens: one regex per token kind, each starting with a literal, so sre's fast literal search
# skips ahead (see strip_braces). Table tokens count only at a line start (after spaces/tabs): matched as
# ``\n[ \t]*{|`` in "\n" + text rather than ``^[ \t]*{|`` with re.M, which would try the pattern at every character.
_TPL_OPEN = re.compile(r"\{\{")
_TPL_CLOSE = re.compile(r"\}\}")
_TABLE_TOK = re.compile(r"\n[ \t]*(?:\{\||\|\}(?!\}))")
_LINK_OPEN = re.compile(r"\[\[")
_LINK_CLOSE = re.compile(r"\]\]")
_LANG_TPL = re.compile(r"\{\{\s*(?:lang|llang|lang-[a-z]+)\s*\|\s*[A-Za-z-]+\s*\|([^{}|\[\]]*)\}\}$", re.I)
# links into these namespaces are dropped whole (media and category links); links to other namespaces (틀:, 위키백과:,
# ...) keep their text like article links
_DROP_NS = {"파일", "그림", "file", "image", "미디어", "media", "분류", "category"}
_INTERLANG = re.compile(r"[a-z]{2,3}(?:-[a-z]{1,8})*")
_EXTLINK = re.compile(r"\[(?:https?:|ftp:)?//[^\s\]]*\s*([^\]\n]*)\]")
# ``''+``, not ``'{2,}``: a literal prefix lets sre skip ahead with a fast search (0.62 s -> 0.04 s on the 20k bench
# dump); same matches (runs of 2+ quotes)
_QUOTES = re.compile(r"''+")
_MAGIC = re.compile(r"__[A-Z]{2,}__")
_HTML_TAG = re.compile(
    r"</?(?:br|small|big|sup|sub|span|div|p|b|i|u|s|strike|del|ins|center|font|blockquote|poem|nowiki|abbr|code|"
    r"tt|var|cite|q|em|strong|mark|onlyinclude|ruby|rb|rt|rp|table|tr|td|th|caption|ol|ul|li|dl|dt|dd|hr|wbr|"
    r"section|indicator|templatestyles|bdi|kbd|samp|time|data|ref|references)\b[^>]*>", re.I)
_HEADING = re.compile(r"^(={1,6})\s*(.*?)\s*\1\s*$")
_LIST = re.compile(r"^[*#:;]+\s*")
_ALNUM = re.compile(r"[^\W_]")  # exactly str.isalnum() (checked over all code points in the tests)
_DISAMBIG = re.compile(r"\{\{\s*(?:[^{}|\n]*\s)?(?:동음이의|disambig|disambiguation|dab|hndis|geodis)\s*[|}]", re.I)
_REDIRECT = re.compile(r"\s*#(?:넘겨주기|redirect)\b", re.I)


def is_redirect_text(text: str) -> bool:
    """``#넘겨주기 [[X]]`` / ``#REDIRECT [[X]]`` (any case) at the start of the page."""
    return bool(_REDIRECT.match(text))


def is_disambiguation(text: str) -> bool:
    """A ``{{동음이의}}``-family template (not the ``{{동음이의 안내}}`` hatnote) or ``{{disambig}}``."""
    return bool(_DISAMBIG.search(text))


def _para_end(text: str, pos: int) -> int:
    q = text.find("\n\n", pos)
    return len(text) if q < 0 else q


def _merge_spans(spans: list[tuple[int, int, str | None]]) -> list[tuple[int, int, str | None]]:
    """Outermost union of (start, end, replacement) spans; a replacement survives only if its span is not nested."""
    spans.sort(key=lambda s: (s[0], -s[1]))
    out: list[tuple[int, int, str | None]] = []
    for s, e, r in spans:
        if out and s < out[-1][1]:
            ps, pe, pr = out[-1]
            if e > pe:
                out[-1] = (ps, e, None)
            continue
        out.append((s, e, r))
    return out


def _apply(text: str, spans: list[tuple[int, int, str | None]]) -> str:
    parts, last = [], 0
    for s, e, r in spans:
        parts.append(text[last:s])
        if r:
            parts.append(r)
        last = e
    parts.append(text[last:])
    return "".join(parts)


def _starts(pattern: re.Pattern, text: str) -> list[int]:
    return [m.start() for m in pattern.finditer(text)]


def brace_tokens(text: str) -> tuple[list[int], dict[int, int]]:
    """Template/table tokens of ``text`` in order, as codes ``position * 4 + kind`` (kind 0 ``{{``, 1 ``}}``,
    2 ``{|``, 3 ``|}``; a table token's position is its line start), and the end of each ``|}`` token.

    Each kind is found by its own literal-prefixed regex (sre's fast literal search) and the positions merged,
    instead of one alternation whose mixed first characters force a per-character charset scan (0.3 s -> 0.1 s on
    the 20k-page bench dump). The kinds cannot overlap ("{{"/"}}" need two equal braces, a table token's brace
    follows "|" or the line start), so the merged list is what one joint left-to-right scan gives (tested).
    """
    codes = [p * 4 for p in _starts(_TPL_OPEN, text)]
    codes += [p * 4 + 1 for p in _starts(_TPL_CLOSE, text)]
    table_end: dict[int, int] = {}
    if "{|" in text or "|}" in text:
        # positions in "\n" + text are text positions + 1; a table token's m.start() (its "\n") is therefore
        # already its line start in text
        for m in _TABLE_TOK.finditer("\n" + text):
            if m.group()[-1] == "|":
                codes.append(m.start() * 4 + 2)
            else:
                codes.append(m.start() * 4 + 3)
                table_end[m.start()] = m.end() - 1
    codes.sort()
    return codes, table_end


def strip_braces(text: str) -> str:
    """Remove templates and tables (nested, multi-line). Linear in len(text) apart from malformed restarts."""
    codes, table_end = brace_tokens(text)
    if not codes:
        return text
    spans: list[tuple[int, int, str | None]] = []
    tpl: list[int] = []
    tab: list[int] = []
    for code in codes:
        pos, kind = code >> 2, code & 3
        if kind == 0:
            tpl.append(pos)
        elif kind == 1:
            end = pos + 2
            if tpl:
                s = tpl.pop()
                rep = None
                if text[s + 2:s + 6].lower() in ("lang", "llan"):
                    lm = _LANG_TPL.match(text, s, end)
                    if lm and lm.end() == end:
                        rep = lm.group(1).strip()
                spans.append((s, end, rep))
            else:
                spans.append((pos, end, None))  # stray }}
        elif kind == 2:
            tab.append(pos)
        elif tab:
            spans.append((tab.pop(), table_end[pos], None))
        else:
            spans.append((pos, table_end[pos], None))
    # unclosed openings: remove to the end of their paragraph only
    for s in tpl + tab:
        spans.append((s, max(_para_end(text, s), s + 2), None))
    return _apply(text, _merge_spans(spans))


def _link_text(inner: str) -> str | None:
    """Visible text of ``[[inner]]``; None when the whole link is dropped (file, category, interlanguage)."""
    target, sep, label = inner.partition("|")
    t = target.strip()
    leading_colon = t.startswith(":")
    if leading_colon:
        t = t[1:].strip()
    if ":" in t:
        ns = t.split(":", 1)[0].strip()
        nsl = ns.lower()
        if not leading_colon:
            if nsl in _DROP_NS:
                return None
            if _INTERLANG.fullmatch(ns):
                return None
    if sep:
        label = label.rsplit("|", 1)[-1] if "[[" not in label else label
        if label.strip():
            return strip_links(label)
        return re.sub(r"\s*\(.*?\)\s*$", "", t)  # pipe trick [[A (b)|]] -> A
    return t


def link_tokens(text: str) -> tuple[list[int], list[int]]:
    """Positions of ``[[`` and of ``]]``: two literal searches (fast) rather than one alternation (a charset scan,
    3x slower). The two cannot overlap, so these are the tokens of a joint left-to-right scan."""
    return _starts(_LINK_OPEN, text), _starts(_LINK_CLOSE, text)


def links_alternate(opens: list[int], closes: list[int]) -> bool:
    """open0 < close0 < open1 < close1 ...: no link nests, none is stray or unclosed."""
    if len(opens) != len(closes):
        return False
    inter = [0] * (2 * len(opens))
    inter[0::2], inter[1::2] = opens, closes
    return inter == sorted(inter)  # the check runs in C


def strip_links(text: str) -> str:
    """``[[A|B]]`` -> B, ``[[A]]`` -> A, file/category/interlanguage links removed (nested captions too)."""
    if "[[" not in text and "]]" not in text:
        return text
    opens, closes = link_tokens(text)
    if links_alternate(opens, closes):
        # 89% of pages and 79% of links on the bench dump: each pair is a link on its own, so no stack and no span
        # merge (strip_links 0.71 s -> 0.45 s with the token search above). Same output as _links_nested.
        return _links_flat(text, opens, closes)
    return _links_nested(text, opens, closes)


def _links_flat(text: str, opens: list[int], closes: list[int]) -> str:
    parts, last = [], 0
    for o, c in zip(opens, closes):
        parts.append(text[last:o])
        inner = text[o + 2:c]
        r = inner.strip() if "|" not in inner and ":" not in inner else _link_text(inner)  # [[A]] -> A
        if r:
            parts.append(r)
        last = c + 2
    parts.append(text[last:])
    return "".join(parts)


def _links_nested(text: str, opens: list[int], closes: list[int]) -> str:
    """The general case: match brackets with a stack; the outermost pairs are replaced, a stray ``]]`` dropped, an
    unclosed ``[[`` loses only its brackets."""
    spans: list[tuple[int, int, str | None]] = []
    stack: list[int] = []
    for code in sorted([o * 2 for o in opens] + [c * 2 + 1 for c in closes]):
        pos = code >> 1
        if not code & 1:
            stack.append(pos)
        elif stack:
            spans.append((stack.pop(), pos + 2, "\0"))  # every pair; the outermost survive the merge
        else:
            spans.append((pos, pos + 2, None))  # stray ]]
    for s in stack:
        spans.append((s, s + 2, None))
    out = []
    for s, e, r in _merge_spans(spans):
        if r == "\0":
            r = _link_text(text[s + 2:e - 2]) or None
        out.append((s, e, r))
    return _apply(text, out)


def _strip_refs(text: str) -> str:
    text = _REF_SELF.sub("", text)
    text = _REF_PAIR.sub("", text)
    if "<ref" in text or "<REF" in text:
        text = _REF_OPEN.sub("", text)  # unclosed <ref ...>: drop to the end of its line only
    return _REF_CLOSE.sub("", text)


def _strip_comments(text: str) -> str:
    if "<!--" in text:
        text = _COMMENT.sub("", text)
        cut = text.find("<!--")
        if cut >= 0:  # unclosed comment hides the rest (MediaWiki behaviour)
            text = text[:cut]
    return text


def _strip_inline(text: str) -> str:
    text = _EXTLINK.sub(lambda m: m.group(1), text)
    text = _QUOTES.sub("", text)
    text = _MAGIC.sub("", text)
    return _HTML_TAG.sub(lambda m: " " if m.group().lower().startswith("<br") else "", text)


#: The markup passes of :func:`wikitext_to_lines`, in order (named: bench/corpus_parts.py times each one).
MARKUP_PASSES: tuple[tuple[str, Callable[[str], str]], ...] = (
    ("comments", _strip_comments),
    ("block tags", lambda t: _BLOCK.sub("", t) if "<" in t else t),
    ("refs", lambda t: _strip_refs(t) if "<" in t else t),
    ("templates/tables", strip_braces),
    ("links", strip_links),
    ("ext links, quotes, magic, html tags", _strip_inline),
    ("entities", lambda t: html.unescape(t) if "&" in t else t),
)


def strip_markup(text: str) -> str:
    """Wikitext -> plain text with the page's line structure (no normalisation, headings and lists still there)."""
    for _name, step in MARKUP_PASSES:
        text = step(text)
    return text


def keep_line(line: str, min_line_chars: int) -> bool:
    """A cleaned line is kept when it is long enough and holds an alphanumeric character (not only punctuation)."""
    return len(line) >= min_line_chars and bool(line[:1].isalnum() or _ALNUM.search(line))


#: Bumped whenever the cleaner's output for the same page changes; the extract step records it in its config, so an
#: extract made by an older cleaner is no longer "complete" and is redone (2: literal special tokens removed).
CLEANER_VERSION = 2


def remove_special_literals(body: str, min_line_chars: int, extra: tuple[str, ...] = ()) -> tuple[str, int]:
    """A cleaned document (lines joined by ``\\n``) without literal special tokens, and the number removed.

    Only lines holding one are touched: the literal is removed (``normalize.strip_special_literals``), the line's
    whitespace collapsed again, and the line dropped when what is left fails :func:`keep_line` (a line that was only
    ``<mask>``). A document without a literal costs one C scan. ``extra``: more literals (``corpus.special_literals``:
    an imported tokenizer's ``[MASK]``, ``[CLS]`` ...).
    """
    if find_special_literal(body, extra) is None:
        return body, 0
    out: list[str] = []
    removed = 0
    for line in body.split("\n"):
        new, n = strip_special_literals(line, extra)
        if n:
            removed += n
            new = " ".join(new.split())
            if not keep_line(new, min_line_chars):
                continue
        out.append(new)
    return "\n".join(out), removed


@functools.lru_cache(maxsize=8)
def _drop_set(drop_sections: tuple[str, ...]) -> frozenset[str]:
    return frozenset(d.strip().lower() for d in drop_sections)


def wikitext_to_lines(text: str, *, drop_sections: Iterable[str] = (), normalization: str = "NFC",
                      min_line_chars: int = 2) -> list[str]:
    """Clean one page of wikitext into prose lines (paragraphs and list items), in order."""
    text = strip_markup(text)
    # Normal form: one ``is_normalized`` check per page (Korean Wikipedia is already NFC: ~0.1 s for 61 MB). The
    # control/format-character deletion runs only on lines that are not ``isprintable()``: a printable line holds
    # nothing to delete and no whitespace but U+0020 (every deletable and every ``\s`` character except the space
    # is in a non-printable category; checked over all code points in tests/corpus/test_wikitext.py). One C pass
    # per line instead of a regex pass over the page: 0.65 s -> 0.1 s on the 20k-page bench dump. Newline never
    # composes, so per-line deletion + normalisation equals the whole-page result.
    if normalization != "none" and not unicodedata.is_normalized(normalization, text):
        text = normalize_block(text, normalization)
    drop = _drop_set(tuple(drop_sections))
    lines: list[str] = []
    skip_level = 0
    for raw in text.split("\n"):
        line = raw.strip()
        if not line:
            continue
        plain = line.isprintable()
        if not plain:
            line = normalize_block(line, normalization).strip()
            if not line:
                continue
        first = line[0]
        if first == "=":
            h = _HEADING.match(line)
            if h:
                level = len(h.group(1))
                if skip_level and level > skip_level:
                    continue
                skip_level = level if h.group(2).strip().lower() in drop else 0
                continue
        if skip_level:
            continue
        if first in "|!" or (first == "{" and line.startswith("{|")):
            continue  # table residue (e.g. rows after an unclosed table paragraph)
        if first in "*#:;":
            line = _LIST.sub("", line)
        if not plain or "  " in line:
            line = " ".join(line.split())
        if keep_line(line, min_line_chars):
            lines.append(line)
    return lines
