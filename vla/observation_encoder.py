"""Observations -> LM tokens: camera frames through encoder + adapter, proprioception projected.

Frames ``(B, T, V, 3, H, W)`` (T = obs_horizon, V = cameras) are encoded image by image, each
image becomes Q adapter tokens, and every group gets a learned camera embedding and a learned time
embedding (Octo / video VLMs tell views and frames apart this way), giving ``T * V * Q`` tokens
ordered frame-major. Each of the Q tokens of an image also gets a learned embedding of its own
(ViT-style absolute position): the LM's positions are 1-D and, with RoPE, relative, so without it
"where in the image" is hard to read off. Proprioception ``(B, T, S)`` is normalized with the dataset's q01 / q99 to
about [-1, 1] and projected to one token per frame (pi0, OpenVLA-OFT): a single fixed camera cannot
tell the gripper's height from its depth, the state can (DESIGN.md). In training, ``state_noise``
adds Gaussian noise of that std to the normalized state: with few demonstrations per scene, the
exact hand position along a trajectory tells which demonstration it is, hence where it goes, and
a policy can learn that instead of reading the goal from its images (causal confusion; Octo
found proprioception hurt for this reason). Noise keeps the coarse position and hides the rest.
``state_dropout`` instead hides a sample's whole state (its token keeps only the time embedding)
with that probability: where every demonstration starts from one hand position (Meta-World), the
hand's place along its straight way tells the way, and a policy that follows it never stops where
its images say (README "Meta-World"); without the state half the time, the images have to say it.

In training, ``camera_dropout`` hides each camera of a sample (all its frames) with that
probability, at least one camera always kept: a hidden camera's image tokens are zeroed, so the LM
sees only its camera, time and token embeddings. With a wrist camera that shows the target large,
a policy otherwise learns to read everything from it and ignores the fixed cameras, and then
nothing says where a goal outside the wrist's view is (README "Meta-World"); dropout makes every
camera carry what it can see. It also trains the policy to act when a camera fails.

With an encoder built with ``film=true`` the caller passes one conditioning vector per sample (the
VLA passes its pooled instruction embedding, ``film_condition``); a small MLP turns it into the
encoder's per-stage FiLM gamma / beta, zero-initialized so training starts from the
unconditioned encoder. ``film_pooling`` says how the instruction's tokens become that vector
(``vla.film_pooling``: their mean, or a learned pooling). ``film_head=product`` pools and
conditions in one: each word alone goes through a small MLP, the words' outputs are summed and
mapped linearly to per-channel log-gains and shifts, so the gains of the words multiply
(``gamma = exp(sum of log-gains) - 1``): a conjunction, where one word can close a channel
whatever the others say.

The adapter may read the same conditioning vector (a conditioned spatial softmax aims its
keypoints with it), with or without a FiLM encoder.
"""

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from vla.adapters.adapter import Adapter
from vla.film_pooling import FILM_POOLINGS, FILM_POOLS, WordSum, masked_mean
from vla.hydra_config import to_plain
from vla.train_compile import compile_for_training, for_this_forward
from vla.vision.timm_encoder import TimmEncoder

# a state reading far outside the training range is clamped so it cannot saturate the LM
_STATE_CLAMP = 5.0
# film_head=product: the largest log-gain (a channel scaled by e^4 ~ 55 at most)
_LOG_GAIN_MAX = 4.0


# film_head: how the pooled vector becomes the FiLM gamma / beta: an MLP (LayerNorm, Linear, GELU,
# Linear), or linear (LayerNorm, Linear): every word then adds its own gamma / beta (up to the
# LayerNorm's one scale per instruction), so "red" and "cube" condition the image encoder the
# same way in a pair never seen in training
# or product: every word's own MLP (WordSum) gives log-gains and shifts that add up, so the
# gains multiply: a word can close a channel whatever the other words say (a conjunction: "red"
# closes the channels of other colours, "cube" those of other shapes)
FILM_HEADS = ("mlp", "linear", "product")


def camera_mask(cameras: Sequence[int] | None, num_cameras: int, film: bool) -> Tensor:
    """``film_cameras`` (indices on the V axis; None = all) -> ``(V,)`` float mask, 1 where the
    FiLM conditions the camera."""
    if cameras is None:
        return torch.ones(num_cameras)
    picked = list(to_plain(cameras))
    if not film:
        raise ValueError(f"film_cameras={picked} needs an instruction-conditioned (film) encoder")
    if len(set(picked)) != len(picked) or any(
        not isinstance(c, int) or not 0 <= c < num_cameras for c in picked
    ):
        raise ValueError(
            f"film_cameras={picked} must be distinct camera indices in [0, {num_cameras}) "
            "(the order of dataset.image_keys; null: all)"
        )
    mask = torch.zeros(num_cameras)
    mask[picked] = 1.0
    return mask


class ObservationEncoder(nn.Module):
    """``images`` (uint8) and optional ``state`` -> ``(B, num_tokens, D)`` LM-space tokens."""

    def __init__(
        self,
        vision: TimmEncoder,
        adapter: Callable[..., Adapter],
        out_dim: int,
        num_cameras: int,
        obs_horizon: int,
        state_low: Sequence[float] | None,
        state_high: Sequence[float] | None,
        state_dims: Sequence[int] | None = None,
        state_noise: float = 0.0,
        film_pooling: str = "mean",
        camera_dropout: float = 0.0,
        film_head: str = "mlp",
        film_cameras: Sequence[int] | None = None,
        state_dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if film_pooling not in FILM_POOLINGS:
            raise ValueError(f"film_pooling={film_pooling!r} must be one of {FILM_POOLINGS}")
        if film_head not in FILM_HEADS:
            raise ValueError(f"film_head={film_head!r} must be one of {FILM_HEADS}")
        if not 0 <= state_noise < 1:
            raise ValueError(
                f"state_noise={state_noise} must be in [0, 1): the std of the noise on the "
                "normalized state (its q01..q99 span is [-1, 1]); 0 = off"
            )
        if not 0 <= state_dropout < 1:
            raise ValueError(
                f"state_dropout={state_dropout} must be in [0, 1): the probability of hiding "
                "the state of a training sample; 0 = off"
            )
        if not 0 <= camera_dropout < 1:
            raise ValueError(
                f"camera_dropout={camera_dropout} must be in [0, 1): the probability of hiding "
                "each camera of a training sample; 0 = off"
            )
        if camera_dropout and num_cameras < 2:
            raise ValueError(
                f"camera_dropout={camera_dropout} needs >= 2 cameras (one is always kept); this "
                f"model has num_cameras={num_cameras}"
            )
        self.state_noise, self.camera_dropout = state_noise, camera_dropout
        self.state_dropout = state_dropout
        self.vision = vision
        self.adapter = adapter(
            in_dim=vision.embed_dim, out_dim=out_dim, num_patches=vision.num_patches
        )
        self.num_cameras, self.obs_horizon = num_cameras, obs_horizon
        self.width = out_dim
        # an adapter that reads the pooled instruction too (a conditioned spatial softmax)
        self.adapter_conditioned = bool(getattr(self.adapter, "conditioned", False))
        # where a token sits in the image: the LM's own positions are 1-D and (RoPE) relative, so
        # a learned absolute embedding per image token (ViT) makes "where is it" a lookup
        q = self.adapter.num_tokens
        self.token_embed = nn.Parameter(torch.randn(q, out_dim) * 0.02)  # (Q, D)
        self.camera_embed = nn.Parameter(torch.randn(num_cameras, out_dim) * 0.02)  # (V, D)
        self.time_embed = nn.Parameter(torch.randn(obs_horizon, out_dim) * 0.02)  # (T, D)
        self.film: nn.Sequential | None = None
        if film_head == "product" and film_pooling != "mean":
            raise ValueError(
                f"film_head=product pools the words itself (a sum of per-word MLPs); "
                f"film_pooling={film_pooling!r} must stay mean"
            )
        if vision.film_channels:
            sites = 2 * sum(vision.film_channels)
            if film_head == "product":  # per-word features summed, then one linear map
                self.film = nn.Sequential(nn.Linear(out_dim, sites))
            else:
                hidden = (nn.Linear(out_dim, out_dim), nn.GELU()) if film_head == "mlp" else ()
                layers = (nn.LayerNorm(out_dim), *hidden, nn.Linear(out_dim, sites))
                self.film = nn.Sequential(*layers)
            nn.init.zeros_(self.film[-1].weight)
            nn.init.zeros_(self.film[-1].bias)
        # film_head=product: which entries of the FiLM vector are log-gains (site after site: C
        # gammas, C betas); None for the other heads, whose gammas are read as they are
        gains = None
        if film_head == "product" and vision.film_channels:
            parts = [torch.cat([torch.ones(c), torch.zeros(c)]) for c in vision.film_channels]
            gains = torch.cat(parts).bool()  # (F,)
        self.register_buffer("film_gains", gains, persistent=False)
        # which cameras the FiLM conditions (1) and which see the scene instruction-blind (0)
        # (rebuilt from the config when a checkpoint loads, so old checkpoints load unchanged)
        mask = camera_mask(film_cameras, num_cameras, self.film is not None)
        self.register_buffer("film_cameras", mask, persistent=False)
        self.state_proj: nn.Linear | None = None
        if (state_low is None) != (state_high is None):
            raise ValueError("pass both state_low and state_high (state q01 / q99), or neither")
        if state_low is not None:
            low = torch.as_tensor(to_plain(state_low), dtype=torch.float32).flatten()  # (S,)
            high = torch.as_tensor(to_plain(state_high), dtype=torch.float32).flatten()  # (S,)
            if low.shape != high.shape or low.numel() == 0 or (high < low).any():
                raise ValueError(
                    f"state_low={low.tolist()} / state_high={high.tolist()} must be non-empty, "
                    "equally long, with high >= low: pass the state's q01 and q99"
                )
            self.register_buffer("state_low", low)
            self.register_buffer("state_high", high)
            dims = list(range(low.numel())) if state_dims is None else list(to_plain(state_dims))
            if (
                not dims
                or any(not 0 <= d < low.numel() for d in dims)
                or len(set(dims)) != len(dims)
            ):
                raise ValueError(
                    f"state_dims={dims} must be distinct indices into the {low.numel()} state "
                    "dimensions (null: all of them)"
                )
            self.register_buffer("state_dims", torch.tensor(dims, dtype=torch.long))
            self.state_proj = nn.Linear(len(dims), out_dim)
        # built last: a model without it draws the same initial weights as before it existed
        self.film_pool: nn.Module | None = None
        if film_pooling in FILM_POOLS and self.conditioned:
            self.film_pool = FILM_POOLS[film_pooling](out_dim)
        elif film_head == "product" and self.film is not None:
            self.film_pool = WordSum(out_dim)

    def film_condition(self, text: Tensor, mask: Tensor) -> Tensor:
        """The instruction's tokens ``(B, L, D)`` (mask ``(B, L)``, 1 = real) -> the FiLM
        conditioning vector ``(B, D)``; zero for an empty instruction."""
        if self.film_pool is not None:
            return self.film_pool(text, mask)
        return masked_mean(text, mask)  # (B, D)

    @property
    def conditioned(self) -> bool:
        """Whether the image path reads the instruction (a FiLM encoder or a conditioned
        adapter): the caller then passes ``film_condition``'s vector to ``forward``."""
        return self.film is not None or self.adapter_conditioned

    @property
    def state_dim(self) -> int:
        """Length of the state vector the encoder is given (it reads ``state_dims`` of it)."""
        return 0 if self.state_proj is None else self.state_low.numel()

    @property
    def num_tokens(self) -> int:
        per_frame = self.num_cameras * self.adapter.num_tokens + (1 if self.state_dim else 0)
        return self.obs_horizon * per_frame

    def kept_cameras(self, batch: int, device: torch.device) -> Tensor:
        """Training's camera dropout: ``(B, V)`` bool, each camera kept with probability
        1 - ``camera_dropout``; where a sample would lose all, one camera drawn uniformly stays."""
        v = self.num_cameras
        keep = torch.rand(batch, v, device=device) >= self.camera_dropout  # (B, V)
        rescue = torch.randint(v, (batch,), device=device)  # (B,)
        none = ~keep.any(dim=1)  # (B,)
        keep[none, rescue[none]] = True
        return keep  # (B, V)

    def check_images(self, images: Tensor) -> None:
        size = self.vision.image_size
        expected = f"(B, T={self.obs_horizon}, V={self.num_cameras}, 3, {size}, {size}) uint8"
        if not isinstance(images, Tensor):
            raise TypeError(f"images must be a torch.Tensor {expected}, got {type(images)}")
        if images.dtype != torch.uint8:
            raise ValueError(
                f"images have dtype {images.dtype}; expected {expected} raw frames in [0, 255] "
                "(the model normalizes them itself)"
            )
        if images.ndim != 6 or tuple(images.shape[1:]) != (
            self.obs_horizon,
            self.num_cameras,
            3,
            size,
            size,
        ):
            raise ValueError(f"images have shape {tuple(images.shape)}; expected {expected}")

    def normalize_state(self, state: Tensor) -> Tensor:
        """The ``state_dims`` of a state ``(..., S)`` in the model's units ``(..., S')``: q01..q99
        -> [-1, 1], constant dimensions 0, clamped to +-5 (the state token's input; the goal
        head's target)."""
        span = self.state_high - self.state_low  # (S,)
        x = 2 * (state.float() - self.state_low) / span.clamp_min(1e-8) - 1  # (..., S)
        x = torch.where(span > 1e-8, x, torch.zeros_like(x))  # (..., S) constant dims -> 0
        return x.clamp(-_STATE_CLAMP, _STATE_CLAMP)[..., self.state_dims]  # (..., S')

    def check_state(self, state: Tensor | None, batch: int) -> None:
        if self.state_dim == 0:
            return
        expected = f"(B={batch}, T={self.obs_horizon}, S={self.state_dim}) float"
        if state is None:
            raise ValueError(f"this model takes proprioception: pass state {expected}")
        if state.shape != (batch, self.obs_horizon, self.state_dim):
            raise ValueError(f"state has shape {tuple(state.shape)}; expected {expected}")
        if not torch.isfinite(state).all():
            raise ValueError("state contains NaN or inf")

    def compile_training(self, **options: Any) -> None:
        """Run the encoder (FiLM head, image encoder, adapter, token embeddings) through
        ``torch.compile`` (``options``) in training forwards only, as
        ``CausalLM.compile_training`` does for the LM: validation, evaluation and batch-1 control
        stay eager, and state-dict names are unchanged (the compiled wrapper is not a submodule).
        The input checks stay eager. On an AMX CPU the image encoder's fwd+bwd went 201 -> 110 ms
        compiled; compiling the adapter and embeddings with it took the quickstart's fwd+bwd from
        60 to 57.5 ms more (README)."""
        compile_for_training(self, "_train_encode", self._encode, **options)

    def forward(
        self, images: Tensor, state: Tensor | None = None, condition: Tensor | None = None
    ) -> Tensor:
        """``(B, T, V, 3, H, W)`` uint8, ``(B, T, S)`` and, for a FiLM encoder, ``condition``
        ``(B, D)`` -> tokens ``(B, num_tokens, D)``."""
        self.check_images(images)
        b = images.shape[0]
        self.check_state(state, b)
        if self.conditioned and (condition is None or tuple(condition.shape) != (b, self.width)):
            got = None if condition is None else tuple(condition.shape)
            raise ValueError(
                "this encoder is instruction-conditioned (a film encoder or a conditioned "
                f"adapter): pass condition (B={b}, D={self.width}), got {got}"
            )
        return for_this_forward(self, "_train_encode", self._encode)(images, state, condition)

    def _encode(self, images: Tensor, state: Tensor | None, condition: Tensor | None) -> Tensor:
        """``forward`` past its checks (what ``compile_training`` compiles)."""
        b, t, v = images.shape[:3]
        flat = images.flatten(0, 2).float() / 255.0  # (B*T*V, 3, H, W)
        film = None
        if self.film is not None:
            film = self.film(condition)  # (B, F)
            if self.film_gains is not None:  # log-gains -> gamma = gain - 1 (shifts as they are)
                gamma = film.float().clamp(max=_LOG_GAIN_MAX).exp() - 1  # (B, F)
                film = torch.where(self.film_gains, gamma.to(film.dtype), film)  # (B, F)
            film = film[:, None, None]  # (B, 1, 1, F)
            film = film * self.film_cameras[:, None].to(film.dtype)  # (B, 1, V, F)
            film = film.expand(b, t, v, film.shape[-1]).flatten(0, 2)  # (B*T*V, F=2*sum(C))
        patches = self.vision(flat, film)  # (B*T*V, P, C)
        if self.adapter_conditioned:  # the instruction aims the adapter too, image by image
            per_image = condition[:, None, None].expand(b, t, v, self.width).flatten(0, 2)
            tokens = self.adapter(patches, per_image)  # (B*T*V, Q, D)
        else:
            tokens = self.adapter(patches)  # (B*T*V, Q, D)
        tokens = tokens.unflatten(0, (b, t, v))  # (B, T, V, Q, D)
        if self.training and self.camera_dropout:
            keep = self.kept_cameras(b, tokens.device)  # (B, V)
            tokens = tokens * keep[:, None, :, None, None].to(tokens.dtype)  # (B, T, V, Q, D)
        tokens = tokens + self.token_embed  # (B, T, V, Q, D)
        tokens = tokens + self.camera_embed[None, None, :, None]  # (B, T, V, Q, D)
        tokens = tokens + self.time_embed[None, :, None, None]  # (B, T, V, Q, D)
        tokens = tokens.flatten(2, 3)  # (B, T, V*Q, D)
        if self.state_proj is not None:
            x = self.normalize_state(state)  # (B, T, S')
            if self.training and self.state_noise:
                x = x + self.state_noise * torch.randn_like(x)  # (B, T, S')
            s = self.state_proj(x)  # (B, T, D)
            if self.training and self.state_dropout:  # a hidden state's token: its time alone
                keep = torch.rand(b, 1, 1, device=s.device) >= self.state_dropout  # (B, 1, 1)
                s = s * keep.to(s.dtype)  # (B, T, D)
            s = s + self.time_embed  # (B, T, D)
            tokens = torch.cat([tokens, s.unsqueeze(2)], dim=2)  # (B, T, V*Q + 1, D)
        return tokens.flatten(1, 2)  # (B, T * (V*Q [+1]), D)
