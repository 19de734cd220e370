# The two quick-start commands: `make demo` (install, then map the real clip) and `make test`
# (the suite without the five `slow` whole-run tests; `make test-all` runs those too).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
REALCLIP ?= ../shared/realdata/deepreefmap_video/reef_clip.mp4
export HF_HUB_OFFLINE := 1

.PHONY: install demo test test-all clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -c constraints.txt -e '.[test]'
	touch $@

demo: install
	$(BIN)/reefmap process $(REALCLIP) --out runs/demo
	$(BIN)/reefmap snapshot runs/demo --out runs/demo/map_top.png

test: install
	$(BIN)/python -m pytest -q -m "not slow"

test-all: install
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) runs
