# Two commands for a fresh machine: `make run` (the product, demo data, SQLite, in-process tasks)
# and `make test` (the suite, against Postgres and Redis, started here if they are not running).
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8000
# The demo's rounds train PPO briefly (a round in minutes on two cores); a round's own stage settings win over it.
DEMO_ROUND_STAGE_CONFIG ?= {"ppo": {"steps": 20, "batch_size": 16}}
TEST_ENV := SECRET_KEY=test-only-secret DEBUG=0 SECURE_SSL_REDIRECT=0 \
	DATABASE_URL=$${TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/loopwork} \
	TEST_REDIS_URL=$${TEST_REDIS_URL:-redis://127.0.0.1:6379/15}

.PHONY: install run reset-demo screenshots test lint services chromium nginx slurm bench clean docs

$(PY):
	python3 -m venv $(VENV)

# torch==2.13.0 first: a CPU wheel lies on disk; pyproject's torch>=2.4 then installs nothing more.
$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e ".[dev,train]"
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	DEBUG=$${DEBUG:-1} $(PY) manage.py migrate --noinput
	DEBUG=$${DEBUG:-1} $(PY) manage.py load_demo
# One torch thread: on a small CPU the demo's PPO runs about 10x faster than with torch's default.
	DEBUG=$${DEBUG:-1} OMP_NUM_THREADS=$${OMP_NUM_THREADS:-1} TRAINING_ROUND_STAGE_CONFIG='$(DEMO_ROUND_STAGE_CONFIG)' \
		$(PY) manage.py runserver $(HOST):$(PORT)

# Start the demo again from nothing: the SQLite database and uploaded/exported files go, the venv stays.
reset-demo:
	rm -rf db.sqlite3 media

# docs/screenshots/*.png from a throwaway demo (scripts/screenshots.py; needs chromium: make chromium).
screenshots: $(STAMP) chromium
	$(PY) scripts/screenshots.py

services:
	@pg_isready -h 127.0.0.1 -p 5432 -q || pg_ctlcluster --skip-systemctl-redirect $$(ls /etc/postgresql) main start
	@for i in $$(seq 1 30); do pg_isready -h 127.0.0.1 -p 5432 -q && break; sleep 1; done
	@psql -h 127.0.0.1 -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname='loopwork'" | grep -q 1 || \
		createdb -h 127.0.0.1 -U postgres loopwork
	@redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 || \
		redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no
	@for i in $$(seq 1 30); do redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 && break; sleep 1; done

# Debian's chromium for the browser tests (never a browser download).
chromium:
	@[ -x /usr/bin/chromium ] || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium)

# Debian's nginx, for the test of the deployment's TLS proxy (tests/config/test_deployment.py).
nginx:
	@[ -x /usr/sbin/nginx ] || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx)

# Debian's slurm-wlm for the SLURM launcher's tests (tests/training/test_slurm.py starts a one-node cluster).
slurm:
	@command -v sbatch >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm)

test: $(STAMP) services chromium nginx slurm
	$(TEST_ENV) $(PY) manage.py makemigrations --check --dry-run
	$(VENV)/bin/lint-imports
# Types: the packages listed in pyproject.toml [tool.mypy] files (cached in .mypy_cache: seconds when warm).
	$(VENV)/bin/mypy
	$(VENV)/bin/mkdocs build --strict --quiet --site-dir $$(mktemp -d)
	$(TEST_ENV) $(PY) -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
# The API schema: valid OpenAPI, and generated without a warning (stable names for client generators).
	DEBUG=1 $(PY) manage.py spectacular --fail-on-warn --validate --file /dev/null
	$(VENV)/bin/mkdocs build --strict --quiet --site-dir $$(mktemp -d)

# The documentation on http://127.0.0.1:8001 (docs/, MkDocs).
docs: $(STAMP)
	$(VENV)/bin/mkdocs serve --dev-addr 127.0.0.1:8001

clean:
	rm -rf $(VENV) db.sqlite3 media staticfiles
