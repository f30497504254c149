"""Spoken instructions through the VLA: audio tokens in the prompt, by config (text/audio/both)."""

from functools import partial

import pytest
import torch

from vla import keys
from vla.adapters import AttentionPool
from vla.audio import AudioEncoder
from vla.checkpoint import load_checkpoint, save_checkpoint
from vla.prompt import PromptInputs
from vla.spoken_instruction import transcript_alignment_loss

pytestmark = pytest.mark.usefixtures("single_thread")
RATE = 16000


def speech_parts():
    encoder = AudioEncoder(sample_rate=RATE, max_seconds=1.0, n_mels=16, width=16, depth=1, heads=2)
    return {"audio_encoder": encoder, "audio_adapter": partial(AttentionPool, num_queries=2,
                                                                num_heads=2)}  # fmt: skip


def with_audio(batch, seed=0, lengths=(16000, 9000, 5000)):
    g = torch.Generator().manual_seed(seed)
    b = len(batch[keys.INSTRUCTION])
    audio = torch.randn(b, max(lengths), generator=g) * 0.1  # (B, N)
    for row, n in enumerate(lengths[:b]):
        audio[row, n:] = 0  # zero padding past each clip, as the collate does
    return {**batch, keys.AUDIO: audio, keys.AUDIO_LENGTH: torch.tensor(lengths[:b])}


@pytest.mark.parametrize("instruction", ["audio", "both"])
def test_speech_model_trains_and_round_trips(instruction, vla_factory, batch_factory, tmp_path):
    model = vla_factory(instruction=instruction, **speech_parts())
    batch = with_audio(batch_factory(model))
    out = model(batch)
    out["loss"].backward()
    grads = [p.grad for p in model.speech.parameters()]
    assert any(g is not None and g.abs().sum() > 0 for g in grads)  # speech reaches the loss
    model.eval()
    args = (batch[keys.IMAGE], batch[keys.INSTRUCTION], batch[keys.STATE])
    spoken = {"audio": batch[keys.AUDIO], "audio_length": batch[keys.AUDIO_LENGTH]}
    before = model.predict_action_bins(PromptInputs(*args, **spoken))
    save_checkpoint(model, tmp_path / "ckpt")
    again = load_checkpoint(tmp_path / "ckpt")
    assert again.instruction == instruction and again.speech.sample_rate == RATE
    assert torch.equal(again.predict_action_bins(PromptInputs(*args, **spoken)), before)


def test_audio_only_model_never_reads_the_text(vla_factory, batch_factory):
    model = vla_factory(instruction="audio", **speech_parts()).eval()
    batch = with_audio(batch_factory(model))
    spoken = {"audio": batch[keys.AUDIO], "audio_length": batch[keys.AUDIO_LENGTH]}
    a = model.predict_action_bins(
        PromptInputs(batch[keys.IMAGE], batch[keys.INSTRUCTION], batch[keys.STATE], **spoken)
    )
    b = model.predict_action_bins(
        PromptInputs(batch[keys.IMAGE], ["something else"] * 3, batch[keys.STATE], **spoken)
    )
    assert torch.equal(a, b)
    # ... but it does hear: other speech, other scores
    logits = []
    for seed in (0, 1):
        x = with_audio(batch, seed=seed)
        prefix, mask = model.prompt(
            PromptInputs(
                x[keys.IMAGE], [""] * 3, x[keys.STATE], x[keys.AUDIO], x[keys.AUDIO_LENGTH]
            ),
            4,
        )
        logits.append(model.action_logits(prefix, mask, None))
    assert not torch.allclose(logits[0], logits[1])


def test_a_clip_gives_the_same_actions_alone_and_in_a_padded_batch(vla_factory, batch_factory):
    model = vla_factory(instruction="audio", **speech_parts()).eval()
    batch = with_audio(batch_factory(model))
    full = model.predict_actions(
        PromptInputs(
            batch[keys.IMAGE],
            batch[keys.INSTRUCTION],
            batch[keys.STATE],
            audio=batch[keys.AUDIO],
            audio_length=batch[keys.AUDIO_LENGTH],
        )
    )
    n = int(batch[keys.AUDIO_LENGTH][2])
    alone = model.predict_actions(
        PromptInputs(
            batch[keys.IMAGE][2:],
            batch[keys.INSTRUCTION][2:],
            batch[keys.STATE][2:],
            audio=batch[keys.AUDIO][2:, :n],
            audio_length=torch.tensor([n]),
        )
    )
    torch.testing.assert_close(full[2:], alone, atol=1e-5, rtol=0)


def test_speech_configuration_errors(vla_factory, batch_factory):
    with pytest.raises(ValueError, match="model/audio=speech"):
        vla_factory(instruction="audio")
    with pytest.raises(ValueError, match="never uses them"):
        vla_factory(**speech_parts())
    with pytest.raises(ValueError, match="instruction='spoken'"):
        vla_factory(instruction="spoken", **speech_parts())
    model = vla_factory(instruction="audio", **speech_parts())
    with pytest.raises(ValueError, match="dataset.audio=true"):
        model(batch_factory(model))  # no audio in the batch
    too_long = with_audio(batch_factory(model), lengths=(20000, 100, 100))
    with pytest.raises(ValueError, match="max"):
        model(too_long)


def test_transcripts_teach_the_audio_encoder(vla_factory, batch_factory):
    """Co-training on "what was said?": the answer's loss reaches the speech encoder."""
    model = vla_factory(instruction="audio", **speech_parts())
    batch = with_audio(batch_factory(model))
    batch = {k: v for k, v in batch.items() if k not in (keys.ACTION, keys.ACTION_MASK)}
    batch[keys.QUESTION] = ["what was said?"] * 3
    batch[keys.ANSWER] = ["touch the red cube", None, "go"]  # None: this row is not asked
    out = model(batch)
    assert set(out) == {"text_loss", "loss"}
    out["loss"].backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.speech.parameters())


def test_a_speech_model_answers_about_what_it_heard(vla_factory, batch_factory):
    model = vla_factory(instruction="audio", **speech_parts()).eval()
    batch = with_audio(batch_factory(model))
    answers = model.generate_text(
        PromptInputs(
            batch[keys.IMAGE],
            ["what was said?"] * 3,
            batch[keys.STATE],
            audio=batch[keys.AUDIO],
            audio_length=batch[keys.AUDIO_LENGTH],
        ),
        max_new_tokens=4,
    )
    assert len(answers) == 3 and all(isinstance(a, str) for a in answers)


def test_alignment_loss_rewards_speech_that_names_its_transcript():
    g = torch.Generator().manual_seed(0)
    said = ["touch the red cube", "touch the blue ball", "touch the red cube", "reach the cup"]
    codes = {t: torch.randn(8, generator=g) for t in set(said)}
    text = torch.stack([codes[t] for t in said])[:, None].repeat(1, 3, 1)  # (B, 3, 8)
    mask = torch.ones(4, 3, dtype=torch.long)  # (B, 3)
    matched = text[:, :2].clone().requires_grad_(True)  # (B, Q=2, 8): speech = its transcript
    shuffled = text[[1, 3, 1, 0], :2]  # (B, 2, 8): every clip pooled like another's transcript
    good = transcript_alignment_loss(matched, text, mask, said)
    bad = transcript_alignment_loss(shuffled, text, mask, said)
    assert -1e-4 < good < 0.05 and bad > 1.0  # KL: 0 although two red-cube clips share a target
    good.backward()
    assert matched.grad is not None and text.grad is None  # the transcript side is a fixed target


def test_alignment_loss_trains_the_speech_encoder_only_through_speech(vla_factory, batch_factory):
    model = vla_factory(instruction="audio", speech_alignment=1.0, **speech_parts())
    out = model(with_audio(batch_factory(model)))
    assert {"action_loss", "alignment_loss", "loss"} <= set(out)
    torch.testing.assert_close(out["loss"], out["action_loss"] + out["alignment_loss"])
    grads = torch.autograd.grad(out["alignment_loss"], list(model.speech.parameters()),
                                allow_unused=True)  # fmt: skip
    assert any(g is not None and g.abs().sum() > 0 for g in grads)
    with pytest.raises(ValueError, match="speech_alignment"):
        vla_factory(speech_alignment=1.0)  # a text model has no speech to align


def test_a_speech_model_starts_from_a_text_checkpoint(vla_factory, tmp_path):
    """init_from: the text policy's weights carry over, the new speech encoder keeps its init."""
    from vla.checkpoint import init_from_checkpoint

    text = vla_factory(seed=1)
    save_checkpoint(text, tmp_path / "text")
    heard = vla_factory(instruction="audio", speech_alignment=1.0, seed=2, **speech_parts())
    fresh = {n: p.clone() for n, p in heard.named_parameters()}
    init = init_from_checkpoint(heard, tmp_path / "text")
    assert (
        init["new"]
        and all(n.startswith("prompt.speech.") for n in init["new"])
        and not init["unused"]
    )
    for name, p in heard.named_parameters():
        source = dict(text.named_parameters()).get(name)
        assert torch.equal(p, source if source is not None else fresh[name]), name
    with pytest.raises(ValueError, match="tokenizer differs"):
        other = vla_factory(instruction="audio", **speech_parts())
        other.text_tokenizer.add_tokens(["<extra>"])
        init_from_checkpoint(other, tmp_path / "text")
    with pytest.raises(ValueError, match="another shape"):
        init_from_checkpoint(vla_factory(action_horizon=3), tmp_path / "text")  # queries
