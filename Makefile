# Entry points (see README): `make demo` and `make test`.
PYTHON ?= python
MNIST_ROOT ?= $(abspath ../shared/data)
export MNIST_ROOT

.PHONY: install demo test bench

install:
	$(PYTHON) -m pip install -q -e ".[test]"

# Generate 10,000 digits with the submission kit (trained vanilla generator) in a scratch copy,
# then evaluate them. The result JSON lands in results/kit-vanilla/<run-id>/.
demo: install
	rm -rf results/demo-kit && mkdir -p results && cp -r submission results/demo-kit
	cd results/demo-kit && $(PYTHON) generate.py --batch_size 2048
	evaluate --samples results/demo-kit/samples --name kit-vanilla -o results

test: install
	$(PYTHON) -m pytest -q

bench: install
	$(PYTHON) bench/bench_core.py
