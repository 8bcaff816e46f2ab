# Entry points (see README): `make demo` and `make test`.
PYTHON ?= python
MNIST_ROOT ?= $(abspath ../shared/data)
export MNIST_ROOT

.PHONY: install system-deps demo test bench

install:
	$(PYTHON) -m pip install -q -e ".[test]"

# bubblewrap runs team code in the sandbox (Debian/Ubuntu; needs root, else install it yourself).
system-deps:
	@command -v bwrap >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bubblewrap >/dev/null; } || \
	  echo "warning: install bubblewrap (apt-get install bubblewrap) to run team code in the sandbox"

# Evaluate the submission kit (trained vanilla generator) and the best reference submission (the
# lowest Inception FID in baselines/README.md), assembled from its recipe (build/baselines/,
# git-ignored), as organisers evaluate team folders: sandboxed generate.py, validation, metrics.
# Results land in results/<folder>/<run-id>/; the leaderboard over results/ (with the committed
# baseline results beside it) in site/.
demo: install system-deps
	assemble-baselines wgan-gp-course-interpolation -o build/baselines
	evaluate submission/ build/baselines/wgan-gp-course-interpolation -o results
	leaderboard build results baselines/results -o site

test: install
	$(PYTHON) -m pytest -q

bench: install
	$(PYTHON) bench/benchmark.py
