from functools import partial

import pytest
import torch

from vla import keys
from vla.adapters import MLP, AttentionPool, Linear, PerceiverResampler, QFormer, SpatialSoftmax
from vla.freezing import FREEZABLE
from vla.prompt import PromptInputs

pytestmark = pytest.mark.usefixtures("single_thread")

ADAPTERS = {
    "linear": Linear,
    "mlp": MLP,
    "perceiver": partial(PerceiverResampler, num_latents=3, depth=1, num_heads=2),
    "qformer": partial(QFormer, num_queries=3, depth=1, num_heads=2),
    "attention_pool": partial(AttentionPool, num_queries=2, num_heads=2),
    "spatial_softmax": partial(SpatialSoftmax, num_keypoints=4, num_tokens=2),
}


@pytest.mark.parametrize("llm", ["llama", "gpt2"])
@pytest.mark.parametrize("adapter", list(ADAPTERS))
def test_every_adapter_with_two_lms(adapter, llm, vla_factory, batch_factory) -> None:
    model = vla_factory(llm=llm, adapter=ADAPTERS[adapter])
    batch = batch_factory(model)
    out = model(batch)
    assert out["loss"].ndim == 0 and torch.isfinite(out["loss"])
    out["loss"].backward()
    for part in ("vision", "adapter", "llm"):
        grads = [p.grad for p in model.parameter_groups()[part]]
        assert any(g is not None and g.abs().sum() > 0 for g in grads), part
    model.eval()
    actions = model.predict_actions(
        PromptInputs(batch[keys.IMAGE], batch[keys.INSTRUCTION], batch[keys.STATE])
    )
    assert actions.shape == (3, model.action_horizon, 2)
    at = model.action_tokenizer
    assert ((actions >= at.low) & (actions <= at.high)).all()


@pytest.mark.parametrize(
    ("decoding", "slots"),
    [("parallel", "token"), ("parallel", "step"), ("autoregressive", "token")],
)
def test_tiny_model_overfits_one_batch(decoding, slots, vla_factory, batch_factory) -> None:
    model = vla_factory(decoding=decoding, n_bins=16, action_slots=slots)
    batch = batch_factory(model, b=4)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    for _ in range(150):
        opt.zero_grad()
        out = model(batch)
        out["loss"].backward()
        opt.step()
        if out["action_accuracy"] == 1.0:
            break
    assert out["action_accuracy"] == 1.0, float(out["action_accuracy"])
    model.eval()
    pred = model.predict_action_bins(
        PromptInputs(batch[keys.IMAGE], batch[keys.INSTRUCTION], batch[keys.STATE])
    )
    target = model.action_tokenizer.encode(batch[keys.ACTION]).flatten(1)
    assert torch.equal(pred, target)  # greedy decoding reproduces the memorized chunk


@pytest.mark.parametrize("order", ["text_first", "vision_first"])
@pytest.mark.parametrize("llm", ["llama", "gpt2"])
def test_padding_does_not_change_a_sample(llm, order, vla_factory, batch_factory) -> None:
    model = vla_factory(llm=llm, decoding="autoregressive", prompt_order=order).eval()
    batch = batch_factory(model, b=3)
    batch[keys.INSTRUCTION] = ["a much longer instruction than the others", "go", ""]
    args = (batch[keys.IMAGE], batch[keys.INSTRUCTION], batch[keys.STATE])
    with torch.no_grad():
        bins = model.action_tokenizer.encode(batch[keys.ACTION]).flatten(1)
        together = model.action_logits(*model.prompt(PromptInputs(*args), 0), bins)
        for i in range(3):
            alone_args = (args[0][i : i + 1], args[1][i : i + 1], args[2][i : i + 1])
            alone = model.action_logits(
                *model.prompt(PromptInputs(*alone_args), 0), bins[i : i + 1]
            )
            torch.testing.assert_close(together[i : i + 1], alone, atol=1e-4, rtol=1e-4)
    assert torch.isfinite(together).all()


def test_cameras_frames_and_state_all_reach_the_output(vla_factory, batch_factory) -> None:
    model = vla_factory(num_cameras=2, obs_horizon=2).eval()
    assert model.obs.num_tokens == 2 * (2 * 4 + 1)  # T * (V * 4 patches + 1 state token)
    batch = batch_factory(model, b=2)
    args = (batch[keys.IMAGE], batch[keys.INSTRUCTION], batch[keys.STATE])

    def logits(images, state):
        with torch.no_grad():
            return model.action_logits(*model.prompt(PromptInputs(images, args[1], state), 0), None)

    base = logits(args[0], args[2])
    swapped = args[0].flip(2)  # exchange the two cameras: camera embeddings tell them apart
    assert not torch.allclose(base, logits(swapped, args[2]))
    assert not torch.allclose(base, logits(args[0].flip(1), args[2]))  # frame order matters
    assert not torch.allclose(base, logits(args[0], args[2] + 0.5))  # state is an input
    actions = model.predict_actions(PromptInputs(*args))
    assert actions.shape == (2, model.action_horizon, 2)


@pytest.mark.parametrize("pooling", ["mean", "attention", "context", "ngram"])
def test_film_conditions_the_image_tokens_on_the_instruction(
    pooling, vla_factory, batch_factory
) -> None:
    model = vla_factory(film=True, film_pooling=pooling)
    batch = batch_factory(model, b=3)
    batch[keys.INSTRUCTION] = ["touch the red cube", "go", ""]
    model(batch)["loss"].backward()
    film_grads = [p.grad for p in model.obs.film.parameters()]
    assert all(g is not None for g in film_grads) and film_grads[-1].abs().sum() > 0
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
    with torch.no_grad():
        torch.nn.init.normal_(model.obs.film[-1].weight)  # as after training: non-identity
        pool = model.obs.film_pool
        for name in ("score", "out"):  # the pooling's learned parts, as after training
            if hasattr(pool, name):
                torch.nn.init.normal_(getattr(pool, name).weight, std=0.1)
    model.eval()
    images, state = batch[keys.IMAGE][:1], batch[keys.STATE][:1]
    with torch.no_grad():
        red = model.prompt(PromptInputs(images, ["touch the red cube"], state), 0)[0][:, -6:]
        blue = model.prompt(PromptInputs(images, ["touch the blue cube"], state), 0)[0][:, -6:]
    assert not torch.allclose(red, blue)  # the observation tokens differ, not only the text
    # left-padding a shorter instruction leaves its conditioning (masked mean) unchanged
    args = (batch[keys.IMAGE], batch[keys.INSTRUCTION], batch[keys.STATE])
    with torch.no_grad():
        together = model.action_logits(*model.prompt(PromptInputs(*args), 0), None)
        alone = model.action_logits(
            *model.prompt(PromptInputs(args[0][1:2], ["go"], args[2][1:2]), 0), None
        )
    torch.testing.assert_close(together[1:2], alone, atol=1e-4, rtol=1e-4)


def test_action_mask_removes_padded_steps_from_the_loss(vla_factory, batch_factory) -> None:
    model = vla_factory(action_horizon=3)
    batch = batch_factory(model, b=2)
    batch[keys.ACTION_MASK] = torch.tensor([[True, True, False], [True, False, False]])
    loss = model(batch)["action_loss"]
    changed = dict(batch, **{keys.ACTION: batch[keys.ACTION].clone()})
    changed[keys.ACTION][0, 2] += 0.9  # only padded steps change
    changed[keys.ACTION][1, 1:] -= 0.9
    torch.testing.assert_close(model(changed)["action_loss"], loss)


def test_bin_smoothing_gives_lower_loss_to_near_misses(vla_factory, batch_factory) -> None:
    model = vla_factory(bin_smoothing=1.5, n_bins=32)
    out = model(batch_factory(model))
    assert torch.isfinite(out["loss"]) and out["loss"] > 0
    out["loss"].backward()


def test_text_answers_for_co_training(vla_factory, batch_factory) -> None:
    model = vla_factory()
    batch = batch_factory(model, b=3)
    batch[keys.QUESTION] = ["what colour is the cube?", "", "how many?"]
    batch[keys.ANSWER] = ["red", None, "two"]  # row 1 is an action-only sample
    out = model(batch)
    assert set(out) >= {"loss", "action_loss", "text_loss"}
    torch.testing.assert_close(out["loss"], out["action_loss"] + out["text_loss"])
    out["text_loss"].backward()
    emb = model.llm.model.get_input_embeddings().weight.grad
    assert emb is not None and emb.abs().sum() > 0
    qa_only = {k: v for k, v in batch.items() if k not in (keys.ACTION, keys.ACTION_MASK)}
    assert set(model(qa_only)) == {"loss", "text_loss"}
    model.eval()
    answers = model.generate_text(
        PromptInputs(batch[keys.IMAGE], batch[keys.QUESTION], batch[keys.STATE]), 5
    )
    assert len(answers) == 3 and all("<act_" not in a for a in answers)


def test_freezing_for_staged_training(vla_factory, batch_factory) -> None:
    model = vla_factory(freeze=["vision", "llm", "token_embeddings"])
    groups = model.parameter_groups()
    ids = [id(p) for ps in groups.values() for p in ps]
    assert len(ids) == len(set(ids)) == len(list(model.parameters()))  # exactly one group each
    model.train()
    assert not model.obs.vision.training  # frozen BatchNorm keeps its statistics
    model(batch_factory(model))["loss"].backward()
    for name, params in groups.items():
        trained = any(p.grad is not None for p in params)
        assert trained == (name == "adapter"), name
    model.set_frozen([])  # stage 2: everything
    assert all(p.requires_grad for p in model.parameters()) and model.obs.vision.training
    with pytest.raises(ValueError, match="unknown parts"):
        model.set_frozen(["vison"])
    assert set(FREEZABLE) == set(groups)


def test_bad_inputs_get_clear_errors(vla_factory, batch_factory) -> None:
    model = vla_factory(llm="gpt2").eval()
    b = batch_factory(model, b=2)
    img, ins, st = b[keys.IMAGE], b[keys.INSTRUCTION], b[keys.STATE]
    cases = [
        ((img.float() / 255, ins, st), "dtype torch.float32"),
        ((img[..., :16, :16], ins, st), r"expected \(B, T=1, V=1, 3, 32, 32\)"),
        ((img[:, :, :, :1], ins, st), "expected"),
        ((img, "touch", st), "list of 2 strings"),
        ((img, ins[:1], st), "list of 2 strings"),
        ((img, ins, None), "takes proprioception"),
        ((img, ins, st[:, :, :2]), r"expected \(B=2, T=1, S=3\)"),
        ((img, ["x" * 500, "go"], st), "context of 128"),
    ]
    for args, match in cases:
        with pytest.raises((ValueError, TypeError), match=match):
            model.predict_actions(PromptInputs(*args))
    bad = dict(b, **{keys.ACTION: torch.zeros(2, model.action_horizon, 5)})
    with pytest.raises(ValueError, match="expected \\(B, H=2, D=2\\)"):
        model(bad)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"decoding": "beam"}, "decoding='beam'"),
        ({"prompt_order": "audio_first"}, "prompt_order='audio_first'"),
        ({"action_horizon": 0}, "action_horizon=0"),
        ({"bin_smoothing": -1.0}, "bin_smoothing=-1.0"),
        ({"freeze": ["everything"]}, "unknown parts"),
        ({"action_slots": "chunk"}, "action_slots='chunk'"),
        ({"action_slots": "step", "decoding": "autoregressive"}, "needs decoding='parallel'"),
    ],
)
def test_bad_construction_is_named(kwargs, match, vla_factory) -> None:
    with pytest.raises(ValueError, match=match):
        vla_factory(**kwargs)


def test_state_dims_select_what_the_model_reads(vla_factory, batch_factory) -> None:
    model = vla_factory(state_dims=[0, 2]).eval()
    assert model.obs.state_dim == 3  # it is given the whole state, reads two dimensions
    batch = batch_factory(model, b=2)
    args = (batch[keys.IMAGE], batch[keys.INSTRUCTION])
    state = batch[keys.STATE]
    with torch.no_grad():
        base = model.action_logits(*model.prompt(PromptInputs(*args, state), 0), None)
        ignored = state.clone()
        ignored[..., 1] += 0.7  # a dimension outside state_dims changes nothing
        same = model.action_logits(*model.prompt(PromptInputs(*args, ignored), 0), None)
        read = state.clone()
        read[..., 2] += 0.7
        moved = model.action_logits(*model.prompt(PromptInputs(*args, read), 0), None)
    torch.testing.assert_close(base, same)
    assert not torch.allclose(base, moved)
    with pytest.raises(ValueError, match="state_dims"):
        vla_factory(state_dims=[0, 3])


def test_state_noise_acts_in_training_only_and_is_saved(vla_factory, batch_factory) -> None:
    model = vla_factory(state_noise=0.1)
    batch = batch_factory(model, b=4)
    images, state = batch[keys.IMAGE], batch[keys.STATE]
    with torch.no_grad():
        model.eval()
        torch.testing.assert_close(model.obs(images, state), model.obs(images, state))
        model.train()  # batch-norm statistics of the batch: compare noise on / off in train mode
        torch.manual_seed(0)
        noisy = model.obs(images, state)  # (B, N, D)
        torch.manual_seed(0)
        again = model.obs(images, state)
        model.obs.state_noise = 0.0
        clean = model.obs(images, state)
    state_token = -1  # the state's token closes the frame's group
    torch.testing.assert_close(noisy[:, :state_token], clean[:, :state_token])  # images untouched
    assert not torch.allclose(noisy[:, state_token], clean[:, state_token])
    torch.testing.assert_close(noisy, again)  # drawn from torch's generator: seeded runs repeat
    assert model.model_config()["state_noise"] == 0.1
    for bad in (-0.1, 1.0):
        with pytest.raises(ValueError, match=f"state_noise={bad} must be in"):
            vla_factory(state_noise=bad)


def test_state_dropout_hides_whole_states_in_training_only(vla_factory, batch_factory) -> None:
    """A hidden state's token is the same whatever the state (its time embedding alone), the
    image tokens are untouched, and evaluation always reads the state."""
    model = vla_factory(state_dropout=0.5)
    batch = batch_factory(model, b=64)
    images, state = batch[keys.IMAGE], batch[keys.STATE]
    other = state + 1.0  # another hand position for every sample
    state_token = -1  # the state's token closes the frame's group
    with torch.no_grad():
        model.eval()
        assert not torch.allclose(model.obs(images, state), model.obs(images, other))
        model.train()  # batch-norm statistics of the batch: compare on / off in train mode
        torch.manual_seed(0)
        dropped = model.obs(images, state)  # (B, N, D)
        torch.manual_seed(0)
        dropped_other = model.obs(images, other)  # the same samples hidden
        model.obs.state_dropout = 0.0
        clean = model.obs(images, state)
    torch.testing.assert_close(dropped[:, :state_token], clean[:, :state_token])
    hidden = (dropped[:, state_token] - clean[:, state_token]).abs().amax(-1) > 0  # (B,)
    assert 0 < hidden.sum() < len(hidden)  # some samples hidden, some not
    # a hidden state says nothing: the token is the same for another state
    torch.testing.assert_close(dropped[hidden, state_token], dropped_other[hidden, state_token])
    assert not torch.allclose(dropped[~hidden, state_token], dropped_other[~hidden, state_token])
    assert model.model_config()["state_dropout"] == 0.5
    for bad in (-0.1, 1.0):
        with pytest.raises(ValueError, match=f"state_dropout={bad} must be in"):
            vla_factory(state_dropout=bad)


def test_camera_dropout_hides_whole_cameras_in_training_only(vla_factory, batch_factory) -> None:
    """A hidden camera's tokens are only its embeddings, every sample keeps one camera, and
    evaluation sees every camera."""
    model = vla_factory(num_cameras=3, camera_dropout=0.9)
    obs = model.obs
    batch = batch_factory(model, b=16)
    images, state = batch[keys.IMAGE], batch[keys.STATE]
    t, v, q = obs.obs_horizon, obs.num_cameras, obs.adapter.num_tokens
    with torch.no_grad():
        model.eval()
        torch.testing.assert_close(obs(images, state), obs(images, state))
        model.train()  # batch-norm statistics of the batch in both
        torch.manual_seed(0)
        dropped = obs(images, state)  # (B, T * (V*Q + 1), D)
        obs.camera_dropout = 0.0
        clean = obs(images, state)
    per_frame = v * q + 1
    cams = lambda x: x.unflatten(1, (t, per_frame))[:, :, : v * q].unflatten(2, (v, q))  # noqa: E731
    d, c = cams(dropped), cams(clean)  # (B, T, V, Q, D)
    only_embeddings = (
        obs.token_embed
        + obs.camera_embed[None, None, :, None]
        + obs.time_embed[None, :, None, None]
    )  # (1, T, V, Q, D)
    hidden = torch.isclose(d, only_embeddings.expand_as(d)).flatten(3).all(-1).all(1)  # (B, V)
    kept = torch.isclose(d, c).flatten(3).all(-1).all(1)  # (B, V)
    assert (hidden ^ kept).all()  # each camera of each sample either hidden or untouched
    assert kept.any(dim=1).all() and hidden.sum() > 0  # p = 0.9: many hidden, never all
    states = dropped.unflatten(1, (t, per_frame))[:, :, -1]
    torch.testing.assert_close(states, clean.unflatten(1, (t, per_frame))[:, :, -1])
    assert model.model_config()["camera_dropout"] == 0.9
    for bad in (-0.1, 1.0):
        with pytest.raises(ValueError, match=f"camera_dropout={bad} must be in"):
            vla_factory(num_cameras=2, camera_dropout=bad)
    with pytest.raises(ValueError, match="needs >= 2 cameras"):
        vla_factory(num_cameras=1, camera_dropout=0.3)


def test_step_slots_shorten_the_lm_sequence(vla_factory, batch_factory) -> None:
    """One query slot per action step: the LM reads H slots instead of H * D, and each step's
    state is split into its D tokens' logits (the same bins, the same loss and decoding)."""
    per_token = vla_factory(action_horizon=3)
    per_step = vla_factory(action_horizon=3, action_slots="step")
    d = per_step.action_tokenizer.action_dim
    assert per_token.num_slots == 3 * d and per_step.num_slots == 3
    lengths = []
    for model in (per_token, per_step):
        seen: list[int] = []
        hook = model.llm.register_forward_hook(
            lambda m, args, out, seen=seen: seen.append(args[0].shape[1])
        )
        batch = batch_factory(model, b=2)
        assert torch.isfinite(model(batch)["loss"])
        hook.remove()
        lengths.append(seen[0])
        model.eval()
        inputs = PromptInputs(batch[keys.IMAGE], batch[keys.INSTRUCTION], batch[keys.STATE])
        with torch.no_grad():
            prefix, mask = model.prompt(inputs, model.num_slots)
            logits = model.action_logits(prefix, mask, None)
        assert logits.shape == (2, 3 * d, model.action_tokenizer.n_bins)
        assert torch.equal(model.predict_action_bins(inputs), logits.argmax(-1))
    assert lengths[0] - lengths[1] == 3 * (d - 1)
