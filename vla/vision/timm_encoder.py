"""Any timm model as a patch-token encoder: images ``(N, 3, H, W)`` in [0, 1] -> ``(N, P, C)``.

CNNs give a feature map ``(N, C, h, w)`` whose cells become ``P = h * w`` tokens (optionally
average-pooled to ``token_grid x token_grid`` to bound the LM's sequence length, which dominates
compute); ViTs give tokens directly, minus their class / register prefix tokens. ``feature_stage``
picks an intermediate stage of a CNN (timm ``features_only``), e.g. stride 16 instead of 32 to keep
a 4x4 grid at 64 px. Sizes (``embed_dim``, ``num_patches``) are measured with one dummy forward at
construction, so they are right for every architecture and input size.

Weights: built with ``pretrained=False`` (nothing is downloaded); ``pretrained_path`` loads a local
``.safetensors`` / ``.pth`` file through timm's ``pretrained_cfg_overlay=dict(file=...)``, which
drops a classifier head the encoder does not use and unpickles nothing (``weights_only=True``).

Instruction conditioning (``film=true``): FiLM (Perez et al. 2018) as in RT-1's FiLM-EfficientNet
and CLIPort: after every stage timm lists in ``feature_info`` (up to the one read), the features
are scaled and shifted per channel, ``x * (1 + gamma) + beta``, with ``gamma, beta`` computed from
the instruction by the caller (``film_channels`` says how many per stage). The image features are
then about *the named object* from the first stage on, instead of having to describe every object
for a later layer to pick from.
"""

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import timm
import timm.data
import torch
from torch import Tensor, nn

from vla.hydra_config import target_config, to_plain
from vla.vision.max_pool import use_aten_max_pools


class TimmEncoder(nn.Module):
    """A timm backbone returning patch tokens.

    Args:
        model_name: any ``timm.list_models()`` name, e.g. ``resnet10t``, ``test_vit``.
        image_size: square input size in pixels that the model will be fed.
        feature_stage: CNN stage index for ``features_only`` (None: the final feature map).
        token_grid: average-pool a CNN map to ``token_grid x token_grid`` tokens (None: keep).
        model_kwargs: extra ``timm.create_model`` arguments (widths, depths, ``img_size`` ...).
        pretrained_path: local weights file to load, or None for random init.
        film: condition the stages on a vector per image (``forward(images, film=...)``).
        film_stages: with ``film``, which stages are conditioned: indices into timm's
            ``feature_info`` (0 = the stem's output), up to ``feature_stage``; None: all of them.
            On the quickstart, conditioning only stages 2-3 (or only 0-1) grounded the words
            worse than conditioning all of them (``ablations/quickstart_film_late``, README
            "Language").
        channels_last: run the convolutions in NHWC memory layout (oneDNN's native one on CPUs,
            tensor cores' on GPUs). Same results up to float rounding. Measured on this
            project's 2-core CPU: the default encoder's forward + backward on 128 images of 64 px
            takes 90 ms instead of 136 ms, the quickstart's whole training step (2 cameras,
            batch 64) 221 ms instead of 239 ms; at 32 images the two are even
            (``python benchmarks/model.py``: ``train_ms_per_step_b32`` vs ``..._nchw``).
    """

    def __init__(
        self,
        model_name: str,
        image_size: int = 64,
        feature_stage: int | None = None,
        token_grid: int | None = None,
        model_kwargs: dict[str, Any] | None = None,
        pretrained_path: str | None = None,
        film: bool = False,
        channels_last: bool = True,
        stem: str | None = None,
        film_stages: Sequence[int] | None = None,
    ) -> None:
        super().__init__()
        if not timm.is_model(model_name.split(".")[0]):
            raise ValueError(
                f"model_name={model_name!r} is not a timm model: pick one of timm.list_models()"
            )
        if image_size < 8:
            raise ValueError(f"image_size={image_size} must be >= 8 pixels")
        kwargs = dict(to_plain(model_kwargs or {}))
        stages = None if film_stages is None else [int(k) for k in film_stages]  # plain ints
        self.config = target_config(
            self,
            model_name=model_name,
            image_size=image_size,
            feature_stage=feature_stage,
            token_grid=token_grid,
            model_kwargs=kwargs,
            pretrained_path=None,  # weights travel in the checkpoint, not through this path
            film=film,
            channels_last=channels_last,
            stem=stem,
            film_stages=stages,
        )
        if pretrained_path is not None:
            if not Path(pretrained_path).is_file():
                raise FileNotFoundError(f"pretrained_path={pretrained_path!r} is not a file")
            kwargs["pretrained_cfg_overlay"] = {"file": str(pretrained_path)}
        if feature_stage is not None:
            kwargs.update(features_only=True, out_indices=(feature_stage,))
        else:
            kwargs["num_classes"] = 0
        self.model = timm.create_model(model_name, pretrained=pretrained_path is not None, **kwargs)
        if stem is not None:
            replace_stem(self.model, stem, model_name)
        use_aten_max_pools(self.model)  # same numbers; faster compiled on a CPU
        self.image_size = image_size
        self.features_only = feature_stage is not None
        self.num_prefix_tokens = int(getattr(self.model, "num_prefix_tokens", 0))
        self.pool = nn.AdaptiveAvgPool2d(token_grid) if token_grid is not None else nn.Identity()
        # ImageNet statistics unless the model's pretrained config says otherwise
        cfg = timm.data.resolve_data_config({}, model=self.model)
        self.register_buffer("mean", torch.tensor(cfg["mean"]).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(cfg["std"]).view(1, 3, 1, 1), persistent=False)
        # FiLM sites: the stages timm names in feature_info, up to the one the tokens come from;
        # their widths are read during the size probe below (they depend on model_kwargs)
        modules = dict(self.model.named_modules())
        if stages is not None and not film:
            raise ValueError(f"film_stages={stages} needs film=true")
        sites = self._film_sites(model_name, feature_stage, modules, stages) if film else []
        widths: dict[str, int] = {}
        handles = [
            modules[key].register_forward_hook(
                lambda m, i, o, key=key: widths.__setitem__(key, o.shape[1 if o.ndim == 4 else -1])
            )
            for key in sites
        ]
        self._film: list[Tensor] | None = None  # per-site (N, 2, C) while a forward runs
        with torch.no_grad():
            was_training = self.model.training
            probe = self.model.eval()
            dummy = torch.zeros(1, 3, image_size, image_size)  # (1, 3, H, W)
            raw = self._features(probe, dummy)
            if raw.ndim == 3 and token_grid is not None:
                raise ValueError(
                    f"token_grid={token_grid} needs a CNN feature map, but {model_name} returns "
                    "tokens: set token_grid=null or use an adapter that resamples (perceiver)"
                )
            tokens = self._tokens(raw)  # (1, P, C)
            self.model.train(was_training)
        for h in handles:
            h.remove()
        self.num_patches, self.embed_dim = int(tokens.shape[1]), int(tokens.shape[2])
        self.film_channels: tuple[int, ...] = tuple(int(widths[key]) for key in sites)
        for k, key in enumerate(sites):
            modules[key].register_forward_hook(self._film_hook(k))
        self.channels_last = channels_last
        if channels_last:  # 4-D weights only; a later load_state_dict copies into this layout
            self.model.to(memory_format=torch.channels_last)

    def _film_sites(
        self,
        model_name: str,
        feature_stage: int | None,
        modules: dict[str, nn.Module],
        film_stages: list[int] | None = None,
    ) -> list[str]:
        info = getattr(self.model, "feature_info", None)
        if info is None:
            raise ValueError(f"film=true needs timm feature_info stages; {model_name} has none")
        entries = info.info if hasattr(info, "info") else list(info)  # every stage, in order
        if feature_stage is not None:  # the model keeps only the stages up to this one
            entries = entries[: feature_stage + 1]
        if film_stages is not None:
            if (
                not film_stages
                or len(set(film_stages)) != len(film_stages)
                or not all(0 <= k < len(entries) for k in film_stages)
            ):
                raise ValueError(
                    f"film_stages={film_stages} must be distinct stage indices in "
                    f"[0, {len(entries)}) (the stages of {model_name} up to "
                    f"feature_stage={feature_stage})"
                )
            entries = [entries[k] for k in sorted(film_stages)]
        # features_only wrappers flatten dotted names (blocks.0 -> blocks_0)
        sites = [e["module"] for e in entries]
        sites = [n if n in modules else n.replace(".", "_") for n in sites]
        sites = [key for key in sites if key in modules]
        if not sites:
            raise ValueError(f"film=true found no stage modules in {model_name}")
        return sites

    def _film_hook(self, k: int):
        def hook(module: nn.Module, inputs: Any, out: Tensor) -> Tensor | None:
            if self._film is None:
                return None  # a caller without conditioning: identity
            gamma, beta = self._film[k].unbind(1)  # (N, C), (N, C)
            if out.ndim == 4:  # CNN map (N, C, h, w)
                return out * (1 + gamma[:, :, None, None]) + beta[:, :, None, None]
            return out * (1 + gamma[:, None]) + beta[:, None]  # tokens (N, L, C)

        return hook

    def _features(self, model: nn.Module, x: Tensor) -> Tensor:
        if self.features_only:
            return model(x)[-1]  # (N, C, h, w)
        return model.forward_features(x)  # (N, C, h, w) or (N, prefix + P, C)

    def _tokens(self, feats: Tensor) -> Tensor:
        if feats.ndim == 4:
            feats = self.pool(feats)  # (N, C, h', w')
            return feats.flatten(2).transpose(1, 2)  # (N, h' * w', C)
        return feats[:, self.num_prefix_tokens :]  # (N, P, C)

    def forward(self, images: Tensor, film: Tensor | None = None) -> Tensor:
        """``(N, 3, H, W)`` floats in [0, 1] -> patch tokens ``(N, P, C)``.

        ``film``: ``(N, 2 * sum(film_channels))`` per-image gamma / beta, site after site (only
        for an encoder built with ``film=true``, and then required)."""
        if bool(self.film_channels) != (film is not None):
            raise ValueError(
                "this encoder was built with film=true: pass film=(N, 2 * sum(film_channels))"
                if self.film_channels
                else "film conditioning given, but the encoder was built with film=false"
            )
        x = (images - self.mean) / self.std  # (N, 3, H, W)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)  # same shape, NHWC strides
        if film is not None:
            expected = (images.shape[0], 2 * sum(self.film_channels))
            if tuple(film.shape) != expected:
                raise ValueError(f"film has shape {tuple(film.shape)}; expected {expected}")
            parts = film.split([2 * c for c in self.film_channels], dim=1)
            self._film = [p.unflatten(1, (2, -1)) for p in parts]  # per site (N, 2, C)
        try:
            return self._tokens(self._features(self.model, x))  # (N, P, C)
        finally:
            self._film = None


STEMS = ("strided", "patchify", "deep_strided")


def replace_stem(model: nn.Module, stem: str, model_name: str) -> None:
    """Swap a ResNet's stride-4 stem (``conv1`` at stride 2, ``bn1``, ``act1``, ``maxpool``) for a
    cheaper one with the same output width and stride, so every later stage is unchanged.

    - ``strided``: two 3x3 convolutions at stride 2 (3 -> C/2, BN, ReLU, C/2 -> C); the max-pool
      goes. At 64 px the deep stem's three convolutions and batch norms on a 32 x 32 map (and the
      FiLM and max-pool there) are the memory-bound part of the encoder; here only the first,
      narrow convolution runs at 32 x 32.
    - ``patchify``: one 4 x 4 convolution at stride 4 (ViT / ConvNeXt); nothing runs at 32 x 32.
    - ``deep_strided``: a deep stem's own convolutions (resnet10t: 3 -> 12 at stride 2, 12 -> 16,
      16 -> 32) with the last one at stride 2 in place of the max-pool: the widest convolution,
      its batch norm, FiLM and ReLU run at a quarter of the pixels, and the max-pool is gone.
    """
    if stem not in STEMS:
        raise ValueError(f"stem={stem!r}: pick one of {STEMS} (or null for the model's own)")
    parts = [getattr(model, name, None) for name in ("conv1", "bn1", "maxpool")]
    if any(p is None for p in parts) or not isinstance(parts[1], nn.BatchNorm2d):
        raise ValueError(
            f"stem={stem!r} replaces a ResNet stem (conv1, bn1, maxpool); {model_name} has none"
        )
    width = parts[1].num_features  # the stem's output channels, what layer1 reads
    if stem == "deep_strided":
        if not isinstance(parts[0], nn.Sequential) or not isinstance(parts[0][-1], nn.Conv2d):
            raise ValueError(
                f"stem=deep_strided needs a deep stem (conv1 a Sequential ending in a Conv2d, as "
                f"resnet10t / resnet*d); {model_name}'s conv1 is {type(parts[0]).__name__}"
            )
        parts[0][-1].stride = (2, 2)
        model.maxpool = nn.Identity()
        return
    if stem == "patchify":
        conv: nn.Module = nn.Conv2d(3, width, kernel_size=4, stride=4, bias=False)
    else:
        half = max(width // 2, 1)
        conv = nn.Sequential(
            nn.Conv2d(3, half, kernel_size=3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(half),
            nn.ReLU(inplace=True),
            nn.Conv2d(half, width, kernel_size=3, stride=2, padding=1, bias=False),
        )
    model.conv1 = conv
    model.maxpool = nn.Identity()
