"""fairseq RoBERTa state dict -> HF ``RobertaForMaskedLM`` config + state dict (post-LN), or
``RobertaPreLayerNormForMaskedLM`` (pre-LN: fairseq ``roberta_prenorm`` / ``--encoder-normalize-before``)."""

from __future__ import annotations

from typing import Any

from koroberta.convert.checkpoint import LM, SE, RobertaCheckpoint
from koroberta.convert.vocab import ExportVocab
from koroberta.errors import InputError
from koroberta.layout import BOS, EOS, PAD

# fairseq activation_fn -> HF hidden_act (fairseq "gelu" is the exact erf GELU, HF "gelu" too)
_ACT = {"gelu": "gelu", "gelu_accurate": "gelu_new", "gelu_fast": "gelu_new", "relu": "relu", "tanh": "tanh"}

_LAYER_MAP = {
    "self_attn.q_proj": "attention.self.query",
    "self_attn.k_proj": "attention.self.key",
    "self_attn.v_proj": "attention.self.value",
    "self_attn.out_proj": "attention.output.dense",
    "self_attn_layer_norm": "attention.output.LayerNorm",
    "fc1": "intermediate.dense",
    "fc2": "output.dense",
    "final_layer_norm": "output.LayerNorm",
}
# pre-LN (fairseq roberta_prenorm <-> HF RobertaPreLayerNorm): the same modules, the two layer norms moved in front
# of attention and FFN; the encoder's final norm is fairseq's sentence_encoder.layer_norm, HF's <prefix>.LayerNorm
_PRELN_LAYER_MAP = {**_LAYER_MAP, "self_attn_layer_norm": "attention.LayerNorm",
                    "final_layer_norm": "intermediate.LayerNorm"}


def layer_map(prenorm: bool) -> dict[str, str]:
    """fairseq module -> HF module inside ``layers.<i>`` / ``encoder.layer.<i>``."""
    return dict(_PRELN_LAYER_MAP if prenorm else _LAYER_MAP)


def hf_prefix(prenorm: bool) -> str:
    """The HF base-model prefix of a masked-LM state dict (XLM-R uses ``roberta.`` too)."""
    return "roberta_prelayernorm." if prenorm else "roberta."


def hf_activation(fairseq_act: str) -> str | None:
    return _ACT.get(fairseq_act)


def fairseq_activation(hf_act: str) -> str | None:
    """HF hidden_act -> fairseq activation_fn (gelu_new and gelu_pytorch_tanh are fairseq's gelu_accurate)."""
    return {"gelu": "gelu", "gelu_new": "gelu_accurate", "gelu_pytorch_tanh": "gelu_accurate", "relu": "relu",
            "tanh": "tanh"}.get(hf_act)


def hf_model_class(prenorm: bool) -> str:
    """The transformers masked-LM class of the export (its config class is ``hf_model_class(...)`` with
    ``ForMaskedLM`` replaced by ``Config``)."""
    return "RobertaPreLayerNormForMaskedLM" if prenorm else "RobertaForMaskedLM"


def hf_config_kwargs(ck: RobertaCheckpoint, ev: ExportVocab) -> dict[str, Any]:
    act = str(ck.arg("activation_fn", "gelu"))
    if act not in _ACT:
        raise InputError(f"activation_fn={act!r} has no Hugging Face equivalent", path=ck.path,
                         fix=f"train with one of {', '.join(_ACT)}")
    untied = bool(ck.arg("untie_weights_roberta", False))
    return dict(
        vocab_size=len(ev.hf_vocab), hidden_size=ck.hidden, num_hidden_layers=ck.n_layers,
        num_attention_heads=ck.heads, intermediate_size=ck.ffn, hidden_act=_ACT[act],
        hidden_dropout_prob=float(ck.arg("dropout", 0.1)),
        attention_probs_dropout_prob=float(ck.arg("attention_dropout", 0.1)),
        max_position_embeddings=ck.max_positions + 2,  # fairseq positions start at padding_idx + 1 = 2
        type_vocab_size=1, layer_norm_eps=1e-5, initializer_range=0.02,
        pad_token_id=PAD, bos_token_id=BOS, eos_token_id=EOS, tie_word_embeddings=not untied,
        architectures=[hf_model_class(ck.prenorm)],
    )


def hf_state_dict(ck: RobertaCheckpoint, ev: ExportVocab) -> dict[str, Any]:
    """Rename (and for the legacy layout, re-order vocab rows of) every tensor. Unused keys are an error."""
    import torch

    s = {k: v for k, v in ck.state.items() if not k.endswith(".version") and not k.startswith("classification_heads.")}
    rows = torch.tensor(ev.hf_to_fairseq, dtype=torch.long)
    out: dict[str, Any] = {}
    used: set[str] = set()

    def take(src: str) -> Any:
        if src not in s:
            raise InputError(f"checkpoint lacks {src}", path=ck.path, fix="pass a complete fairseq RoBERTa checkpoint")
        used.add(src)
        return s[src].detach().to(torch.float32)

    pre = hf_prefix(ck.prenorm)
    emb = take(SE + "embed_tokens.weight").index_select(0, rows)
    out[pre + "embeddings.word_embeddings.weight"] = emb
    out[pre + "embeddings.position_embeddings.weight"] = take(SE + "embed_positions.weight")
    out[pre + "embeddings.token_type_embeddings.weight"] = torch.zeros(1, ck.hidden)
    for p in ("weight", "bias"):
        out[pre + f"embeddings.LayerNorm.{p}"] = take(SE + f"layernorm_embedding.{p}")
    for i in range(ck.n_layers):
        for fs, hf in layer_map(ck.prenorm).items():
            for p in ("weight", "bias"):
                out[pre + f"encoder.layer.{i}.{hf}.{p}"] = take(SE + f"layers.{i}.{fs}.{p}")
    if ck.prenorm:
        # pre-LN leaves the last layer's residual stream un-normalised: fairseq's TransformerEncoder normalises it
        # with sentence_encoder.layer_norm, HF's RobertaPreLayerNormModel with <prefix>.LayerNorm
        for p in ("weight", "bias"):
            out[pre + f"LayerNorm.{p}"] = take(SE + f"layer_norm.{p}")
    for p in ("weight", "bias"):
        out[f"lm_head.dense.{p}"] = take(LM + f"dense.{p}")
        out[f"lm_head.layer_norm.{p}"] = take(LM + f"layer_norm.{p}")
    dec = take(LM + "weight").index_select(0, rows)
    if not bool(ck.arg("untie_weights_roberta", False)) and not torch.equal(dec, emb):
        raise InputError("encoder.lm_head.weight differs from the token embeddings although the model is tied",
                         path=ck.path, fix="the checkpoint is corrupt or was edited; use an untouched one")
    out["lm_head.decoder.weight"] = dec
    out["lm_head.bias"] = take(LM + "bias").index_select(0, rows)
    out["lm_head.decoder.bias"] = out["lm_head.bias"]
    left = sorted(set(s) - used)
    if left:
        raise InputError(f"checkpoint has {len(left)} tensor(s) the export does not know, e.g. {left[0]}", path=ck.path,
                         fix="only fairseq roberta masked-LM checkpoints (post-LN or pre-LN with layernorm_embedding, "
                             "learned positions) are supported")
    return out
