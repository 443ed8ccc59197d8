# The two commands a fresh machine needs (see README.md).
.PHONY: quickstart test fast-test setup

quickstart:
	scripts/setup.sh
	.venv/bin/lab run quickstart

test:
	scripts/setup.sh --test
	.venv/bin/ruff check .
	export LAB_REQUIRE_POSTGRES=$$(command -v apt-get >/dev/null && [ $$(id -u) = 0 ] && echo 1 || echo 0); \
	export LAB_REQUIRE_CHROMIUM=$$LAB_REQUIRE_POSTGRES; \
	scripts/test_all.sh

fast-test:
	.venv/bin/ruff check .
	.venv/bin/python -m pytest -n 3 --dist loadgroup -m "not slow" -q
