# Everything bootstraps itself: a fresh machine needs only Python 3.13 (pyenv's, selected by .python-version).
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON_VERSION := $(shell cat .python-version)
PYTHON ?= python$(PYTHON_VERSION)
# The interpreter itself, not a pyenv shim: `sam build` runs pip with the first python3.13 on PATH.
PYTHON_EXE = $(shell $(PYTHON) -c 'import sys; print(sys.executable)')
TOOLS := .tools
UV := $(TOOLS)/uv/bin/uv
VENV := .venv
SAM := $(TOOLS)/sam/bin/sam
CFN_LINT := $(TOOLS)/sam/bin/cfn-lint
CHECKOV := $(TOOLS)/checkov/bin/checkov
REGION ?= eu-north-1
# The local stack, benchmarks and build check import the layer and function packages as Lambda would find them.
APP_PYTHON := PYTHONPATH=layers/shared:functions/place_order:functions/status_callback:functions/publish_outcomes:functions/fetch_signed_document:functions/send_message:functions/privacy_settings $(VENV)/bin/python

export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := $(VENV)
export SAM_CLI_TELEMETRY := 0
export AWS_DEFAULT_REGION := $(REGION)

.PHONY: help run serve check test lint typecheck pytest transformed template-checks schemas deploy deploy-check account-setup build build-host build-check openapi bench clean layer-requirements

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-18s %s\n", $$1, $$2}'

$(UV):
	@echo "installing uv into $(TOOLS)/uv ..."
	@$(PYTHON) -m venv $(TOOLS)/uv
	@$(TOOLS)/uv/bin/pip install --quiet --disable-pip-version-check uv==0.13.8

# Quiet: `make run` on a fresh clone shows what it does, not the installers' lists (their errors still show).
$(VENV)/.synced: pyproject.toml uv.lock | $(UV)
	@echo "installing the project's Python packages into $(VENV) (uv, from uv.lock) ..."
	@$(UV) sync --quiet --frozen --compile-bytecode --python $(PYTHON_EXE)
	@touch $@

# aws-sam-cli and checkov pin boto3/pydantic differently from the app: each gets its own venv.
$(TOOLS)/sam/.installed: requirements/sam.txt | $(UV)
	@echo "installing the pinned SAM CLI into $(TOOLS)/sam ..."
	@$(UV) venv --quiet --allow-existing --python $(PYTHON_EXE) $(TOOLS)/sam
	@$(UV) pip install --quiet --compile-bytecode --python $(TOOLS)/sam -r requirements/sam.txt
	@touch $@

$(TOOLS)/checkov/.installed: requirements/checkov.txt | $(UV)
	@echo "installing the pinned checkov into $(TOOLS)/checkov ..."
	@$(UV) venv --quiet --allow-existing --python $(PYTHON_EXE) $(TOOLS)/checkov
	@$(UV) pip install --quiet --compile-bytecode --python $(TOOLS)/checkov -r requirements/checkov.txt
	@touch $@

run: $(VENV)/.synced  ## the whole flow locally: moto + ePROM simulator + every function, sample orders and messages, final tables
	@$(APP_PYTHON) -m local.run $(ARGS)

serve: $(VENV)/.synced  ## the local stack kept running, for `.venv/bin/eprom --local ...` and curl
	@$(APP_PYTHON) -m local.run --serve $(ARGS)

# What a developer runs often (under a minute): tests/unit and tests/integration without the slow ones.
check: lint typecheck $(VENV)/.synced  ## the fast part of make test: ruff, mypy, the unit and fast integration tests
	$(VENV)/bin/pytest -m "(unit or integration) and not slow" $(PYTEST_ARGS)

test: lint typecheck pytest template-checks build-check  ## everything CI runs

lint: $(VENV)/.synced  ## ruff (lint and format check); the layer's requirements match uv.lock
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(LAYER_EXPORT) | diff -u layers/shared/requirements.txt - \
		|| { echo "layers/shared/requirements.txt differs from uv.lock: run make layer-requirements"; exit 1; }

typecheck: $(VENV)/.synced  ## mypy --strict on the layer, the functions, cli/, local/ and buildtools/ (pyproject.toml)
	$(VENV)/bin/mypy

pytest: $(VENV)/.synced  ## every test: tests/unit, tests/integration (moto, the ePROM simulator) and tests/e2e
	$(VENV)/bin/pytest $(PYTEST_ARGS)

# The linters judge a template by its parameter defaults: each network mode is also rendered with its own
# (buildtools/network_modes.py), so the VPC, endpoint and PRIVATE-callback resources are checked too.
MODES_DIR := .aws-sam/network-modes

# Every network mode as CloudFormation receives it (after the SAM transform), for the checks and the tests.
TRANSFORMED_DIR := .aws-sam/transformed

transformed: $(TOOLS)/sam/.installed $(VENV)/.synced  ## each network mode transformed by the pinned SAM translator
	rm -rf $(MODES_DIR) $(TRANSFORMED_DIR)
	$(APP_PYTHON) -m buildtools.network_modes $(MODES_DIR) >/dev/null
	$(TOOLS)/sam/bin/python buildtools/transform.py $(TRANSFORMED_DIR) $(MODES_DIR)/*.json

# cfn-lint also reads what CloudFormation receives: SAM may turn a template the linters pass into one it refuses.
template-checks: transformed $(TOOLS)/checkov/.installed  ## cfn-lint (before and after the SAM transform), sam validate --lint, checkov (each network mode)
	$(CFN_LINT) template.yaml $(MODES_DIR)/*.json $(TRANSFORMED_DIR)/*.json
	for template in template.yaml $(MODES_DIR)/*.json; do \
		echo "sam validate --lint $$template"; $(SAM) validate --lint --template $$template; \
	done
	$(CHECKOV) --framework cloudformation --quiet --compact --skip-download \
		--file template.yaml $$(printf -- '--file %s ' $(MODES_DIR)/*.json)
# The resources SAM generates too (stage, versions, permissions). SAM does not copy CallbackApi's checkov skips to
# the stage it makes: CKV_AWS_120 (caching) is skipped here for the reason given on CallbackApi.
	$(CHECKOV) --framework cloudformation --quiet --compact --skip-download --skip-check CKV_AWS_120 \
		$$(printf -- '--file %s ' $(TRANSFORMED_DIR)/*.json)

# Lambda cannot write __pycache__ into /opt or /var/task, and sam build ships no bytecode: without this step every
# cold start compiles boto3, pydantic and Powertools from source (measured: about 2.5 x slower, see docs/performance.md).
# unchecked-hash: the .pyc stay valid whatever mtimes the zip round trip leaves.
BUILT := SharedLayer PlaceOrderFunction StatusCallbackFunction PublishOutcomesFunction FetchSignedDocumentFunction \
	SendMessageFunction \
	PrivacySettingsFunction
COMPILE_BUILD = $(PYTHON_EXE) -m compileall -q -j 0 --invalidation-mode unchecked-hash

# PARAMETER_OVERRIDES: the stage's parameters (make deploy gives them), so the layer is built for its Architecture.
build: $(TOOLS)/sam/.installed  ## sam build (no Docker: the pyenv Python 3.13 goes first on PATH), with bytecode
	PATH="$(dir $(PYTHON_EXE)):$$PATH" $(SAM) build --template template.yaml \
		$(if $(PARAMETER_OVERRIDES),--parameter-overrides $(PARAMETER_OVERRIDES))
	$(COMPILE_BUILD) $(addprefix .aws-sam/build/,$(BUILT))

# The same build for this machine's architecture (the deployed one is arm64), for the build check and benchmarks.
build-host: $(TOOLS)/sam/.installed  ## the same build for this machine's architecture (.aws-sam/check)
	PATH="$(dir $(PYTHON_EXE)):$$PATH" $(SAM) build --template template.yaml --build-dir .aws-sam/check \
		--parameter-overrides Architecture=$$(uname -m | sed 's/aarch64/arm64/')
	$(COMPILE_BUILD) $(addprefix .aws-sam/check/,$(BUILT))

# Imports and invokes every handler from that build in a clean interpreter that has only the function's code and
# the built layer (no AWS SDK of the runtime's): a dependency missing from the layer fails here, not in production.
# The deployed build (arm64) cannot be imported here: check that its native extensions are aarch64 for CPython 3.13.
build-check: build-host build $(VENV)/.synced  ## every built handler imported and invoked; the arm64 build's extensions checked
	$(APP_PYTHON) -m buildtools.verify_build .aws-sam/check
	$(APP_PYTHON) -m buildtools.check_native_extensions .aws-sam/build arm64

schemas: $(VENV)/.synced  ## regenerate schemas/ and the event schemas in template.yaml from the models
	$(APP_PYTHON) -m buildtools.schemas

# sam's --parameter-overrides replaces the stage's list: buildtools.deploy merges PARAMS into it by name, runs the
# preflight first (nothing is built while it finds a problem), builds with the merged parameters, then deploys.
NEEDS_STAGE = @test -n "$(STAGE)" || { echo "error: give the stage: make $@ STAGE=test (a section of samconfig.toml: dev, test, qa, prod)" >&2; exit 1; }

deploy: $(VENV)/.synced $(TOOLS)/sam/.installed  ## deploy a stage: make deploy STAGE=test [PARAMS="Key=Value ..."] [DRY_RUN=1]
	$(NEEDS_STAGE)
	@$(APP_PYTHON) -m buildtools.deploy $(STAGE) --sam $(SAM) --params "$(PARAMS)" $(if $(DRY_RUN),--dry-run)

deploy-check: $(VENV)/.synced  ## what a deploy of STAGE needs from the account, before it runs: make deploy-check STAGE=test
	$(NEEDS_STAGE)
	@$(VENV)/bin/eprom --stage $(STAGE) preflight $(addprefix --parameter ,$(PARAMS))

account-setup: $(VENV)/.synced  ## once per AWS account and region: API Gateway's logging role, then the preflight of STAGE
	$(NEEDS_STAGE)
	@$(VENV)/bin/eprom --stage $(STAGE) preflight --fix $(addprefix --parameter ,$(PARAMS))

openapi: $(VENV)/.synced  ## regenerate docs/callback-openapi.json from the callback resolver
	$(APP_PYTHON) -m buildtools.openapi > docs/callback-openapi.json.new  # a failure leaves the file as it was
	mv docs/callback-openapi.json.new docs/callback-openapi.json

bench: $(VENV)/.synced build build-host  ## performance as ratios against baselines measured in the same run
	$(APP_PYTHON) -m bench $(ARGS)

clean:  ## remove the build output and the tools' caches
	rm -rf .aws-sam .pytest_cache .ruff_cache bench/results

# The layer ships the app's locked dependencies exactly as tested, the AWS SDK (boto3, botocore, ...) included:
# the code needs a botocore with S3 conditional writes, and AWS no longer publishes the runtime's SDK version and
# recommends a layer with a pinned SDK to lock it (AWS Lambda Operator Guide, "Managing AWS SDKs in Lambda functions":
# https://serverlessland.com/content/service/lambda/guides/aws-lambda-operator-guide/sdks-functions). The layer's
# python/ comes before the runtime's SDK on sys.path, so the runtime's is never imported.
LAYER_EXPORT = $(UV) export --frozen --no-default-groups --no-emit-project --no-hashes --no-header --no-annotate

layer-requirements: | $(UV)  ## regenerate layers/shared/requirements.txt from uv.lock
	$(LAYER_EXPORT) --quiet -o layers/shared/requirements.txt
