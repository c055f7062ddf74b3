"""Read a fairseq RoBERTa checkpoint without fairseq.

fairseq >= 0.10 stores ``cfg`` (a dict of dataclass-config dicts; ``cfg["model"]`` is an ``argparse.Namespace``),
older versions store ``args`` (a Namespace). Both unpickle under ``torch.load(weights_only=True)`` once
``argparse.Namespace`` is an allowed global, so no fairseq import and no arbitrary code execution is needed.
"""

from __future__ import annotations

import argparse
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from koroberta.errors import InputError

SE = "encoder.sentence_encoder."
LM = "encoder.lm_head."


@dataclass(frozen=True)
class RobertaCheckpoint:
    """The parts of a fairseq masked-LM checkpoint the export needs."""

    path: Path
    state: dict[str, Any]  # model state dict (tensors)
    model_args: argparse.Namespace
    task: dict[str, Any]
    optimization: dict[str, Any]
    dataset: dict[str, Any]
    num_updates: int | None

    @property
    def vocab_rows(self) -> int:
        return int(self.state[SE + "embed_tokens.weight"].shape[0])

    @property
    def n_layers(self) -> int:
        return len({k.split(".")[3] for k in self.state if k.startswith(SE + "layers.")})

    @property
    def hidden(self) -> int:
        return int(self.state[SE + "embed_tokens.weight"].shape[1])

    @property
    def ffn(self) -> int:
        return int(self.state[SE + "layers.0.fc1.weight"].shape[0])

    @property
    def heads(self) -> int:
        return int(getattr(self.model_args, "encoder_attention_heads"))

    @property
    def max_positions(self) -> int:
        # learned positions have padding_idx + 1 (= 2) extra rows in front: fairseq and HF RoBERTa agree on that
        return int(self.state[SE + "embed_positions.weight"].shape[0]) - 2

    @property
    def prenorm(self) -> bool:
        """Pre-LayerNorm (fairseq ``roberta_prenorm`` / ``--encoder-normalize-before``): exported as HF
        ``RobertaPreLayerNormForMaskedLM``. :func:`load_checkpoint` has checked the args and the tensors agree."""
        return bool(self.arg("encoder_normalize_before", False))

    def arg(self, name: str, default: Any = None) -> Any:
        return getattr(self.model_args, name, default)


#: how every ``torch.save`` file begins: the zip format (torch >= 1.6, what fairseq 0.12 writes) or the legacy format
#: (a protocol-2 pickle of torch's magic number)
_TORCH_MAGICS = (b"PK\x03\x04", b"\x80\x02")
_FIX_NOT_CKPT = "pass a fairseq checkpoint_*.pt written by `koroberta train` / fairseq-train"


def _sniff(path: Path) -> None:
    """Refuse a file that is not a ``torch.save`` file at all, before torch does: torch's own message for random
    bytes is about ``weights_only`` ("Weights only load failed ... Re-running with weights_only=False"), which
    sends the user after the wrong problem."""
    with open(path, "rb") as f:
        head = f.read(4)
    if not head:
        raise InputError("empty file, not a fairseq checkpoint", path=path,
                         fix=_FIX_NOT_CKPT + " (an empty file means the training was killed while saving)")
    if not head.startswith(_TORCH_MAGICS):
        raise InputError(f"not a fairseq checkpoint: not a PyTorch file at all (it starts with bytes {head.hex(' ')}; "
                         "a torch.save file starts with 50 4b or 80 02)", path=path, fix=_FIX_NOT_CKPT)


def _torch_load(path: Path) -> dict[str, Any]:
    import pickle

    import torch

    _sniff(path)
    try:
        with torch.serialization.safe_globals([argparse.Namespace]):
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        # a real torch file whose pickle holds objects a fairseq checkpoint never does (only tensors, containers and
        # argparse.Namespace): some other program's file. Name the object, not torch's weights_only advice.
        glob = re.search(r"GLOBAL ([\w.]+)", str(e))
        what = f"a PyTorch file holding {glob.group(1)} objects, which" if glob else "its pickle is damaged or holds " \
            "objects that"
        raise InputError(f"not a fairseq checkpoint: {what} a fairseq checkpoint never holds", path=path,
                         fix=_FIX_NOT_CKPT) from None
    except (RuntimeError, EOFError, OSError, ValueError) as e:
        first = str(e).strip().splitlines()[0][:160] if str(e).strip() else type(e).__name__
        raise InputError(f"truncated or damaged PyTorch file, cannot read the checkpoint ({first})", path=path,
                         fix=_FIX_NOT_CKPT + " (a partially written file means the training was killed while "
                                             "saving: use the previous checkpoint_*.pt)") from None
    if not isinstance(obj, dict) or not isinstance(obj.get("model"), dict):
        raise InputError("not a fairseq checkpoint (no 'model' state dict)", path=path,
                         fix="pass a checkpoint_*.pt from fairseq-train")
    return obj


def _section(obj: dict[str, Any], name: str) -> dict[str, Any]:
    cfg = obj.get("cfg")
    if isinstance(cfg, dict) and cfg.get(name) is not None:
        sec = cfg[name]
        return dict(vars(sec)) if isinstance(sec, argparse.Namespace) else dict(sec)
    args = obj.get("args")
    return dict(vars(args)) if isinstance(args, argparse.Namespace) else {}


def _dir_kind(d: Path) -> str:
    """What a directory passed as the checkpoint is, for the error (the pipeline's other outputs are the usual
    mistakes: the save dir itself, the data-bin, the vocab dir, an HF export)."""
    if (d / "checkpoint_last.pt").is_file() or any(d.glob("checkpoint*.pt")):
        return "a directory of checkpoints"
    if (d / "dict.txt").is_file() and (d / "train.idx").is_file():
        return "a data-bin directory (preprocess output)"
    if (d / "config.json").is_file() and (d / "model.safetensors").is_file():
        return "a Hugging Face model directory (an export already)"
    if (d / "spm.model").is_file():
        return "a vocabulary directory (spm output)"
    return "a directory"


#: the fix for a pre-LN checkpoint without an embedding LayerNorm (fairseq roberta_prenorm's default)
FIX_PRENORM_EMBEDDING = ("train with `train.layernorm_embedding: true` (fairseq --layernorm-embedding), which HF's "
                         "RobertaPreLayerNorm needs")


def _check_layer_norms(p: Path, margs: argparse.Namespace, state: dict[str, Any]) -> None:
    """Refuse a LayerNorm layout no HF class represents exactly. Post-LN (RobertaForMaskedLM) and pre-LN
    (RobertaPreLayerNormForMaskedLM) both normalise the embeddings; fairseq's roberta_prenorm does not by default
    (layernorm_embedding=False), and dropping HF's embedding norm is not possible, so that layout is refused rather
    than exported with logits that differ. The args and the tensors must tell the same story: an args-only check
    would take a hand-edited checkpoint for the other layout, and fail later as a missing-key error."""
    pre = bool(getattr(margs, "encoder_normalize_before", False))
    final = SE + "layer_norm.weight" in state
    emb = SE + "layernorm_embedding.weight" in state
    if pre != final:
        have = "has" if final else "lacks"
        raise InputError(f"checkpoint's args say encoder_normalize_before={pre} but it {have} the encoder's final "
                         f"{SE}layer_norm (which only pre-LayerNorm models have)", path=p,
                         fix="the checkpoint is corrupt or was edited; use an untouched one")
    if pre and not emb:
        raise InputError("checkpoint uses pre-LayerNorm without an embedding LayerNorm (fairseq roberta_prenorm's "
                         "default), which no Hugging Face model represents", path=p, fix=FIX_PRENORM_EMBEDDING)


def load_checkpoint(path: str | Path) -> RobertaCheckpoint:
    """Load and validate a fairseq RoBERTa masked-LM checkpoint. Raises :class:`InputError` for anything else."""
    p = Path(path)
    if p.is_dir():
        raise InputError(f"{_dir_kind(p)}, not a fairseq checkpoint file", path=p,
                         fix=f"pass {p / 'checkpoint_last.pt'}" if (p / "checkpoint_last.pt").is_file()
                         else "pass a checkpoint file, e.g. runs/<name>/checkpoints/checkpoint_last.pt")
    if not p.is_file():
        raise InputError("checkpoint not found", path=p, fix="pass e.g. runs/<name>/checkpoints/checkpoint_last.pt")
    obj = _torch_load(p)
    state = obj["model"]
    cfg = obj.get("cfg")
    margs = cfg.get("model") if isinstance(cfg, dict) else None
    if margs is None:
        margs = obj.get("args")
    if isinstance(margs, dict):
        margs = argparse.Namespace(**margs)
    if not isinstance(margs, argparse.Namespace):
        raise InputError("checkpoint has no model arguments (cfg['model'] / args)", path=p,
                         fix="pass a checkpoint written by fairseq-train")
    arch = str(getattr(margs, "arch", getattr(margs, "_name", "?")))
    needed = [SE + "embed_tokens.weight", SE + "embed_positions.weight", SE + "layers.0.fc1.weight",
              LM + "dense.weight", LM + "bias"]
    missing = [k for k in needed if k not in state]
    if missing or not (arch.startswith("roberta") or arch.startswith("xlm")):
        sample = ", ".join(sorted({".".join(k.split(".")[:2]) for k in state})[:4])
        raise InputError(f"checkpoint is a '{arch}' model (keys {sample}...), not a fairseq RoBERTa masked LM"
                         + (f"; missing {missing[0]}" if missing else ""), path=p,
                         fix="convert a checkpoint trained with `--task masked_lm --arch roberta_*`")
    _check_layer_norms(p, margs, state)
    if getattr(margs, "no_token_positional_embeddings", False) or not getattr(margs, "encoder_learned_pos", True):
        raise InputError("checkpoint does not use learned positional embeddings", path=p,
                         fix="train with the roberta_base defaults (learned positions)")
    ou = obj.get("optimizer_history") or [{}]
    nu = ou[-1].get("num_updates") if isinstance(ou[-1], dict) else None
    return RobertaCheckpoint(path=p, state=state, model_args=margs, task=_section(obj, "task"),
                             optimization=_section(obj, "optimization"), dataset=_section(obj, "dataset"),
                             num_updates=int(nu) if nu is not None else None)
