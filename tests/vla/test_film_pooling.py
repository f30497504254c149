"""How the instruction's tokens become the FiLM conditioning vector (``model.film_pooling``):
every learned pooling starts as the mean; what each can tell that the mean cannot."""

import pytest
import torch

pytestmark = pytest.mark.usefixtures("single_thread")


@pytest.mark.parametrize(
    "pooling,learns", [("attention", "score"), ("context", "out"), ("ngram", "out")]
)
def test_film_poolings_start_as_the_mean(pooling, learns, vla_factory):
    mean = vla_factory(film=True).obs
    pool = vla_factory(film=True, film_pooling=pooling).obs
    assert mean.film_pool is None  # the default builds nothing new: same initial weights
    assert {k for k in pool.state_dict() if not k.startswith("film_pool.")} == set(
        mean.state_dict()
    )
    torch.manual_seed(0)
    text = torch.randn(3, 5, 32, requires_grad=True)  # (B, L, D)
    mask = torch.tensor([[0, 0, 1, 1, 1], [1, 1, 1, 1, 1], [0, 0, 0, 0, 0]])
    pooled = pool.film_condition(text, mask)  # (B, D)
    torch.testing.assert_close(pooled, mean.film_condition(text, mask))
    assert torch.equal(pooled[2], torch.zeros(32))  # an empty instruction conditions nothing
    pooled.sum().backward()
    # it learns from the first step
    assert getattr(pool.film_pool, learns).weight.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="film_pooling='max' must be one of"):
        vla_factory(film=True, film_pooling="max")


def test_attention_film_pooling_learns_to_weigh_words(vla_factory):
    attention = vla_factory(film=True, film_pooling="attention").obs
    with torch.no_grad():
        attention.film_pool.score.weight.zero_()
        attention.film_pool.score.weight[:, 0] = 50.0  # every head looks for feature 0
        text = torch.zeros(1, 3, 32)
        text[0, 1, 0] = 1.0  # the middle word carries it
        text[0, 1, 1] = 3.0
        picked = attention.film_condition(text, torch.ones(1, 3, dtype=torch.long))
    torch.testing.assert_close(picked[0, :2], torch.tensor([1.0, 3.0]), atol=1e-4, rtol=0)


@pytest.mark.parametrize("pooling", ["context", "ngram"])
def test_context_and_ngram_film_poolings_can_tell_roles_apart(pooling, vla_factory):
    mean = vla_factory(film=True).obs
    context = vla_factory(film=True, film_pooling=pooling).obs
    torch.manual_seed(0)
    with torch.no_grad():
        torch.nn.init.normal_(context.film_pool.out.weight, std=0.1)  # as after training
        red, cube, on, blue, pad = torch.randn(5, 32)
        first = torch.stack([red, cube, on, blue, pad])[None]  # "red cube on blue pad"
        second = torch.stack([blue, cube, on, red, pad])[None]  # "blue cube on red pad"
        ones = torch.ones(1, 5, dtype=torch.long)
        # the mean is a bag of words: it cannot tell the two apart; the context pooling can
        torch.testing.assert_close(
            mean.film_condition(first, ones), mean.film_condition(second, ones)
        )
        assert not torch.allclose(
            context.film_condition(first, ones), context.film_condition(second, ones)
        )
        # left padding does not move a word's position
        padded = torch.cat([torch.randn(1, 2, 32), first], 1)
        torch.testing.assert_close(
            context.film_condition(padded, torch.tensor([[0, 0, 1, 1, 1, 1, 1]])),
            context.film_condition(first, ones),
        )
        if pooling != "context":
            return
        with pytest.raises(ValueError, match="longer than film_pooling=context"):
            long = torch.randn(1, context.film_pool.max_tokens + 1, 32)
            context.film_condition(long, torch.ones(1, long.shape[1], dtype=torch.long))


def test_linear_film_head_adds_each_words_conditioning(vla_factory):
    mlp = vla_factory(film=True).obs
    linear = vla_factory(film=True, film_head="linear").obs
    # the default keeps the MLP (old checkpoints' keys); linear drops its hidden layer
    assert [type(m).__name__ for m in mlp.film] == ["LayerNorm", "Linear", "GELU", "Linear"]
    assert [type(m).__name__ for m in linear.film] == ["LayerNorm", "Linear"]
    torch.manual_seed(0)
    words = torch.randn(4, 32)  # red, blue, cube, ball
    with torch.no_grad():
        for head in (mlp.film, linear.film):
            assert not head(words).any()  # zero-initialized: starts unconditioned
            torch.nn.init.normal_(head[-1].weight, std=0.1)  # as after training
            head[0].weight.normal_()  # the LayerNorm's own scale and shift too
            head[0].bias.normal_()

        def film(head, colour, shape):  # the FiLM of the two-word instruction "<colour> <shape>"
            pair = torch.stack([words[colour], words[shape]])[None]  # (1, 2, D)
            pooled = mlp.film_condition(pair, torch.ones(1, 2, dtype=torch.long))  # (1, D)
            # the LayerNorm divides by one scale per instruction: multiply it back, and take
            # away what a constant input gives (the head's offset)
            scale = (pooled.var(-1, unbiased=False, keepdim=True) + head[0].eps).sqrt()
            return scale * (head(pooled) - head(torch.ones(1, 32)))

        # linear: "red cube" - "red ball" == "blue cube" - "blue ball": a pair never seen
        # conditions as its words do; the MLP's hidden layer mixes the words
        for head, additive in ((linear.film, True), (mlp.film, False)):
            lhs = film(head, 0, 2) - film(head, 0, 3)
            rhs = film(head, 1, 2) - film(head, 1, 3)
            assert torch.allclose(lhs, rhs, atol=1e-5) is additive
    with pytest.raises(ValueError, match="film_head='deep' must be one of"):
        vla_factory(film=True, film_head="deep")


def test_product_film_head_multiplies_each_words_gains(vla_factory, batch_factory):
    model = vla_factory(film=True, film_head="product")
    obs = model.obs
    assert [type(m).__name__ for m in obs.film] == ["Linear"]
    assert type(obs.film_pool).__name__ == "WordSum"
    torch.manual_seed(0)
    words = torch.randn(4, 32)  # red, blue, cube, ball
    with torch.no_grad():
        assert not obs.film(obs.film_condition(words[None], torch.ones(1, 4))).any()  # starts off
        torch.nn.init.normal_(obs.film[-1].weight, std=0.1)  # as after training

        def film(*ws, pad=0):  # the FiLM vector of the words, left-padded with ``pad`` tokens
            text = torch.cat([torch.randn(pad, 32), words[list(ws)]])[None]  # (1, L, D)
            mask = torch.tensor([[0] * pad + [1] * len(ws)])
            return obs.film(obs.film_condition(text, mask))  # (1, F)

        # log-gains and shifts add up word by word: a pair never seen conditions as its words do
        torch.testing.assert_close(film(0, 2) - film(0, 3), film(1, 2) - film(1, 3))
        torch.testing.assert_close(film(0, 2) - film(0), film(1, 2) - film(1))
        torch.testing.assert_close(film(0, 2, pad=3), film(0, 2))  # padding adds nothing
        # a word that closes a channel (a very negative log-gain) closes it whatever comes with it
        obs.film[-1].bias[0] = -100.0  # the first site's channel 0: a log-gain far below zero
        batch = batch_factory(model, b=2)
        patches = []
        site = obs.vision.model.act1  # the first FiLM site (its hooks run in order: FiLM first)
        site.register_forward_hook(lambda m, i, o: patches.append(o.detach()))
        model(batch)
    # gamma = e^-100 - 1 = -1: the channel holds its shift alone, nothing of the image
    channel = patches[0][:, 0]  # (B, h, w)
    assert torch.equal(channel, channel[:, :1, :1].expand_as(channel))
    with pytest.raises(ValueError, match="film_pooling='attention' must stay mean"):
        vla_factory(film=True, film_head="product", film_pooling="attention")


def test_film_cameras_leave_the_others_instruction_blind(vla_factory, batch_factory):
    model = vla_factory(film=True, num_cameras=2, film_cameras=[1]).eval()  # BatchNorm: per image
    assert "obs.film_cameras" not in model.state_dict()  # rebuilt from the config: old
    # checkpoints load unchanged
    obs = model.obs
    with torch.no_grad():
        torch.nn.init.normal_(obs.film[-1].weight, std=0.5)  # as after training
    torch.manual_seed(0)
    images = torch.randint(0, 256, (1, 1, 2, 3, 32, 32), dtype=torch.uint8)
    images[:, :, 1] = images[:, :, 0]  # one view twice: conditioned (1) and blind (0)
    state = torch.zeros(1, 1, obs.state_dim)
    q = obs.adapter.num_tokens
    tokens = {}
    for name in ("red", "blue"):
        condition = torch.randn(1, 32)
        with torch.no_grad():
            tokens[name] = obs(images, state, condition)[0, : 2 * q]  # (2Q, D)
    blind, conditioned = slice(0, q), slice(q, 2 * q)
    torch.testing.assert_close(tokens["red"][blind], tokens["blue"][blind])
    assert not torch.allclose(tokens["red"][conditioned], tokens["blue"][conditioned])
    for bad, match in (([2], "distinct camera indices in \\[0, 2\\)"), ([0, 0], "distinct")):
        with pytest.raises(ValueError, match=match):
            vla_factory(film=True, num_cameras=2, film_cameras=bad)
    with pytest.raises(ValueError, match="needs an instruction-conditioned"):
        vla_factory(num_cameras=2, film_cameras=[0])
