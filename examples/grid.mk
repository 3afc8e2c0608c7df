# The paper's experiment grid, shared by the dataset Makefiles (examples/*/Makefile). The including
# Makefile defines how $(OUT)/train.jsonl, $(OUT)/dev.jsonl and $(OUT)/test.jsonl are made, and
# sets LABELS (a builtin inventory) and SCHEME (the scorer), and may add rows of its own (EXTRA_ROWS). File targets: `make` reruns only what
# changed.

OUT     ?= out
RELCLI  ?= $(abspath $(dir $(lastword $(MAKEFILE_LIST)))/../.venv/bin/relcli)
MODEL   ?= smollm2-135m
K       ?= 3
TEST_N  ?= 0
TRAIN_N ?= 0
EPOCHS  ?= 1.5
LR      ?= 8e-4
BATCH   ?= 16
RAG_K   ?= 2
RAG_TRAIN_N ?= 1000
EXTRACT_BATCH ?= 32
CLASSIFIER ?= minilm
CLASSIFIER_ARGS ?= --epochs 8 --lr 1e-4 --head-lr 1e-3 --pooling cls+entity

ROWS = zs-simple zs-rag ft ft-rag knn classifier knn-rel ft-rag-rel ensemble student $(EXTRA_ROWS)
.PHONY: all table data index $(ROWS) clean
.DELETE_ON_ERROR:
SHELL := /bin/bash
.SHELLFLAGS := -eo pipefail -c
all: $(ROWS:%=$(OUT)/%.score.json) table

# $(call take,N,FILE): keep the first N lines of FILE (0 = all), in place
take = $(if $(filter 0,$(1)),true,head -n $(1) $(2) > $(2).tmp && mv $(2).tmp $(2))
# $(call first,N): a command printing the first N lines of a file (0 = all)
first = $(if $(filter 0,$(1)),cat,head -n $(1))

data: $(OUT)/train.jsonl $(OUT)/dev.jsonl $(OUT)/test.jsonl

# Embedding index of the training split (all-MiniLM-L6-v2 + hnswlib).
$(OUT)/train.index/index.json: $(OUT)/train.jsonl
	$(RELCLI) index --model minilm -i $< -o $(OUT)/train.index
index: $(OUT)/train.index/index.json

# 1. Simple query, zero-shot (the paper's Figure 3 prompt, constrained to valid labels).
$(OUT)/zs-simple.preds.jsonl: $(OUT)/test.jsonl
	$(RELCLI) extract -m $(MODEL) -t simple -l $(LABELS) -i $< -o $@ --batch-size $(EXTRACT_BATCH)
# 2. RAG4RE, zero-shot: the same prompt with K retrieved training examples and their labels.
$(OUT)/zs-rag.preds.jsonl: $(OUT)/test.jsonl $(OUT)/train.index/index.json
	$(RELCLI) extract -m $(MODEL) -t rag -l $(LABELS) --index $(OUT)/train.index --k $(K) -i $< -o $@ --batch-size $(EXTRACT_BATCH)
# 3. Fine-tuning (LoRA, compact prompt).
$(OUT)/train.compact.jsonl: $(OUT)/train.jsonl
	$(RELCLI) prompts -t compact -l $(LABELS) -i $< -o $@
$(OUT)/ft/relcli.json: $(OUT)/train.compact.jsonl
	rm -rf $(OUT)/ft
	$(RELCLI) finetune -m $(MODEL) -i $< -o $(OUT)/ft --epochs $(EPOCHS) --lr $(LR) --batch-size $(BATCH)
$(OUT)/ft.preds.jsonl: $(OUT)/test.jsonl $(OUT)/ft/relcli.json
	$(RELCLI) extract -m $(OUT)/ft -i $< -o $@ --batch-size $(EXTRACT_BATCH)
# 4. Fine-tuning + RAG4RE: the fine-tuned adapter trained further on RAG prompts (RAG_K retrieved
#    neighbours with their labels; the leakage guard keeps a record from retrieving itself).
$(OUT)/train.rag.jsonl: $(OUT)/train.jsonl $(OUT)/train.index/index.json
	$(call first,$(RAG_TRAIN_N)) $< | $(RELCLI) prompts -t compact-rag -l $(LABELS) --index $(OUT)/train.index --k $(RAG_K) -o $@
$(OUT)/ft-rag/relcli.json: $(OUT)/train.rag.jsonl $(OUT)/ft/relcli.json
	rm -rf $(OUT)/ft-rag
	$(RELCLI) finetune -m $(OUT)/ft -i $< -o $(OUT)/ft-rag --epochs 1 --lr $(LR) --batch-size 8 --grad-accum 2  # 3x longer prompts: half the batch keeps memory near 5 GB
$(OUT)/ft-rag.preds.jsonl: $(OUT)/test.jsonl $(OUT)/ft-rag/relcli.json $(OUT)/train.index/index.json
	$(RELCLI) extract -m $(OUT)/ft-rag --index $(OUT)/train.index --k $(RAG_K) -i $< -o $@ --batch-size $(EXTRACT_BATCH)
# 5. Retrieval alone: similarity-weighted label vote of the K neighbours.
$(OUT)/knn.preds.jsonl: $(OUT)/test.jsonl $(OUT)/train.index/index.json
	$(RELCLI) extract --decode knn --index $(OUT)/train.index --k $(K) -i $< -o $@
# 6. Encoder classifier with entity markers.
$(OUT)/classifier/relcli.json: $(OUT)/train.jsonl
	rm -rf $(OUT)/classifier
	$(RELCLI) finetune --method classifier -m $(CLASSIFIER) -l $(LABELS) -i $< -o $(OUT)/classifier $(CLASSIFIER_ARGS)
$(OUT)/classifier.preds.jsonl: $(OUT)/test.jsonl $(OUT)/classifier/relcli.json
	$(RELCLI) extract -m $(OUT)/classifier -i $< -o $@
# 7. Retrieval by relation: the classifier's pair representation as the index embedder, so
#    neighbours share the relation; the kNN vote over it, and fine-tuning on RAG prompts built with
#    it from the whole training split (leakage guard on) for as many epochs as `ft`.
$(OUT)/classifier.index/index.json: $(OUT)/train.jsonl $(OUT)/classifier/relcli.json
	$(RELCLI) index --model $(OUT)/classifier -i $< -o $(OUT)/classifier.index
$(OUT)/knn-rel.preds.jsonl: $(OUT)/test.jsonl $(OUT)/classifier.index/index.json
	$(RELCLI) extract --decode knn --index $(OUT)/classifier.index --k $(K) -i $< -o $@
$(OUT)/train.rag-rel.jsonl: $(OUT)/train.jsonl $(OUT)/classifier.index/index.json
	$(RELCLI) prompts -t compact-rag -l $(LABELS) --index $(OUT)/classifier.index --k $(RAG_K) -i $< -o $@
$(OUT)/ft-rag-rel/relcli.json: $(OUT)/train.rag-rel.jsonl
	rm -rf $(OUT)/ft-rag-rel
	$(RELCLI) finetune -m $(MODEL) -i $< -o $(OUT)/ft-rag-rel --epochs $(EPOCHS) --lr $(LR) --batch-size $(BATCH)
$(OUT)/ft-rag-rel.preds.jsonl: $(OUT)/test.jsonl $(OUT)/ft-rag-rel/relcli.json $(OUT)/classifier.index/index.json
	$(RELCLI) extract -m $(OUT)/ft-rag-rel --index $(OUT)/classifier.index --k $(RAG_K) -i $< -o $@ --batch-size $(EXTRACT_BATCH)
# 8. The classifier and the fine-tuned generator averaged; a classifier distilled from the generator.
$(OUT)/ensemble.preds.jsonl: $(OUT)/test.jsonl $(OUT)/classifier/relcli.json $(OUT)/ft/relcli.json
	$(RELCLI) extract -m $(OUT)/classifier -m $(OUT)/ft -i $< -o $@
$(OUT)/student/relcli.json: $(OUT)/train.jsonl $(OUT)/ft/relcli.json
	rm -rf $(OUT)/student
	$(RELCLI) finetune --method classifier -m $(CLASSIFIER) --teacher $(OUT)/ft -i $< -o $(OUT)/student $(CLASSIFIER_ARGS)
$(OUT)/student.preds.jsonl: $(OUT)/test.jsonl $(OUT)/student/relcli.json
	$(RELCLI) extract -m $(OUT)/student -i $< -o $@

$(OUT)/%.score.json: $(OUT)/%.preds.jsonl
	$(RELCLI) score --scheme $(SCHEME) -l $(LABELS) -i $< --format json > $@
$(ROWS): %: $(OUT)/%.score.json

table:
	@python3 $(dir $(lastword $(MAKEFILE_LIST)))table.py $(OUT) $(ROWS)

clean:
	rm -rf $(OUT)
