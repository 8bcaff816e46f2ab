# Two entry points (see README): `make demo` and `make test`.
PYTHON ?= python
MNIST_ROOT ?= $(abspath ../shared/data)
export MNIST_ROOT

.PHONY: install demo test bench

install:
	$(PYTHON) -m pip install -q -e ".[test]"

# Evaluate 10,000 real MNIST training digits (a sanity check: FID near 0, memorisation flagged).
demo: install
	$(PYTHON) -m evaluator.demo_samples results/demo/mnist-train-digits
	evaluate --samples results/demo/mnist-train-digits -o results

test: install
	$(PYTHON) -m pytest -q

bench: install
	$(PYTHON) bench/bench_core.py
