# ganland: `make demo` and `make test` each do all the set-up on a fresh machine.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
FMNIST := /usr/share/datasets/fashion-mnist

.PHONY: setup demo test test-fast bench bench-quality clean data browser

# Virtual environment with pinned dependencies (constraints.txt). Re-run when the pins change.
$(BIN)/ganland: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -c constraints.txt -e ".[test]"
	@touch $@

# Fashion-MNIST from Debian's package when we are root with apt; otherwise ganland downloads
# it on first use (or say where it is with --set data.root=DIR).
data:
	@if [ -d $(FMNIST) ]; then echo "Fashion-MNIST: $(FMNIST)"; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "Fashion-MNIST: installing Debian's package dataset-fashion-mnist with apt-get (about 30 MB)"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist) \
	    || echo "apt could not install dataset-fashion-mnist; ganland will try to download it"; \
	else echo "Not root or no apt: ganland will download Fashion-MNIST to ~/.cache/ganland on first use"; fi

setup: $(BIN)/ganland data

# The report's browser test opens report.html in Chromium: Debian's chromium and chromium-driver,
# installed when missing and we are root with apt; otherwise that one test is skipped, saying why.
browser:
	@if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "Chromium for the report's browser test: installing Debian's chromium and chromium-driver with apt-get"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver) \
	    || echo "apt could not install chromium: the report's browser test will be skipped"; \
	else echo "No chromium or chromedriver and not root with apt: the report's browser test will be skipped"; fi

# Main job: train the default recipe for about 5 minutes, then say what to do next.
demo: setup
	$(BIN)/ganland train fashion-dcgan --minutes 5
	@echo ""
	@echo "The ganland command is $(BIN)/ganland (or run 'source $(BIN)/activate' once, then just 'ganland')."
	@echo "Try next:  $(BIN)/ganland recipes            # every setup ganland trains"
	@echo "           $(BIN)/ganland train gaussian-1d  # a 1-D GAN in about 20 seconds"

# Everything (what CI runs). test-fast: the unit tests only, under a minute on 2 cores.
test: $(BIN)/ganland browser
	$(BIN)/python -m pytest tests --durations=25

test-fast: $(BIN)/ganland
	$(BIN)/python -m pytest tests -m "not slow and not e2e"

# Speed: ganland against the textbook loops, the machine's limits, each lever (JSON lines).
SPEED_BENCH   := train_speed optimizer_step data_path eval_speed numpy_engine speed_choice scaling
# Quality at a budget: hours on a 2-core CPU (time to FID; every loss on the 2-D mixtures).
QUALITY_BENCH := time_to_quality loss_comparison quality_per_minute toy_mixtures independent_ranking image_to_image

bench: setup
	@for b in $(SPEED_BENCH); do $(BIN)/python benchmarks/$$b.py || exit 1; done

bench-quality: setup
	@for b in $(QUALITY_BENCH); do $(BIN)/python benchmarks/$$b.py || exit 1; done

clean:
	rm -rf $(VENV) build src/*.egg-info .pytest_cache
