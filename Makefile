# Everything bootstraps from python3 + make: the first target that needs it builds .venv.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: all run test soak lint bench bench-quick data clean

all: test

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

data/events.jsonl: data/generate.py
	$(BIN)/python data/generate.py

data: $(STAMP) data/events.jsonl

## make run: the demo - an embedded store under data/store, sample events in, read back, described.
run: $(STAMP) data/events.jsonl
	$(BIN)/python data/walkthrough.py

## make test: the whole suite (the reliability campaigns at CI size; their counts go to build/).
test: $(STAMP)
	LOGSTORE_RELIABILITY_REPORT=build/reliability-ci.json $(BIN)/python -m pytest -q -p no:cacheprovider

## make soak: the reliability campaigns of docs/reliability.md, longer: LOGSTORE_SOAK=$(SOAK) runs the
## kill -9 loop SOAK times and every other loop SOAK/200 times its CI size.
SOAK ?= 5000
soak: $(STAMP)
	LOGSTORE_SOAK=$(SOAK) LOGSTORE_RELIABILITY_REPORT=build/reliability-soak.json \
		$(BIN)/python -m pytest -q -p no:cacheprovider tests/reliability

lint: $(STAMP)
	$(BIN)/ruff check logstore cli tests bench data
	$(BIN)/ruff format --check logstore cli tests bench data

bench: $(STAMP) data/events.jsonl
	$(BIN)/python -m pip install --quiet -e '.[bench]'
	$(BIN)/python bench/storage_bench.py
	$(BIN)/python bench/producer_bench.py
	$(BIN)/python bench/consumer_bench.py
	$(BIN)/python bench/group_bench.py
	$(BIN)/python bench/retention_bench.py
	$(BIN)/python bench/peers_bench.py
	$(BIN)/python bench/scaling_bench.py

bench-quick: $(STAMP) data/events.jsonl
	$(BIN)/python -m pip install --quiet -e '.[bench]'
	$(BIN)/python bench/storage_bench.py --quick
	$(BIN)/python bench/producer_bench.py --quick
	$(BIN)/python bench/consumer_bench.py --quick
	$(BIN)/python bench/group_bench.py --quick
	$(BIN)/python bench/retention_bench.py --quick
	$(BIN)/python bench/peers_bench.py --quick
	$(BIN)/python bench/scaling_bench.py --quick

clean:
	rm -rf $(VENV) data/store build *.egg-info
