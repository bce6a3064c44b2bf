# The two commands a newcomer needs (see README): `make demo` and `make test`.
.PHONY: setup setup-test demo test bench

setup:
	bash scripts/setup.sh

setup-test:
	VAEKIT_EXTRAS=test bash scripts/setup.sh

demo: setup
	rm -rf runs/demo
	.venv/bin/vaekit demo --out runs/demo

test: setup-test
	.venv/bin/python -m pytest -q

bench: setup
	.venv/bin/python benchmarks/train_speed.py
