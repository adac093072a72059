# The two commands: `make demo` and `make test`. Both set everything up themselves on a
# machine that has Python >= 3.10, Java 17 and Maven (the JVM jars: jars/pom.xml).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)
JARS   := jars/lib/.installed-$(shell cksum jars/pom.xml | cut -d' ' -f1)

.PHONY: install jars system-deps demo test test-slow bench clean

$(STAMP): pyproject.toml
	@command -v java >/dev/null || { echo "Java 17 is required (java not on PATH)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	rm -f $(VENV)/.installed-*; touch $(STAMP)

# Delta Lake for Spark, hadoop-aws + AWS SDK, the PostgreSQL JDBC driver: versions pinned in
# jars/pom.xml, fetched from Maven Central into ~/.m2 and copied into jars/lib/ (git-ignored).
$(JARS): jars/pom.xml
	@command -v mvn >/dev/null || { echo "Maven is required for the JVM jars (mvn not on PATH)"; exit 1; }
	rm -rf jars/lib
	mvn -q -B -f jars/pom.xml validate
	touch $(JARS)

jars: $(JARS)

install: $(STAMP) $(JARS)

# Debian packages the tests start for real (promtool, pushgateway); skipped when present.
system-deps:
	@bash deploy/ci-system-packages.sh

demo: install
	$(BIN)/retrain demo --conf conf

test: install system-deps
	PYSPARK_PYTHON=$(abspath $(BIN))/python $(BIN)/pytest -q -m "not slow" -n 2 --dist loadfile --durations=15

# Crash trials (benchmarks/chaos.py) and the bad inputs that get as far as a night's data.
test-slow: install system-deps
	PYSPARK_PYTHON=$(abspath $(BIN))/python $(BIN)/pytest -q -m slow

# Every benchmark at a size for ~15 minutes on 2 cores; one table, benchmarks/results/<commit>.json.
# The full-size runs (and alert quality: benchmarks/alert_quality.py) stay separate scripts.
bench: install
	PYSPARK_PYTHON=$(abspath $(BIN))/python $(BIN)/python benchmarks/bench.py

clean:
	rm -rf lakehouse spark-warehouse .pytest_cache
