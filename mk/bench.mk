# Performance: `make bench` measures the real handler against psql \copy (the physical limit) and
# the usual tutorial approach in one run, against a real PostgreSQL (embedded unless DATABASE_URL
# is set). It prints a table and writes bench/results.json, which `make capacity` reads.

.PHONY: bench
bench: $(STAMP) ## Benchmark: ours vs the limit (psql \copy) vs naive; prints a table, writes bench/results.json
	$(BIN)/python bench/run.py

.PHONY: bench-quick
bench-quick: $(STAMP) ## A fast smoke run of the benchmark (fewer repetitions; writes /tmp/login-etl-bench.json)
	$(BIN)/python bench/run.py --quick --output /tmp/login-etl-bench.json

.PHONY: capacity
capacity: $(STAMP) ## Capacity model (concurrency, DB connections, latency, Lambda cost) from bench/results.json
	$(BIN)/python bench/capacity.py
