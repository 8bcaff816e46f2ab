# Entry points (see README): `make demo` and `make test`.
PYTHON ?= python
MNIST_ROOT ?= $(abspath ../shared/data)
export MNIST_ROOT

.PHONY: install demo test bench

install:
	$(PYTHON) -m pip install -q -e ".[test]"

# Evaluate the submission kit (trained vanilla generator) as organisers evaluate a team folder:
# sandboxed generate.py, validation, metrics. Results land in results/submission/<run-id>/.
demo: install
	evaluate submission/ -o results

test: install
	$(PYTHON) -m pytest -q

bench: install
	$(PYTHON) bench/bench_core.py
