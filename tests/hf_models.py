"""Local Hugging Face models and tokenizers for the import tests: nothing is downloaded.

Three tokenizer layouts users bring:

* ``wordpiece``: a WordPiece tokenizer in the ``klue/roberta-base`` layout (``[CLS]=0 [PAD]=1 [SEP]=2 [UNK]=3
  [MASK]=4``, BertTokenizerFast), its vocabulary counted here from kowiki lines;
* ``xlmr``: an XLM-R-style spm Unigram (``<s> <pad> </s> <unk>``, spm pieces at spm id + 1, ``<mask>`` last);
* ``own``: our own export (``koroberta convert`` of a tiny fairseq checkpoint), made by the test that needs it.

Every parameter of a model, LayerNorm weights and biases and the token-type row included, is drawn from N(0, 0.02)
with a fixed seed, so that a swapped or missing mapping cannot pass a logit comparison.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

WP_SPECIALS = ["[CLS]", "[PAD]", "[SEP]", "[UNK]", "[MASK]"]


def wordpiece_tokenizer(lines: list[str], out: Path, pieces: int = 400) -> Path:
    """A klue-layout WordPiece tokenizer saved with ``save_pretrained`` into ``out`` (tokenizer.json, vocab.txt,
    tokenizer_config.json ...): the specials, every character of ``lines`` (word-initial and ``##`` continuation),
    then the ``pieces`` most frequent whole words and 2-3 character continuations, ties broken by the piece.

    The vocabulary is counted here rather than by ``tokenizers``' WordPiece trainer: that trainer's result depends on
    hash order, so the same lines gave 1,753 to 1,760 tokens from run to run, and a test that needed rows past a
    multiple of 8 failed in CI."""
    from collections import Counter

    import transformers as tf
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

    norm = normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=True, strip_accents=False,
                                      lowercase=False)
    pre = pre_tokenizers.BertPreTokenizer()
    words: Counter[str] = Counter()
    for line in lines:
        words.update(w for w, _ in pre.pre_tokenize_str(norm.normalize_str(line)))
    initial = {w[0] for w in words}
    inner = {c for w in words for c in w[1:]}
    vocab = WP_SPECIALS + sorted(initial) + sorted("##" + c for c in inner)
    counts: Counter[str] = Counter()
    for w, n in words.items():
        if len(w) > 1:
            counts[w] += n
        for i in range(1, len(w)):
            for j in (i + 2, i + 3):
                if j <= len(w):
                    counts["##" + w[i:j]] += n
    vocab += [p for p, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:pieces]]
    tk = Tokenizer(models.WordPiece({p: i for i, p in enumerate(vocab)}, unk_token="[UNK]",
                                    continuing_subword_prefix="##", max_input_chars_per_word=100))
    tk.normalizer, tk.pre_tokenizer, tk.decoder = norm, pre, decoders.WordPiece(prefix="##")
    tk.post_processor = processors.TemplateProcessing(single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
                                                      special_tokens=[("[CLS]", 0), ("[SEP]", 2)])
    tok = tf.BertTokenizerFast(tokenizer_object=tk, cls_token="[CLS]", pad_token="[PAD]",
                               sep_token="[SEP]", unk_token="[UNK]", mask_token="[MASK]", bos_token="[CLS]",
                               eos_token="[SEP]", do_lower_case=False, model_max_length=512)
    out.mkdir(parents=True, exist_ok=True)
    tok.save_pretrained(str(out))
    return out


def xlmr_tokenizer(lines: list[str], out: Path, vocab_size: int = 1500) -> Path:
    """An XLM-R-style tokenizer: an spm Unigram (unk 0, bos 1, eos 2) re-indexed as XLM-R does (fairseq offset 1),
    ``<mask>`` appended, saved with ``save_pretrained``."""
    import sentencepiece as spm
    import transformers as tf
    from sentencepiece import sentencepiece_model_pb2 as pb

    out.mkdir(parents=True, exist_ok=True)
    prefix = out / "sentencepiece.bpe"
    spm.SentencePieceTrainer.train(sentence_iterator=iter([l for l in lines if l.strip()]), model_prefix=str(prefix),
                                   vocab_size=vocab_size, model_type="unigram", character_coverage=0.99,
                                   num_threads=1, minloglevel=2, unk_id=0, bos_id=1, eos_id=2, pad_id=-1)
    (out / "sentencepiece.bpe.vocab").unlink()
    m = pb.ModelProto()
    m.ParseFromString((out / "sentencepiece.bpe.model").read_bytes())
    vocab = [("<s>", 0.0), ("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0)]
    vocab += [(p.piece, p.score) for p in m.pieces[3:]] + [("<mask>", 0.0)]
    tok = tf.XLMRobertaTokenizer(vocab=vocab, _spm_precompiled_charsmap=m.normalizer_spec.precompiled_charsmap,
                                 model_max_length=512)
    tok.save_pretrained(str(out))
    return out


def padded_rows(tokens: int, multiple: int = 8) -> int:
    """Embedding rows for a tokenizer of ``tokens``: at least one more, rounded up to ``multiple``, so that the model
    always has rows the tokenizer never emits (the padded case the import must keep), whatever ``tokens`` is."""
    return -(-(tokens + 1) // multiple) * multiple


def random_model(kind: str, vocab_size: int, *, seed: int = 0, layers: int = 2, hidden: int = 32, heads: int = 2,
                 ffn: int = 64, max_positions: int = 66, prenorm: bool = False, pad_to: int = 0,
                 std: float = 0.02) -> Any:
    """A masked-LM model of ``kind`` (``roberta`` | ``xlm-roberta``; ``prenorm``: RobertaPreLayerNorm) whose every
    parameter is N(0, ``std``) with ``seed``. ``pad_to`` > 0: :func:`padded_rows` embedding rows.

    At std 0.02 the LayerNorm weights scale every normalised vector by ~0.02, so attention scores are ~1e-5 and
    attention is uniform: swapping the query and key projections moves the logits by ~1e-8 (measured), below any
    tolerance. A larger ``std`` makes attention matter, for the tests that must see such a swap."""
    import torch
    import transformers as tf

    rows = padded_rows(vocab_size, pad_to) if pad_to else vocab_size
    kw = dict(vocab_size=rows, hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
              intermediate_size=ffn, max_position_embeddings=max_positions, type_vocab_size=1, layer_norm_eps=1e-5,
              pad_token_id=1, bos_token_id=0, eos_token_id=2, hidden_act="gelu")
    if prenorm:
        model = tf.RobertaPreLayerNormForMaskedLM(tf.RobertaPreLayerNormConfig(**kw))
    elif kind == "xlm-roberta":
        model = tf.XLMRobertaForMaskedLM(tf.XLMRobertaConfig(**kw))
    else:
        model = tf.RobertaForMaskedLM(tf.RobertaConfig(**kw))
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():  # tied decoder weight = word embeddings: drawn once
            p.copy_(torch.randn(p.shape, generator=g) * std)
    return model.eval()


def save_model(model: Any, tokenizer_dir: Path, out: Path) -> Path:
    """``out`` = the model (safetensors) + the tokenizer files of ``tokenizer_dir``: a local HF model directory."""
    import shutil

    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(out))
    for f in tokenizer_dir.iterdir():
        if f.is_file() and f.name not in ("config.json", "model.safetensors"):
            shutil.copyfile(f, out / f.name)
    return out
