import gymnasium as gym
import numpy as np
import pytest

from policies.vla_policy import VLAPolicy
from vla.action_tokenizer import ActionTokenizer
from vla.adapters import MLP
from vla.causal_lm import CausalLM
from vla.history import observation_steps
from vla.model import VLA
from vla.text import ByteTokenizer
from vla.vision import TimmEncoder

LM = {"model_type": "llama", "hidden_size": 32, "intermediate_size": 64,
      "num_hidden_layers": 1, "num_attention_heads": 2, "num_key_value_heads": 2,
      "max_position_embeddings": 128, "bos_token_id": None, "eos_token_id": None,
      "pad_token_id": None}  # fmt: skip


def tiny_vla(num_cameras=1, obs_horizon=1, history="recent", state=False):
    return VLA(
        vision=TimmEncoder("resnet10t", image_size=32, feature_stage=3,
                           model_kwargs={"channels": [8, 8, 8, 8], "stem_width": 8}),
        adapter=MLP, llm=CausalLM(config=LM), text_tokenizer=ByteTokenizer(),
        action_tokenizer=ActionTokenizer(low=[-1.0] * 4, high=[1.0] * 4, n_bins=8),
        num_cameras=num_cameras, obs_horizon=obs_horizon, history=history,
        state_low=[-1.0] * 7 if state else None, state_high=[1.0] * 7 if state else None,
    ).eval()  # fmt: skip


def test_vla_policy_names_the_camera_override_it_needs():
    policy = VLAPolicy(
        tiny_vla(num_cameras=2), ("image", "image_top"), trained_cameras=["front", "top"]
    )
    env = gym.make("vla/Touch-v0", image_size=32)  # front camera only
    with pytest.raises(ValueError, match=r"env.cameras=\[front,top\]"):
        policy.check_observation_space(env.observation_space)
    two = gym.make("vla/Touch-v0", image_size=32, cameras=("front", "top"))
    policy.check_observation_space(two.observation_space)  # agrees: no error
    env.close()
    two.close()


@pytest.mark.parametrize("history", ["recent", "start"])
def test_policy_frames_match_training_windows(history):
    """At every step the policy feeds the frames a training window holds (vla.history)."""
    policy = VLAPolicy(tiny_vla(obs_horizon=3, history=history, state=True), n_action_steps=1)
    policy.reset()
    for t in range(6):  # frame t is filled with the value t, its state with t too
        obs = {"image": np.full((32, 32, 3), t, np.uint8), "state": np.full(7, t, np.float32),
               "instruction": "touch the red cube"}  # fmt: skip
        policy.act(obs)
        frames, states = policy._observation(policy._envs[0])  # (T, V, H, W, 3), (T, S)
        expected = observation_steps(t, 0, 3, history).tolist()
        assert frames[:, 0, 0, 0, 0].tolist() == expected
        assert states[:, 0].tolist() == expected


def test_an_action_size_mismatch_fails_before_any_rollout():
    from gymnasium import spaces

    from policies.evaluate import evaluate

    policy = VLAPolicy(tiny_vla(), ("image",))
    policy.check_action_space(spaces.Box(-1, 1, (4,)))  # the tabletop's 4-d action: fine
    with pytest.raises(ValueError, match=r"actions of shape \(7,\) but the checkpoint predicts 4"):
        policy.check_action_space(spaces.Box(-1, 1, (7,)))
    seven = VLAPolicy(VLA(
        vision=TimmEncoder("resnet10t", image_size=32, feature_stage=3,
                           model_kwargs={"channels": [8, 8, 8, 8], "stem_width": 8}),
        adapter=MLP, llm=CausalLM(config=LM), text_tokenizer=ByteTokenizer(),
        action_tokenizer=ActionTokenizer(low=[-1.0] * 7, high=[1.0] * 7, n_bins=8),
    ).eval(), ("image",))  # fmt: skip
    env = {"_target_": "gymnasium.make", "id": "envs:vla/Touch-v0", "image_size": 32}
    with pytest.raises(ValueError, match="predicts 7-d actions"):
        evaluate(env, seven, episodes=1, num_envs=1, progress=False)


@pytest.mark.parametrize("text", ["", "   ", " . "])
def test_an_empty_instruction_is_refused_unless_allowed(text):
    obs = {"image": np.zeros((32, 32, 3), np.uint8), "state": np.zeros(7, np.float32),
           "instruction": text}  # fmt: skip
    policy = VLAPolicy(tiny_vla(), ("image",))
    policy.reset()
    with pytest.raises(ValueError, match="is empty: give the task as a sentence"):
        policy.act(obs)
    blind = VLAPolicy(tiny_vla(), ("image",), allow_empty_instruction=True)
    blind.reset()
    assert blind.act(obs).shape == (4,)  # an instruction-blind control acts


def test_a_task_missing_from_the_training_store_fails_before_any_rollout():
    from policies.evaluate import evaluate

    policy = VLAPolicy(tiny_vla(num_cameras=1), ("image",), trained_tasks=("touch", "lift"))
    policy.check_tasks(("touch",))  # a subset of what it trained on: fine
    env = {"_target_": "gymnasium.make", "id": "envs:vla/MultiTask-v0", "image_size": 32}
    with pytest.raises(ValueError, match=r"tasks \['push', 'pick_place', 'relation'\] that this"):
        evaluate(env, policy, episodes_per_task=1, progress=False)
    unknown = VLAPolicy(tiny_vla(num_cameras=1), ("image",))  # trained tasks not recorded
    unknown.check_tasks(("touch", "push"))
