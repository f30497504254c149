"""The hindsight goal loss: the action slots also predict where the sample's episode ended."""

import pytest
import torch

from vla import keys
from vla.checkpoint import load_checkpoint, save_checkpoint
from vla.prompt import PromptInputs

pytestmark = pytest.mark.usefixtures("single_thread")


def predict(model, batch):
    inputs = PromptInputs(batch[keys.IMAGE], batch[keys.INSTRUCTION], batch[keys.STATE])
    return model.predict_action_bins(inputs)


@pytest.mark.parametrize(("decoding", "slots"), [("parallel", "token"), ("parallel", "step")])
def test_goal_loss_joins_the_loss_with_its_weight(decoding, slots, vla_factory, batch_factory):
    model = vla_factory(decoding=decoding, action_slots=slots, goal_loss=0.5)
    batch = batch_factory(model, b=4)
    out = model(batch)
    assert out["goal_loss"] > 0
    torch.testing.assert_close(out["loss"], out["action_loss"] + 0.5 * out["goal_loss"])
    out["goal_loss"].backward()  # the goal reaches the words and pixels the actions read
    for part in (model.goal_head, model.llm, model.obs.vision, model.obs.state_proj):
        grads = [p.grad for p in part.parameters() if p.requires_grad]
        assert any(g is not None and g.abs().sum() > 0 for g in grads), part


def test_goal_target_is_the_normalized_state_dims(vla_factory, batch_factory):
    model = vla_factory(goal_loss=1.0, state_dims=[0, 2])  # state in [0, 1] -> [-1, 1]
    batch = batch_factory(model, b=2)
    goal = torch.tensor([[0.0, 0.3, 1.0], [0.5, 0.9, 0.25]])
    target = model.obs.normalize_state(goal)
    torch.testing.assert_close(target, torch.tensor([[-1.0, 1.0], [0.0, -0.5]]))
    hidden = torch.randn(2, model.num_slots, model.llm.hidden_size)
    expected = ((model.goal_head(hidden) - target) ** 2).mean()
    torch.testing.assert_close(model.goal_loss(hidden, {**batch, keys.GOAL: goal}), expected)


def test_a_relative_goal_target_is_what_is_still_to_go(vla_factory, batch_factory):
    model = vla_factory(goal_loss=1.0, goal_target="relative", state_dims=[0, 2])
    batch = batch_factory(model, b=2)
    goal = torch.tensor([[0.0, 0.3, 1.0], [0.5, 0.9, 0.25]])
    batch[keys.STATE] = torch.tensor([[[0.5, 0.0, 0.5]], [[0.5, 0.2, 1.0]]])  # (B, T=1, S)
    target = torch.tensor([[-1.0, 1.0], [0.0, -1.5]])  # normalized final minus normalized latest
    hidden = torch.randn(2, model.num_slots, model.llm.hidden_size)
    expected = ((model.goal_head(hidden) - target) ** 2).mean()
    torch.testing.assert_close(model.goal_loss(hidden, {**batch, keys.GOAL: goal}), expected)


def test_both_targets_side_by_side(vla_factory, batch_factory):
    model = vla_factory(goal_loss=1.0, goal_target="both", state_dims=[0, 2])
    assert model.goal_head.net[-1].out_features == 4  # absolute and relative, 2 dims each
    batch = batch_factory(model, b=2)
    goal = torch.tensor([[0.0, 0.3, 1.0], [0.5, 0.9, 0.25]])
    batch[keys.STATE] = torch.tensor([[[0.5, 0.0, 0.5]], [[0.5, 0.2, 1.0]]])  # (B, T=1, S)
    target = torch.tensor([[-1.0, 1.0, -1.0, 1.0], [0.0, -0.5, 0.0, -1.5]])
    hidden = torch.randn(2, model.num_slots, model.llm.hidden_size)
    expected = ((model.goal_head(hidden) - target) ** 2).mean()
    torch.testing.assert_close(model.goal_loss(hidden, {**batch, keys.GOAL: goal}), expected)


@pytest.mark.parametrize(
    ("goal_target", "goal_query"),
    [("absolute", False), ("relative", False), ("both", False), ("relative", True)],
)
def test_goal_head_learns_where_episodes_end(goal_target, goal_query, vla_factory, batch_factory):
    """A different goal per sample: the head fits them from the samples' inputs (the loss falls
    well below the goals' variance, where a head that ignored its input would stay); read out,
    the prediction is in the state's units whatever the head's target, and whichever slot the
    head reads."""
    model = vla_factory(goal_loss=1.0, goal_target=goal_target, goal_query=goal_query)
    batch = batch_factory(model, b=8, seed=1)
    batch[keys.GOAL] = torch.linspace(0, 1, 8)[:, None].expand(-1, 3)  # (B, S)
    target = model.obs.normalize_state(batch[keys.GOAL])
    to_go = target - model.obs.normalize_state(batch[keys.STATE][:, -1])
    target = {"absolute": target, "relative": to_go, "both": torch.cat([target, to_go], -1)}[
        goal_target
    ]
    floor = ((target - target.mean(0)) ** 2).mean()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(150):
        opt.zero_grad()
        loss = model(batch)["goal_loss"]
        loss.backward()
        opt.step()
    assert loss < 0.2 * floor
    model.eval()  # and the policy says where it expects to end, in the state's units
    inputs = PromptInputs(batch[keys.IMAGE], batch[keys.INSTRUCTION], batch[keys.STATE])
    predicted = model.predict_goal(inputs)
    assert predicted.shape == (8, 3)
    assert (predicted - batch[keys.GOAL]).abs().mean() < 0.5 * (batch[keys.GOAL] - 0.5).abs().mean()


def test_off_by_default_and_actions_unchanged_by_the_head(vla_factory, batch_factory):
    plain = vla_factory().eval()
    assert plain.goal_head is None
    batch = batch_factory(plain, b=3)
    assert "goal_loss" not in plain(batch)  # a batch with goals trains a model without the head
    with pytest.raises(ValueError, match="no goal head"):
        plain.predict_goal(
            PromptInputs(batch[keys.IMAGE], batch[keys.INSTRUCTION], batch[keys.STATE])
        )
    with_head = vla_factory(goal_loss=1.0).eval()  # same seed: the head is built last
    assert torch.equal(predict(plain, batch), predict(with_head, batch))


@pytest.mark.parametrize("goal_query", [False, True])
def test_goal_head_survives_save_and_load(goal_query, tmp_path, vla_factory, batch_factory):
    model = vla_factory(goal_loss=0.3, goal_target="relative", goal_query=goal_query)
    batch = batch_factory(model, b=3)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    for _ in range(2):
        opt.zero_grad()
        model(batch)["loss"].backward()
        opt.step()
    model.eval()
    loaded = load_checkpoint(save_checkpoint(model, tmp_path / "ckpt")).eval()
    assert (loaded.goal_weight, loaded.goal_target) == (0.3, "relative")
    assert (loaded.goal_query is not None) == goal_query
    with torch.no_grad():
        torch.testing.assert_close(loaded(batch)["goal_loss"], model(batch)["goal_loss"])
    assert torch.equal(predict(loaded, batch), predict(model, batch))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"goal_loss": -0.1}, "goal_loss=-0.1 must be a finite weight"),
        ({"goal_loss": float("nan")}, "goal_loss=nan must be a finite weight"),
        ({"goal_loss": float("inf")}, "goal_loss=inf must be a finite weight"),
        ({"goal_loss": 1.0, "state": False}, "reads no state"),
        ({"goal_loss": 1.0, "goal_target": "sideways"}, "goal_target='sideways' is not one of"),
    ],
)
def test_bad_goal_settings_are_clear_errors(kwargs, message, vla_factory):
    with pytest.raises(ValueError, match=message):
        vla_factory(**kwargs)


def test_a_batch_without_goals_is_a_clear_error(vla_factory, batch_factory):
    model = vla_factory(goal_loss=1.0)
    batch = batch_factory(model)
    del batch[keys.GOAL]
    with pytest.raises(ValueError, match="needs the batch's 'goal'"):
        model(batch)


def test_act_on_goal_starts_as_the_plain_policy_and_reads_the_goal(vla_factory, batch_factory):
    """A fresh model acting on its goal acts as one that does not (the conditioning starts at
    zero); in training its actions read the demonstration's displacement to the end, so two
    batches that differ only in their goals get different action losses once it has learned."""
    plain = vla_factory(goal_loss=1.0, goal_target="relative").eval()
    acting = vla_factory(goal_loss=1.0, goal_target="relative", act_on_goal=True).eval()
    batch = batch_factory(plain, b=3)
    assert torch.equal(predict(plain, batch), predict(acting, batch))
    acting.train()
    acting.goal_conditioning.noise = 0.0
    torch.nn.init.normal_(acting.goal_conditioning.net[-1].weight)
    far = {**batch, keys.GOAL: batch[keys.GOAL] + 0.5}
    assert not torch.allclose(acting(batch)["action_loss"], acting(far)["action_loss"])
    acting.eval()  # acting: the head's prediction, not the batch's goal, moves the actions
    before = predict(acting, batch)
    assert torch.equal(before, predict(acting, far))
    with torch.no_grad():  # another predicted goal, other actions
        acting.goal_head.net[-1].bias.add_(3.0)
    assert not torch.equal(before, predict(acting, batch))


def test_act_on_goal_survives_save_and_load(tmp_path, vla_factory, batch_factory):
    model = vla_factory(goal_loss=1.0, goal_target="both", act_on_goal=True, goal_input_noise=0.2)
    torch.nn.init.normal_(model.goal_conditioning.net[-1].weight)
    batch = batch_factory(model, b=3)
    model.eval()
    loaded = load_checkpoint(save_checkpoint(model, tmp_path / "ckpt")).eval()
    assert loaded.goal_conditioning.noise == 0.2
    assert torch.equal(predict(loaded, batch), predict(model, batch))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"act_on_goal": True}, "goal_loss=0.0 builds no head"),
        ({"goal_loss": 1.0, "act_on_goal": True, "goal_input_noise": -1.0}, "finite std >= 0"),
        (
            {"goal_loss": 1.0, "act_on_goal": True, "decoding": "autoregressive"},
            "needs decoding='parallel'",
        ),
        ({"goal_query": True}, "goal_loss=0.0 builds no head"),
        (
            {"goal_loss": 1.0, "goal_query": True, "decoding": "autoregressive"},
            "goal_query=true needs decoding='parallel'",
        ),
    ],
)
def test_bad_act_on_goal_settings_are_clear_errors(kwargs, message, vla_factory):
    with pytest.raises(ValueError, match=message):
        vla_factory(**kwargs)


@pytest.mark.parametrize("slots", ["token", "step"])
def test_goal_query_is_a_slot_of_its_own(slots, vla_factory, batch_factory):
    """With ``goal_query`` the head reads one query slot before the action slots: the goal loss
    depends on that slot's state alone, and the actions are still read from the others."""
    plain = vla_factory(goal_loss=1.0, action_slots=slots)
    model = vla_factory(goal_loss=1.0, action_slots=slots, goal_query=True)
    assert model.num_slots == plain.num_slots + 1
    batch = batch_factory(model, b=3)
    hidden = torch.randn(3, model.num_slots, model.llm.hidden_size)
    actions, goal_states = model.split_slots(hidden)
    assert actions.shape[1] == plain.num_slots and goal_states.shape[1] == 1
    moved = hidden.clone()
    moved[:, 1:] += 1.0  # the action slots' states change, the goal query's does not
    loss = model.goal_loss(model.split_slots(hidden)[1], batch)
    assert torch.equal(loss, model.goal_loss(model.split_slots(moved)[1], batch))
    out = model(batch)
    out["goal_loss"].backward()
    assert model.goal_query.grad is not None and model.goal_query.grad.abs().sum() > 0
    grad = model.action_queries.grad  # causal: no action slot comes before the goal query
    assert grad is None or not grad.any()
    d = model.action_tokenizer.action_dim
    assert predict(model.eval(), batch).shape == (3, model.action_horizon * d)
