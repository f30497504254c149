from functools import partial
from pathlib import Path

import pytest
import timm
import torch
from safetensors.torch import save_file

from vla import keys
from vla.adapters import MLP, AttentionPool, Linear, PerceiverResampler, QFormer, SpatialSoftmax
from vla.vision import TimmEncoder

ADAPTERS = {
    "linear": Linear,
    "mlp": partial(MLP, hidden_dim=24),
    "perceiver": partial(PerceiverResampler, num_latents=5, depth=2, num_heads=2),
    "qformer": partial(QFormer, num_queries=3, depth=1, dim=16, num_heads=2),
    "attention_pool": partial(AttentionPool, num_queries=2, num_heads=2),
    "spatial_softmax": partial(SpatialSoftmax, num_keypoints=3, num_tokens=2),
}


def test_cnn_encoder_stage_and_token_grid() -> None:
    enc = TimmEncoder(
        "resnet10t", image_size=64, feature_stage=3, model_kwargs={"channels": [8, 8, 16, 16]}
    )
    assert (enc.num_patches, enc.embed_dim) == (16, 16)  # stride 16 at 64 px
    out = enc(torch.rand(2, 3, 64, 64))
    assert out.shape == (2, 16, 16)
    pooled = TimmEncoder(
        "resnet10t", image_size=64, token_grid=1, model_kwargs={"channels": [8, 8, 16, 16]}
    )
    assert pooled(torch.rand(2, 3, 64, 64)).shape == (2, 1, 16)


@pytest.mark.parametrize("stem", ["strided", "patchify", "deep_strided"])
def test_cheaper_stems_keep_the_stages_and_film(stem: str) -> None:
    kwargs = {"channels": [8, 8, 16, 16], "stem_width": 8}
    own = TimmEncoder("resnet10t", 64, feature_stage=3, model_kwargs=kwargs, film=True)
    cheap = TimmEncoder("resnet10t", 64, feature_stage=3, model_kwargs=kwargs, film=True, stem=stem)
    assert (cheap.num_patches, cheap.embed_dim) == (own.num_patches, own.embed_dim)
    assert cheap.film_channels == own.film_channels  # the same FiLM sites, now at stride 4
    assert cheap.config["stem"] == stem  # rebuilt from a checkpoint's config
    film = torch.randn(2, 2 * sum(cheap.film_channels))
    out = cheap(torch.rand(2, 3, 64, 64), film=film)
    out.sum().backward()
    assert out.shape == (2, 16, 16)
    assert all(p.grad is not None for p in cheap.model.conv1.parameters())


def test_deep_strided_stem_keeps_the_deep_stems_weights_at_a_quarter_of_the_pixels() -> None:
    kwargs = {"channels": [8, 8, 16, 16], "stem_width": 8}
    own = TimmEncoder("resnet10t", 64, feature_stage=3, model_kwargs=kwargs)
    cheap = TimmEncoder("resnet10t", 64, feature_stage=3, model_kwargs=kwargs, stem="deep_strided")
    shapes = {k: tuple(v.shape) for k, v in own.state_dict().items()}
    assert {k: tuple(v.shape) for k, v in cheap.state_dict().items()} == shapes
    sizes = {}
    for name, enc in (("own", own), ("cheap", cheap)):
        enc.model.conv1[-1].register_forward_hook(
            lambda m, i, o, n=name: sizes.update({n: o.shape})
        )
        enc(torch.rand(1, 3, 64, 64))
    assert sizes["own"][-2:] == (32, 32) and sizes["cheap"][-2:] == (16, 16)  # no max-pool after
    with pytest.raises(ValueError, match="deep_strided needs a deep stem"):
        TimmEncoder("resnet18", 64, feature_stage=3, stem="deep_strided")


def test_stem_needs_a_resnet_stem() -> None:
    with pytest.raises(ValueError, match="stem='tiny'"):
        TimmEncoder("resnet10t", 64, feature_stage=3, stem="tiny")
    with pytest.raises(ValueError, match="has none"):
        TimmEncoder("test_vit", 32, model_kwargs={"img_size": 32}, stem="strided")


def test_vit_encoder_drops_prefix_tokens() -> None:
    enc = TimmEncoder("test_vit", image_size=32, model_kwargs={"img_size": 32})
    assert enc.num_prefix_tokens >= 1
    assert enc(torch.rand(2, 3, 32, 32)).shape == (2, 4, enc.embed_dim)  # 2 x 2 patches of 16
    with pytest.raises(ValueError, match="token_grid=2 needs a CNN"):
        TimmEncoder("test_vit", image_size=32, token_grid=2, model_kwargs={"img_size": 32})


def test_encoder_loads_local_weights(tmp_path: Path) -> None:
    kwargs = {"channels": [8, 8, 16, 16]}
    torch.manual_seed(1)
    source = timm.create_model("resnet10t", pretrained=False, num_classes=5, **kwargs)
    save_file(source.state_dict(), str(tmp_path / "weights.safetensors"))
    enc = TimmEncoder(
        "resnet10t",
        image_size=32,
        model_kwargs=kwargs,
        pretrained_path=str(tmp_path / "weights.safetensors"),
    )
    for name, value in enc.model.state_dict().items():
        assert torch.equal(value, source.state_dict()[name]), name  # classifier head dropped
    assert enc.config["pretrained_path"] is None  # weights travel in the VLA checkpoint instead
    with pytest.raises(FileNotFoundError, match="is not a file"):
        TimmEncoder("resnet10t", pretrained_path=str(tmp_path / "nope.safetensors"))


def test_unknown_model_name_is_named() -> None:
    with pytest.raises(ValueError, match="not_a_model"):
        TimmEncoder("not_a_model")


@pytest.mark.parametrize("name", list(ADAPTERS))
def test_adapter_shapes_and_gradients(name: str) -> None:
    adapter = ADAPTERS[name](in_dim=12, out_dim=20, num_patches=9)
    x = torch.randn(3, 9, 12, requires_grad=True)
    y = adapter(x)
    assert y.shape == (3, adapter.num_tokens, 20)
    y.square().mean().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert all(p.grad is not None for p in adapter.parameters())
    assert adapter.config["_target_"].startswith("vla.adapters.")


def test_resamplers_give_a_fixed_number_of_tokens() -> None:
    assert ADAPTERS["perceiver"](in_dim=4, out_dim=8, num_patches=30).num_tokens == 5
    assert ADAPTERS["linear"](in_dim=4, out_dim=8, num_patches=30).num_tokens == 30


@pytest.mark.parametrize(
    ("build", "match"),
    [
        (lambda: Linear(in_dim=0, out_dim=4, num_patches=2), "in_dim=0"),
        (lambda: PerceiverResampler(4, 8, 2, num_latents=0), "num_latents=0"),
        (lambda: QFormer(4, 10, 2, num_heads=3), "divisible by num_heads=3"),
        (lambda: MLP(4, 8, 2, hidden_dim=-1), "hidden_dim=-1"),
    ],
)
def test_adapter_validation(build, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        build()


@pytest.mark.parametrize(
    ("name", "kwargs"),
    [
        ("resnet10t", {"feature_stage": 3, "model_kwargs": {"channels": [8, 8, 16, 16]}}),
        ("test_vit", {"model_kwargs": {"img_size": 32}}),
    ],
)
def test_film_conditioning_changes_features_and_starts_neutral(name: str, kwargs: dict) -> None:
    torch.manual_seed(0)
    enc = TimmEncoder(name, image_size=32, film=True, **kwargs).eval()
    plain = TimmEncoder(name, image_size=32, **kwargs).eval()
    plain.load_state_dict(enc.state_dict())
    assert enc.film_channels and all(c > 0 for c in enc.film_channels)
    x = torch.rand(2, 3, 32, 32)
    zero = torch.zeros(2, 2 * sum(enc.film_channels))
    assert torch.allclose(enc(x, zero), plain(x), atol=1e-6)  # gamma = beta = 0: identity
    other = torch.randn_like(zero)
    out = enc(x, other)
    assert not torch.allclose(out, plain(x), atol=1e-3)
    assert torch.allclose(enc(x[:1], other[:1]), out[:1], atol=1e-5)  # per image, not per batch
    with pytest.raises(ValueError, match="film=true"):
        enc(x)
    with pytest.raises(ValueError, match="expected"):
        enc(x, zero[:, :-1])
    with pytest.raises(ValueError, match="film=false"):
        plain(x, zero)


def test_film_stages_condition_only_the_stages_picked() -> None:
    kwargs = {"feature_stage": 3, "model_kwargs": {"channels": [8, 12, 16, 24]}}  # layer1..4
    every = TimmEncoder("resnet10t", image_size=32, film=True, **kwargs)
    late = TimmEncoder("resnet10t", image_size=32, film=True, film_stages=[3, 2], **kwargs).eval()
    assert len(every.film_channels) == 4  # the stem's output and the three stages after it
    assert late.film_channels == every.film_channels[2:] == (12, 16)  # in stage order
    assert late.config["film_stages"] == [3, 2]  # saved with the checkpoint's config
    x = torch.rand(2, 3, 32, 32)
    # the last stage alone: scaling its output by (1 + gamma) with gamma = 1 doubles the tokens
    film = torch.zeros(2, 2 * sum(late.film_channels))
    film[:, 2 * 12 : 2 * 12 + 16] = 1.0  # stage 3's gamma (after stage 2's gamma and beta)
    assert torch.allclose(late(x, film), 2 * late(x, torch.zeros_like(film)), atol=1e-5)
    for bad in ([], [4], [1, 1], [-1]):
        with pytest.raises(ValueError, match="film_stages=.* must be distinct stage indices"):
            TimmEncoder("resnet10t", image_size=32, film=True, film_stages=bad, **kwargs)
    with pytest.raises(ValueError, match="needs film=true"):
        TimmEncoder("resnet10t", image_size=32, film_stages=[3], **kwargs)


def test_spatial_softmax_reads_keypoint_positions() -> None:
    adapter = SpatialSoftmax(in_dim=4, out_dim=8, num_patches=16, num_keypoints=1, num_tokens=2)
    with torch.no_grad():
        adapter.maps.weight.zero_()
        adapter.maps.weight[0, 0] = 50.0  # keypoint 0 follows channel 0
        adapter.maps.bias.zero_()
    patches = torch.zeros(2, 16, 4)
    patches[0, 0, 0] = 1.0  # top-left cell
    patches[1, 15, 0] = 1.0  # bottom-right cell
    logits = adapter.maps(patches)
    points = logits.softmax(1).transpose(1, 2) @ adapter.grid  # (2, 1, 2)
    assert torch.allclose(points[0, 0], torch.tensor([-1.0, -1.0]), atol=1e-3)
    assert torch.allclose(points[1, 0], torch.tensor([1.0, 1.0]), atol=1e-3)
    assert adapter(patches).shape == (2, 2, 8)
    with pytest.raises(ValueError, match="square patch grid"):
        SpatialSoftmax(in_dim=4, out_dim=8, num_patches=12)


def test_conditioned_spatial_softmax_adds_each_words_evidence() -> None:
    torch.manual_seed(0)
    plain = SpatialSoftmax(in_dim=4, out_dim=8, num_patches=4, num_keypoints=1)
    torch.manual_seed(0)
    aimed = SpatialSoftmax(in_dim=4, out_dim=8, num_patches=4, num_keypoints=1, conditioned=True)
    # built last and zero-initialized: the same weights, and it starts as the plain adapter
    assert {k for k in aimed.state_dict() if not k.startswith("query.")} == set(plain.state_dict())
    aimed.load_state_dict({**aimed.state_dict(), **plain.state_dict()})
    patches = torch.randn(2, 4, 4)
    torch.testing.assert_close(aimed(patches, torch.randn(2, 8)), plain(patches))
    # channels: 0 red, 1 cube, 2 blue, 3 ball; patches: red cube, red ball, blue cube, blue ball
    scene = torch.tensor([[1.0, 1, 0, 0], [1, 0, 0, 1], [0, 1, 1, 0], [0, 0, 1, 1]])[None]
    words = torch.eye(8)[:4] * 3  # word w of the instruction points at channel w
    with torch.no_grad():
        aimed.maps.weight.zero_()
        aimed.maps.bias.zero_()
        aimed.query[0].weight.fill_(1.0)
        aimed.query[0].bias.zero_()
        aimed.query[1].weight.copy_(torch.eye(8)[:4] * 40)  # (C=4, D=8): feature w reads word w
        aimed.query[1].bias.zero_()

    def target(*ws: int) -> int:  # the patch the keypoint settles on for the words' mean
        condition = words[list(ws)].mean(0, keepdim=True)  # (1, D)
        query = aimed.query(condition).unflatten(1, (1, 4))  # (1, K, C)
        return int((scene @ query.transpose(1, 2)).argmax(1))

    # each pair goes to its object, whichever pairs training showed: linear in the words
    assert [target(0, 1), target(0, 3), target(2, 1), target(2, 3)] == [0, 1, 2, 3]
    assert aimed(scene, words[:1]).shape == (1, 4, 8)
    with pytest.raises(ValueError, match="needs condition"):
        aimed(scene)
    with pytest.raises(ValueError, match="conditioned=false"):
        plain(scene, words[:1])


def test_conditioned_adapter_reads_the_instruction_without_film(vla_factory, batch_factory):
    adapter = partial(SpatialSoftmax, num_keypoints=3, num_tokens=2, conditioned=True)
    model = vla_factory(adapter=adapter).eval()
    obs = model.obs
    assert obs.film is None and obs.conditioned
    batch = batch_factory(model, b=2)
    images, state = batch[keys.IMAGE], batch[keys.STATE]
    with torch.no_grad():
        obs.adapter.query[-1].weight.normal_()  # as after training
        first, second = torch.randn(2, 1, obs.width)
        tokens = obs(images[:1], state[:1], first)  # (1, N, D)
        assert not torch.allclose(tokens, obs(images[:1], state[:1], second))
        assert torch.isfinite(model(batch)["loss"])  # the prompt passes its pooled instruction
    with pytest.raises(ValueError, match="instruction-conditioned"):
        obs(images, state)
