# The two commands a fresh machine needs (see README.md).
.PHONY: quickstart test fast-test setup

quickstart:
	scripts/setup.sh
	.venv/bin/lab run quickstart

test:
	scripts/setup.sh --test
	.venv/bin/ruff check .
	@# 3 workers for all but tests/cluster (the suite waits on the processes it starts more than it computes),
	@# then the multi-node cluster tests alone: their nodes' health checks must not starve behind other tests
	export LAB_REQUIRE_POSTGRES=$$(command -v apt-get >/dev/null && [ $$(id -u) = 0 ] && echo 1 || echo 0); \
	export LAB_REQUIRE_CHROMIUM=$$LAB_REQUIRE_POSTGRES; \
	.venv/bin/python -m pytest -n 3 --dist loadgroup --ignore=tests/cluster -ra --durations=20; first=$$?; \
	.venv/bin/python -m pytest tests/cluster -ra --durations=10; second=$$?; \
	exit $$(( first | second ))

fast-test:
	.venv/bin/ruff check .
	.venv/bin/python -m pytest -n 3 --dist loadgroup -m "not slow" -q
