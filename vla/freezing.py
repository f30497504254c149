"""Which parameters train: the VLA's parameters in named parts, and freezing some of them.

Every parameter belongs to exactly one part of ``FREEZABLE``, so ``freeze=[...]`` in a config
(staged training: the adapter first, then everything) always means the same set of weights.
Weights a part builds frozen (a pretrained text encoder, the base of a LoRA-wrapped LM) are
*pinned*: unfreezing everything leaves them frozen.
"""

from collections.abc import Collection, Sequence
from typing import Any

from torch import nn

from vla.hydra_config import to_plain

# parts that ``freeze`` can name; every parameter belongs to exactly one
FREEZABLE = ("vision", "adapter", "llm", "token_embeddings", "text_encoder")


def parameter_groups(model: Any) -> dict[str, list[nn.Parameter]]:
    """Every parameter of ``model`` (a ``vla.model.VLA``) under exactly one ``FREEZABLE`` name."""
    llm = model.llm
    emb = {id(p) for p in llm.model.get_input_embeddings().parameters()}
    emb |= {id(p) for p in llm.model.get_output_embeddings().parameters()}
    llm_params = list(llm.parameters())
    own = ("prompt.obs.vision.", "llm.", "prompt.text_encoder.")
    glue = [p for n, p in model.named_parameters() if not n.startswith(own)]
    encoder = model.text_encoder
    return {
        "vision": list(model.obs.vision.parameters()),
        "adapter": glue,  # adapter, camera / time / state embeddings, queries, prompt end
        "llm": [p for p in llm_params if id(p) not in emb],
        "token_embeddings": [p for p in llm_params if id(p) in emb],
        "text_encoder": list(encoder.parameters()) if encoder is not None else [],
    }


def freeze_parts(model: Any, parts: Sequence[str], pinned: Collection[str]) -> tuple[str, ...]:
    """Freeze ``parts`` of ``model`` and unfreeze the rest, except the parameters named in
    ``pinned`` (built frozen), which stay frozen. Returns the parts as a plain tuple."""
    parts = tuple(to_plain(list(parts)))
    unknown = [p for p in parts if p not in FREEZABLE]
    if unknown:
        raise ValueError(f"freeze={list(parts)} names unknown parts {unknown}: use {FREEZABLE}")
    pinned_ids = {id(p) for n, p in model.named_parameters() if n in pinned}
    for name, params in parameter_groups(model).items():
        for p in params:
            p.requires_grad_(name not in parts and id(p) not in pinned_ids)
    return parts
