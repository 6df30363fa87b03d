# Convenience targets; each one is a script under scripts/ that sets the machine up first.
.PHONY: setup test demo bench bench-report

setup:          ## install apt packages, kernel headers for bcc, the .venv
	bash scripts/setup.sh

test: setup     ## the test suite (what CI runs)
	bash scripts/test.sh

demo: setup     ## the embedded default: sfcframe demo on the namespace testbed
	bash scripts/run.sh

bench: setup    ## every benchmark, results in bench-results/ and BENCHMARKS.md (< 20 min)
	bash scripts/bench.sh

bench-report:   ## redraw plots and tables from bench-results/*.json
	.venv/bin/python -m sfcframe.bench report
