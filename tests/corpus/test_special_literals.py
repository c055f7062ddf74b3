"""Literal special tokens (<s> <pad> </s> <unk> <mask>) never reach the corpus, so convert's token-id parity holds.

In text, spm and fairseq split "<mask>" into ordinary pieces while the exported HF tokenizer reads it as the mask
token: a line holding one fails convert's parity check, days after training started on it. The corpus cleaner removes
them once, per document, for every source kind (koroberta.corpus.wikitext.remove_special_literals, called by the
extract step), and counts them in the stats.

The end-to-end test builds a small dump the way scripts/dev/make_fixtures.py cuts the fixtures (pages of the
kowiki-tiny fixture, each given a paragraph with the literals *escaped* as real dumps have them) and runs it through
corpus -> spm -> preprocess -> train (tiny) -> convert with the parity check on the valid split.
"""

from __future__ import annotations

import bz2
import importlib.util
import json
import re
from pathlib import Path

import pytest

from koroberta.text import find_special_literal, special_literals, strip_special_literals
from koroberta.corpus.wikitext import keep_line, remove_special_literals, wikitext_to_lines

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
TRAIN_TINY = Path(__file__).resolve().parents[1] / "train" / "train_tiny.py"

# The paragraph added to every page, as it stands in the XML (so expat unescapes it once, like a real dump):
#   &lt;mask&gt;             -> wikitext "<mask>": not an HTML tag, a literal (1)
#   &amp;lt;unk&amp;gt;     -> wikitext "&lt;unk&gt;" (shown as text by MediaWiki) -> "<unk>" after entity unescaping (1)
#   &amp;lt;pad&amp;gt;, &amp;lt;/s&amp;gt;  -> likewise (2)
#   &lt;s&gt;취소선시험문구&lt;/s&gt; -> wikitext "<s>취소선시험문구</s>": the strike-through tag, removed as markup, its text kept (0)
INJECTED = ("이 문단에는 &lt;mask&gt; 토큰과 &amp;lt;unk&amp;gt; 기호, &amp;lt;pad&amp;gt; 와 &amp;lt;/s&amp;gt; 표시, "
            "그리고 &lt;s&gt;취소선시험문구&lt;/s&gt; 취소선이 들어 있다.\n\n&lt;mask&gt;\n\n")
LITERALS_PER_PAGE = 5  # four in the sentence, one alone on its line (that line is dropped)
MAX_PAGE_CHARS = 6000
MARKER = "취소선시험문구"  # the struck-through text: not in the fixture's pages, so every occurrence is ours


# -- the cleaner itself -----------------------------------------------------------------------------------------------
def test_special_literals_are_the_tokenizer_specials():
    from koroberta.layout import FAIRSEQ_SPECIALS, MASK

    # the export adds exactly FAIRSEQ_SPECIALS + <mask> as special tokens (convert.vocab.build_tokenizer); the e2e
    # test below also compares with the exported tokenizer's own list
    assert set(special_literals()) == {*FAIRSEQ_SPECIALS, MASK} == {"<s>", "<pad>", "</s>", "<unk>", "<mask>"}


@pytest.mark.parametrize("text,want,n", [
    ("토큰 <mask> 하나", "토큰  하나", 1),
    ("</s></s><s>", "", 3),
    ("<<mask>s>", "", 2),  # removing one literal must not leave another behind
    ("<pa<unk>d>", "", 2),
    ("<MASK> < mask> <s >", "<MASK> < mask> <s >", 0),  # not what the HF tokenizer matches: ordinary text
    ("부등호 a<b 와 c>d", "부등호 a<b 와 c>d", 0),
])
def test_strip_special_literals(text, want, n):
    assert strip_special_literals(text) == (want, n)
    assert find_special_literal(want) is None


def test_remove_special_literals_per_document():
    body = "앞 문장 <mask> 이다.\n<s>\n멀쩡한 줄.\n</s> 끝이다 <pad>\n<unk>가"
    out, n = remove_special_literals(body, min_line_chars=2)
    # whitespace collapsed; the emptied line and the one left too short ("가") dropped
    assert (out, n) == ("앞 문장 이다.\n멀쩡한 줄.\n끝이다", 5)
    clean = "literal 없는 문서.\n두 번째 줄."
    assert remove_special_literals(clean, 2) == (clean, 0)
    assert all(keep_line(l, 2) for l in out.split("\n"))


def test_wikitext_strike_through_keeps_its_text_and_entities_are_caught():
    lines = wikitext_to_lines("그는 <s>옛 이름</s> 새 이름을 썼다. 문서에 &lt;mask&gt; 가 있다.")
    body, n = remove_special_literals("\n".join(lines), 2)
    assert body == "그는 옛 이름 새 이름을 썼다. 문서에 가 있다." and n == 1


@pytest.mark.parametrize("kind", ["text", "wikiextractor"])
def test_plain_text_and_wikiextractor_sources_are_cleaned_too(kind, tmp_path):
    from koroberta.artifacts import read_manifest
    from koroberta.corpus.config import CorpusConfig
    from koroberta.corpus.steps import extract

    para = "이 문단은 <mask> 와 <s>취소선</s> 을 담은 충분히 긴 문단이다. " * 4
    if kind == "text":
        src = tmp_path / "corpus.txt"
        src.write_text(f"{para}\n<unk>\n\n{para}\n<unk>\n", encoding="utf-8")
    else:
        src = tmp_path / "wiki_00"
        src.write_text(f'<doc id="1" url="u" title="제목">\n제목\n\n{para}\n<unk>\n</doc>\n', encoding="utf-8")
    d = extract(CorpusConfig(), src, tmp_path / "out")
    docs = [json.loads(l) for l in (d / "docs.jsonl").read_text(encoding="utf-8").splitlines()]
    assert docs and all(find_special_literal(r["text"]) is None for r in docs)
    assert all("취소선" in r["text"] for r in docs)
    per_doc = 4 * 3 + 1  # <mask>, <s>, </s> per sentence x 4, and the "<unk>" line
    assert read_manifest(d)["stats"]["repaired"] == {"special_token_literals_removed": per_doc * len(docs)}


def test_an_imported_tokenizers_specials_are_removed_when_listed(tmp_path):
    """corpus.special_literals (filled by `koroberta run` from init_from_hf): an imported tokenizer reads a literal
    [MASK] as its mask id, which fairseq's masked_lm asserts never occurs in its input. Unlisted, they stay text, and
    the default config's extract identity is what it always was."""
    from koroberta.artifacts import read_manifest
    from koroberta.corpus.config import CorpusConfig
    from koroberta.corpus.steps import extract

    para = "이 문단은 [MASK] 와 [CLS] 표시를 담은 충분히 긴 문단이다. [SEP]" * 4
    src = tmp_path / "corpus.txt"
    src.write_text(f"{para}\n[PAD]\n", encoding="utf-8")
    plain = extract(CorpusConfig(), src, tmp_path / "plain")
    assert "[MASK]" in (plain / "docs.jsonl").read_text(encoding="utf-8")
    assert "special_literals" not in read_manifest(plain)["config"]  # later-identity default: not in the key
    lits = ["[CLS]", "[MASK]", "[PAD]", "[SEP]", "[UNK]"]
    d = extract(CorpusConfig(special_literals=lits), src, tmp_path / "hf")
    docs = [json.loads(l) for l in (d / "docs.jsonl").read_text(encoding="utf-8").splitlines()]
    assert docs and all(find_special_literal(r["text"], tuple(lits)) is None for r in docs)
    assert all("[" not in r["text"] for r in docs) and all("문단이다." in r["text"] for r in docs)
    assert read_manifest(d)["stats"]["repaired"] == {"special_token_literals_removed": 4 * 3 + 1}


# -- dump -> corpus -> spm -> preprocess -> train -> convert ----------------------------------------------------------
def _dump_with_literals(out: Path) -> Path:
    """The small pages of kowiki-tiny (articles, redirects, other namespaces: < MAX_PAGE_CHARS of XML each, to keep
    kss and training cheap), each with INJECTED at the top of its wikitext (before any heading, so no dropped section
    can hide it); cut the way scripts/dev/make_fixtures.py cuts the fixtures."""
    data = bz2.open(FIXTURES / "kowiki-tiny.xml.bz2", "rt", encoding="utf-8").read()
    starts = [m.start() for m in re.finditer(r"^  <page>\n", data, flags=re.M)]
    head, end = data[: starts[0]], data.rindex("</mediawiki>")
    pages = [p for p in (data[s:e] for s, e in zip(starts, starts[1:] + [end])) if len(p) < MAX_PAGE_CHARS]
    # not into an empty page's self-closing <text ... />
    injected = [re.subn(r"(<text\b[^>]*[^/]>)", lambda m: m.group(1) + INJECTED, p, count=1) for p in pages]
    xml = head + "".join(p for p, _ in injected) + "</mediawiki>\n"
    n = sum(k for _, k in injected)
    assert n >= 30 and xml.count("&lt;mask&gt;") == 2 * n  # escaped in the XML, as in a real dump
    out.write_bytes(bz2.compress(xml.encode("utf-8"), 9))
    return out


def _tiny_train_config() -> dict:
    spec = importlib.util.spec_from_file_location("train_tiny_for_corpus_tests", TRAIN_TINY)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return dict(mod.TINY)


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    pytest.importorskip("fairseq")
    import io
    from contextlib import redirect_stdout

    from koroberta.convert.config import ConvertConfig
    from koroberta.convert.export import convert
    from koroberta.corpus.build import build_corpus
    from koroberta.corpus.config import CorpusConfig
    from koroberta.preprocess.build import preprocess
    from koroberta.preprocess.config import PreprocessConfig
    from koroberta.spm.config import SpmConfig
    from koroberta.spm.train import train_vocab
    from koroberta.train.launch import train
    from koroberta.train.config import TrainConfig

    wd = tmp_path_factory.mktemp("literals")
    dump = _dump_with_literals(wd / "kowiki-literals.xml.bz2")
    split = build_corpus(CorpusConfig(valid_fraction=0.25, test_fraction=0.1, report=False), dump, wd / "corpus")
    vocab = train_vocab(SpmConfig(vocab_size=1200, character_coverage=0.995, hard_vocab_limit=False, threads=1),
                        split / "train.txt", wd / "spm")
    data_bin = preprocess(PreprocessConfig(), split, vocab, wd / "data-bin")
    with redirect_stdout(io.StringIO()):
        ckpt = train(TrainConfig(**{**_tiny_train_config(), "max_update": 10, "save_interval_updates": 10,
                                    "validate_interval_updates": 10}), data_bin, wd / "ckpt")
    manifest = convert(ConvertConfig(parity_lines=1000, parity_sentences=4), ckpt, vocab, wd / "hf",
                       parity_text=split / "valid.txt")
    return wd, split, vocab, data_bin, manifest


def test_literals_never_reach_the_corpus_and_are_counted(chain):
    from koroberta.artifacts import read_manifest

    wd, split, _, data_bin, _ = chain
    extract_docs = read_manifest(wd / "corpus" / "extract")["stats"]["documents"]
    assert extract_docs >= 10
    for step in ("extract", "clean", "split"):
        assert read_manifest(wd / "corpus" / step)["stats"]["repaired"] == \
            {"special_token_literals_removed": LITERALS_PER_PAGE * extract_docs}, step
    texts = {s: (split / f"{s}.txt").read_text(encoding="utf-8") for s in ("train", "valid", "test")}
    for name, text in texts.items():
        assert find_special_literal(text) is None, name
    assert sum(t.count(MARKER) for t in texts.values()) == extract_docs  # the strike-through text is kept
    # spm/preprocess saw nothing left to count
    splits = read_manifest(data_bin)["stats"]["splits"]
    assert all(s["repairs"]["special_literals"] == 0 for s in splits.values())


def test_convert_parity_holds_on_the_neutralised_lines(chain):
    wd, split, _, _, manifest = chain
    par = manifest["stats"]["parity"]
    valid = [l for l in (split / "valid.txt").read_text(encoding="utf-8").split("\n") if l.strip()]
    assert par["token_id_mismatches"] == 0 and par["token_id_lines"] == min(1000, len(valid))
    assert any(MARKER in l for l in valid[:par["token_id_lines"]])  # lines that held literals were checked
    assert par["max_abs_logit_diff"] <= 1e-5


def test_the_parity_check_would_have_caught_a_literal(chain):
    """The same export fails on the raw line, naming the cause and the fix (so the test above can fail)."""
    from koroberta.convert import parity
    from koroberta.hfcompat import import_transformers
    from koroberta.convert.vocab import resolve_vocab
    from koroberta.errors import ParityError

    wd, _, vocab, _, manifest = chain
    tok = import_transformers().AutoTokenizer.from_pretrained(str(wd / "hf"))
    assert set(tok.all_special_tokens) == set(special_literals())  # the cleaner knows every token HF matches
    ev = resolve_vocab(vocab, manifest["stats"]["vocab_size"])
    raw = ["정상적인 문장이다.", "이 문단에는 <mask> 토큰과 </s> 표시가 들어 있다."]
    tp = parity.check_token_ids(tok, ev, raw)
    assert tp.mismatches == 1 and tp.literal == (2, "<mask>", raw[1])
    err = parity.token_mismatch_error(tp, "valid.txt")
    assert isinstance(err, ParityError)
    msg = str(err)
    assert msg.startswith("valid.txt: ") and "line 2 holds a literal special token '<mask>'" in msg
    assert "rebuild the corpus with the current cleaner" in msg and "\n" not in msg
