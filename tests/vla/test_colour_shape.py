"""The colour / shape encoder: a colour-blind shape stream, a shape-blind colour stream."""

import math
from functools import partial
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from torch.nn import functional as F

from vla.adapters import SpatialSoftmax
from vla.checkpoint import load_checkpoint, save_checkpoint
from vla.training.build import vision_image_size
from vla.vision import ColourShapeEncoder, TimmEncoder
from vla.vision.colour_shape import colour_jitter, hue_rotations

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def shape_encoder(size: int = 32) -> TimmEncoder:
    """A narrow ResNet read at stride 8: 32 px -> 4 x 4 patches of width 16."""
    return TimmEncoder(
        "resnet10t",
        image_size=size,
        feature_stage=2,
        model_kwargs={"channels": [8, 16, 16, 16], "stem_width": 8},
    )


def test_hue_rotation_keeps_greys_and_turns_the_primaries_into_each_other() -> None:
    rot = hue_rotations(torch.tensor([0.0, 2 * math.pi / 3, 1.0]))  # (3, 3, 3)
    torch.testing.assert_close(rot[0], torch.eye(3))
    grey = torch.tensor([0.4, 0.4, 0.4])
    for r in rot:
        torch.testing.assert_close(r @ grey, grey)  # greys (and white) stay
        torch.testing.assert_close(r @ r.T, torch.eye(3), atol=1e-6, rtol=0)  # a rotation
    # a third of a turn: red -> green, green -> blue, blue -> red
    turn = torch.tensor([[0.0, 0, 1], [1, 0, 0], [0, 1, 0]])  # column c: where channel c goes
    torch.testing.assert_close(rot[1], turn, atol=1e-6, rtol=0)


def test_colour_jitter_changes_colours_not_greys() -> None:
    torch.manual_seed(0)
    images = torch.full((64, 3, 4, 4), 0.5)
    images[:, :, 0, 0] = torch.tensor([0.86, 0.12, 0.12])  # one red pixel per image
    out = colour_jitter(images, saturation=(1.0, 1.0), brightness=(1.0, 1.0))
    assert out.shape == images.shape and out.dtype == images.dtype
    torch.testing.assert_close(out[:, :, 1:], images[:, :, 1:])  # the grey table stays
    hues = out[:, :, 0, 0].argmax(1)  # the red pixel's strongest channel after the rotation
    assert set(hues.tolist()) == {0, 1, 2}  # every primary turns up in one batch
    grey = colour_jitter(images, saturation=(0.0, 0.0), brightness=(1.0, 1.0))
    assert torch.allclose(grey.std(1), torch.zeros(()), atol=1e-6)  # saturation 0: greys only
    brighter = colour_jitter(images, saturation=(1.0, 1.0), brightness=(1.2, 1.2))
    torch.testing.assert_close(brighter[:, :, 1:], images[:, :, 1:] * 1.2)


def test_tokens_are_shape_features_beside_a_shape_blind_colour_summary() -> None:
    torch.manual_seed(0)
    enc = ColourShapeEncoder(shape_encoder(), colour_channels=5, colour_hidden=7).eval()
    assert (enc.image_size, enc.num_patches, enc.embed_dim) == (32, 16, 16 + 5)
    assert enc.film_channels == ()
    images = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        tokens = enc(images)  # (2, 16, 21)
        assert tokens.shape == (2, 16, 21)
        torch.testing.assert_close(tokens[..., :16], enc.shape(images))  # eval: the plain image
        # the pixels of each 8 x 8 patch shuffled: the same colours, no shape left
        cells = images.unfold(2, 8, 8).unfold(3, 8, 8).flatten(-2)  # (2, 3, 4, 4, 64)
        mixed = cells[..., torch.randperm(64)].unflatten(-1, (8, 8))  # (2, 3, 4, 4, 8, 8)
        mixed = mixed.permute(0, 1, 2, 4, 3, 5).reshape(2, 3, 32, 32)
        torch.testing.assert_close(enc(mixed)[..., 16:], tokens[..., 16:])
        assert not torch.allclose(enc(mixed)[..., :16], tokens[..., :16])
        # patch order: colouring one patch changes that patch's colour token alone
        painted = images.clone()
        painted[:, :, 8:16, 0:8] = torch.tensor([0.0, 0.0, 1.0])[:, None, None]  # row 1, col 0
        changed = (enc(painted)[..., 16:] - tokens[..., 16:]).abs().sum((0, 2)) > 1e-6  # (16,)
        assert changed.nonzero().flatten().tolist() == [4]


@pytest.mark.parametrize("size", [32, 34])  # whole 8 x 8 blocks, and a grid that does not divide
def test_colour_tokens_are_the_per_pixel_mlp_averaged_over_each_patch(size) -> None:
    torch.manual_seed(0)
    enc = ColourShapeEncoder(shape_encoder(), colour_channels=5, colour_hidden=7)
    images = torch.rand(2, 3, size, size)
    per_pixel = enc.colour(2 * images - 1)  # (2, 5, H, W): the MLP on every pixel
    want = F.adaptive_avg_pool2d(per_pixel, 4).flatten(2).transpose(1, 2)  # (2, 16, 5)
    torch.testing.assert_close(enc.colour_tokens(images), want)


def test_training_jitters_the_shape_stream_only() -> None:
    torch.manual_seed(0)
    enc = ColourShapeEncoder(shape_encoder(), colour_channels=4).train()
    images = torch.rand(3, 3, 32, 32)
    torch.manual_seed(1)
    first = enc(images)
    torch.manual_seed(2)
    second = enc(images)
    torch.testing.assert_close(first[..., 16:], second[..., 16:])  # colours read as they are
    assert not torch.allclose(first[..., :16], second[..., :16])  # the shapes' copy recoloured
    first.sum().backward()
    assert all(p.grad is not None for p in enc.parameters())
    plain = ColourShapeEncoder(shape_encoder(), colour_channels=4, jitter=False).train()
    torch.manual_seed(1)
    a = plain(images)
    torch.manual_seed(2)
    torch.testing.assert_close(a, plain(images))


def test_a_vla_with_it_trains_saves_and_loads(vla_factory, batch_factory, tmp_path: Path):
    adapter = partial(SpatialSoftmax, num_keypoints=3, num_tokens=2, conditioned=True)
    model = vla_factory(
        adapter=adapter, vision=lambda: ColourShapeEncoder(shape_encoder(), colour_channels=4)
    )
    batch = batch_factory(model, b=2)
    loss = model(batch)["loss"]
    loss.backward()
    assert torch.isfinite(loss)
    assert model.obs.vision.colour[0].weight.grad is not None
    model.eval()
    path = save_checkpoint(model, tmp_path / "ckpt")
    loaded = load_checkpoint(path).eval()
    assert isinstance(loaded.obs.vision, ColourShapeEncoder)
    assert loaded.obs.vision.config == model.obs.vision.config
    with torch.no_grad():
        torch.testing.assert_close(loaded(batch)["loss"], model(batch)["loss"])


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"saturation": (0.5, 0.2)}, "saturation=.* must be a range"),
        ({"brightness": (0.5, 2.5)}, "brightness=.* must be a range"),
        ({"colour_channels": 0}, "colour_channels=0 .* must be >= 1"),
    ],
)
def test_bad_settings_are_named(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        ColourShapeEncoder(shape_encoder(), **kwargs)


def test_the_patch_grid_must_be_square() -> None:
    pooled = TimmEncoder(
        "resnet10t",
        image_size=32,
        feature_stage=2,
        model_kwargs={"channels": [8, 16, 16, 16], "stem_width": 8},
    )
    pooled.num_patches = 12  # as a non-square token grid would give
    with pytest.raises(ValueError, match="must be square"):
        ColourShapeEncoder(pooled)


def test_the_image_size_is_found_in_the_wrapped_encoder() -> None:
    with initialize_config_dir(config_dir=str(CONFIGS), version_base=None):
        wrapped = compose("train", ["experiment=ablations/quickstart_colour_shape"]).model.vision
        plain = compose("train", ["experiment=quickstart"]).model.vision
    assert vision_image_size(wrapped) == ("model.vision.shape.image_size", 64)
    assert vision_image_size(plain) == ("model.vision.image_size", 64)
