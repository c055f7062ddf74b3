"""HF ``RobertaForMaskedLM`` / ``XLMRobertaForMaskedLM`` / ``RobertaPreLayerNormForMaskedLM`` -> fairseq ``roberta``.

The inverse of :mod:`koroberta.convert.weights` (one table of module names serves both directions), plus what only
this direction has to do:

* HF adds ``token_type_embeddings[0]`` to every token (token_type_ids default to 0); fairseq has no token types, so
  the row is added to every position row, which gives the same sum at every position.
* HF ties ``lm_head.decoder.weight`` to the word embeddings unless ``tie_word_embeddings`` is false (save_pretrained
  often stores the tensor once); fairseq's tied head reads ``embed_tokens`` (``untie_weights_roberta`` false).
* fairseq's LayerNorm eps is fixed at 1e-5 and its positions start at padding_idx + 1 with padding_idx = 1: a model
  with another eps or pad id cannot run identically, and is refused rather than imported approximately.

Weights are read from safetensors only: a ``pytorch_model.bin`` is a pickle, which can run code when loaded.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from koroberta.convert.checkpoint import LM, SE
from koroberta.convert.weights import fairseq_activation, hf_prefix, layer_map
from koroberta.errors import InputError

#: HF model_type -> (pre-LN, what it is called in messages)
MODEL_TYPES = {"roberta": False, "xlm-roberta": False, "roberta-prelayernorm": True}
#: HF tensors with no fairseq counterpart that a masked LM never uses (dropped, logged)
_UNUSED = ("pooler.", "embeddings.position_ids", "embeddings.token_type_ids")
_FIX_MODEL = "pass a RobertaForMaskedLM, XLMRobertaForMaskedLM or RobertaPreLayerNormForMaskedLM directory"


@dataclass(frozen=True)
class HFModel:
    """What the import reads from an HF directory: its config and its tensors (fp32)."""

    dir: Path
    config: dict[str, Any]
    state: dict[str, Any]

    @property
    def prenorm(self) -> bool:
        return MODEL_TYPES[self.config["model_type"]]

    @property
    def rows(self) -> int:
        return int(self.state[hf_prefix(self.prenorm) + "embeddings.word_embeddings.weight"].shape[0])


def check_config(cfg: dict[str, Any], where: Path) -> None:
    """Refuse, in one line, what a fairseq ``roberta`` cannot run identically."""
    mt = cfg.get("model_type")
    if mt not in MODEL_TYPES:
        raise InputError(f"model_type {mt!r} is not a RoBERTa masked LM (supported: {', '.join(MODEL_TYPES)})",
                         path=where, fix=_FIX_MODEL)
    checks = [
        (cfg.get("position_embedding_type", "absolute") == "absolute",
         f"position_embedding_type {cfg.get('position_embedding_type')!r} (relative positions)",
         "fairseq roberta has learned absolute positions only"),
        (abs(float(cfg.get("layer_norm_eps", 1e-12)) - 1e-5) < 1e-12,
         f"layer_norm_eps {cfg.get('layer_norm_eps')}", "fairseq's LayerNorm eps is fixed at 1e-5"),
        (cfg.get("pad_token_id") == 1, f"pad_token_id {cfg.get('pad_token_id')}",
         "fairseq's padding index (and so the position offset) is 1"),
        (int(cfg.get("type_vocab_size", 1)) == 1, f"type_vocab_size {cfg.get('type_vocab_size')}",
         "fairseq has no token types; only the one row of type 0 can be folded into the positions"),
        (fairseq_activation(str(cfg.get("hidden_act", "gelu"))) is not None, f"hidden_act {cfg.get('hidden_act')!r}",
         "fairseq has gelu, gelu_accurate (= gelu_new), relu and tanh"),
        (not cfg.get("is_decoder", False) and not cfg.get("add_cross_attention", False),
         "a decoder configuration (is_decoder / add_cross_attention)", "only encoders can be imported"),
        (int(cfg.get("max_position_embeddings", 0)) > 2, f"max_position_embeddings "
                                                           f"{cfg.get('max_position_embeddings')}",
         "RoBERTa needs > 2 position rows (2 are reserved for padding)"),
    ]
    for ok, what, why in checks:
        if not ok:
            raise InputError(f"{what} cannot be represented in fairseq: {why}", path=where / "config.json",
                             fix="only models fairseq's roberta can run identically are imported")


def _read_safetensors(d: Path) -> dict[str, Any]:
    from safetensors.torch import load_file

    single, index = d / "model.safetensors", d / "model.safetensors.index.json"
    if single.is_file():
        files = [single]
    elif index.is_file():
        try:
            shards = sorted(set(json.loads(index.read_text(encoding="utf-8"))["weight_map"].values()))
        except (ValueError, KeyError) as e:
            raise InputError(f"unreadable safetensors index ({e})", path=index, fix="save the model again with "
                                                                                "save_pretrained") from None
        files = [d / s for s in shards]
        missing = [f for f in files if not f.is_file()]
        if missing:
            raise InputError(f"safetensors shard {missing[0].name} listed in the index is missing", path=d,
                             fix="copy every model-*.safetensors file of the model")
    else:
        pickled = [f.name for f in (d / "pytorch_model.bin", d / "tf_model.h5") if f.is_file()]
        raise InputError("no model.safetensors" + (f" (only {pickled[0]}, which is not read: a pickle can run code "
                                                    "when loaded)" if pickled else " (no weights at all)"), path=d,
                         fix="save the weights as safetensors: `python -c \"from transformers import "
                             "AutoModelForMaskedLM as M; M.from_pretrained('DIR').save_pretrained('DIR2')\"` on a "
                             "model you trust" if pickled else "pass the directory the model was saved to "
                                                               "(save_pretrained writes model.safetensors)")
    state: dict[str, Any] = {}
    for f in files:
        try:
            part = load_file(str(f))
        except Exception as e:  # safetensors raises SafetensorError (not exported) for a damaged file
            raise InputError(f"damaged safetensors file ({str(e).splitlines()[0][:120]})", path=f,
                             fix="copy or download the file again") from None
        state.update({k: v.float() for k, v in part.items()})
    return state


def read_hf_model(hf_dir: str | Path) -> HFModel:
    d = Path(hf_dir)
    if not d.is_dir():
        raise InputError("Hugging Face model directory not found", path=d,
                         fix="pass a local directory with config.json and model.safetensors (nothing is downloaded)")
    cfg_path = d / "config.json"
    if not cfg_path.is_file():
        raise InputError("no config.json: not a Hugging Face model directory", path=d, fix=_FIX_MODEL)
    try:
        cfg = json.loads(cfg_path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        raise InputError(f"config.json is not JSON ({e})", path=cfg_path, fix=_FIX_MODEL) from None
    check_config(cfg, d)
    return HFModel(dir=d, config=cfg, state=_read_safetensors(d))


def model_args(m: HFModel) -> argparse.Namespace:
    """The fairseq model arguments of ``m`` (what ``cfg.model`` of a fairseq-train checkpoint holds), completed by
    fairseq's own architecture function so that fairseq builds exactly this model from them."""
    from fairseq.models.roberta.model import base_architecture, roberta_prenorm_architecture

    c = m.config
    hidden = int(c["hidden_size"])
    untied = not c.get("tie_word_embeddings", True)
    args = argparse.Namespace(
        arch="roberta_prenorm" if m.prenorm else "roberta_base",
        _name="roberta_prenorm" if m.prenorm else "roberta_base",
        encoder_layers=int(c["num_hidden_layers"]), encoder_embed_dim=hidden,
        encoder_ffn_embed_dim=int(c["intermediate_size"]), encoder_attention_heads=int(c["num_attention_heads"]),
        max_positions=int(c["max_position_embeddings"]) - 2, activation_fn=fairseq_activation(c.get("hidden_act",
                                                                                                   "gelu")),
        dropout=float(c.get("hidden_dropout_prob", 0.1)), attention_dropout=float(c.get("attention_probs_dropout_prob",
                                                                                        0.1)),
        activation_dropout=0.0, pooler_dropout=0.0, layernorm_embedding=True, untie_weights_roberta=untied,
        encoder_learned_pos=True, no_token_positional_embeddings=False, encoder_layerdrop=0.0)
    (roberta_prenorm_architecture if m.prenorm else base_architecture)(args)
    args.max_source_positions = args.max_positions
    return args


def fairseq_state_dict(m: HFModel) -> dict[str, Any]:
    """Every HF tensor under its fairseq name; an HF tensor this mapping does not know is an error (never dropped
    silently), those in :data:`_UNUSED` excepted."""
    import torch

    pre = hf_prefix(m.prenorm)
    s = dict(m.state)
    used: set[str] = set()

    def take(key: str, alt: str | None = None) -> Any:
        k = key if key in s else alt
        if k is None or k not in s:
            raise InputError(f"model.safetensors lacks {key}", path=m.dir,
                             fix="pass a complete masked-LM model (lm_head included): " + _FIX_MODEL)
        used.add(k)
        return s[k]

    out: dict[str, Any] = {}
    emb = take(pre + "embeddings.word_embeddings.weight")
    out[SE + "embed_tokens.weight"] = emb
    pos = take(pre + "embeddings.position_embeddings.weight")
    out[SE + "embed_positions.weight"] = pos + take(pre + "embeddings.token_type_embeddings.weight")[0]
    for p in ("weight", "bias"):
        out[SE + f"layernorm_embedding.{p}"] = take(pre + f"embeddings.LayerNorm.{p}")
    n_layers = int(m.config["num_hidden_layers"])
    for i in range(n_layers):
        for fs, hf in layer_map(m.prenorm).items():
            for p in ("weight", "bias"):
                out[SE + f"layers.{i}.{fs}.{p}"] = take(pre + f"encoder.layer.{i}.{hf}.{p}")
    if m.prenorm:
        for p in ("weight", "bias"):
            out[SE + f"layer_norm.{p}"] = take(pre + f"LayerNorm.{p}")
    for p in ("weight", "bias"):
        out[LM + f"dense.{p}"] = take(f"lm_head.dense.{p}")
        out[LM + f"layer_norm.{p}"] = take(f"lm_head.layer_norm.{p}")
    if m.config.get("tie_word_embeddings", True):
        used.add("lm_head.decoder.weight")  # HF replaces it by the embeddings when it loads a tied model
        out[LM + "weight"] = emb
    else:
        out[LM + "weight"] = take("lm_head.decoder.weight")
    out[LM + "bias"] = take("lm_head.bias", "lm_head.decoder.bias")
    used.add("lm_head.decoder.bias")
    out[SE + "version"] = torch.tensor([3.0])  # fairseq's TransformerEncoder buffer (strict loading wants it)
    left = sorted(k for k in set(s) - used if not any(k.startswith(pre + u) for u in _UNUSED))
    if left:
        raise InputError(f"model.safetensors has {len(left)} tensor(s) the import does not know, e.g. {left[0]}",
                         path=m.dir, fix=_FIX_MODEL)
    if out[LM + "weight"].shape != emb.shape:
        raise InputError("the LM head's decoder and the embeddings differ in shape", path=m.dir, fix=_FIX_MODEL)
    return {k: v.contiguous().clone() for k, v in out.items()}


def fairseq_checkpoint(args: argparse.Namespace, state: dict[str, Any]) -> dict[str, Any]:
    """A checkpoint fairseq-train can start from with ``--finetune-from-model`` (which resets optimizer, schedule,
    meters and data position) and that :func:`koroberta.convert.checkpoint.load_checkpoint` reads: the fields
    ``fairseq.checkpoint_utils`` upgrades or reads are all present (optimizer history with num_updates 0, a fresh
    train iterator)."""
    return {
        "cfg": {"_name": None, "model": args, "task": {"_name": "masked_lm"}, "criterion": {"_name": "masked_lm"},
                "common": {}, "checkpoint": {}, "optimization": {}, "dataset": {}},
        "model": state,
        "criterion": None,
        "optimizer_history": [{"criterion_name": "MaskedLmLoss", "optimizer_name": "imported",
                               "lr_scheduler_state": {"best": None}, "num_updates": 0}],
        "task_state": {},
        "extra_state": {"train_iterator": {"version": 2, "epoch": 1, "iterations_in_epoch": 0, "shuffle": True},
                        "val_loss": None},
        "last_optimizer_state": None,
    }
