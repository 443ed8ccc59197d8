# The two commands a fresh machine needs (see README.md).
.PHONY: quickstart test fast-test setup

quickstart:
	scripts/setup.sh
	.venv/bin/lab run quickstart

test:
	scripts/setup.sh --test
	.venv/bin/ruff check .
	@# 3 workers for all but tests/cluster (the suite waits on the processes it starts more than it computes),
	@# then the multi-node cluster tests without the others (their nodes' health checks must not starve behind
	@# other tests): the multi-host harness on one worker, the local clusters one at a time on the other
	export LAB_REQUIRE_POSTGRES=$$(command -v apt-get >/dev/null && [ $$(id -u) = 0 ] && echo 1 || echo 0); \
	export LAB_REQUIRE_CHROMIUM=$$LAB_REQUIRE_POSTGRES; \
	.venv/bin/python -m pytest -n 3 --dist loadgroup --ignore=tests/cluster -ra --durations=20; first=$$?; \
	.venv/bin/python -m pytest tests/cluster -n 2 --dist loadgroup -ra --durations=10; second=$$?; \
	exit $$(( first | second ))

fast-test:
	.venv/bin/ruff check .
	.venv/bin/python -m pytest -n 3 --dist loadgroup -m "not slow" -q
