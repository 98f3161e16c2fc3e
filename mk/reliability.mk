# Reliability: the long soak (the rest of tests/reliability runs in `make test`).

SOAK_MESSAGES ?= 100000

.PHONY: soak
soak: $(STAMP) ## Soak: SOAK_MESSAGES (100k) synthetic messages, 2 drainers, random faults; prints accounting + throughput
	SOAK_MESSAGES=$(SOAK_MESSAGES) SOAK_REPORT=$(or $(SOAK_REPORT),$(VENV)/soak-report.json) \
		$(BIN)/python -m pytest tests/reliability/test_soak.py -m slow -s -q -p no:cacheprovider

.PHONY: test-reliability
test-reliability: $(STAMP) ## Only the fast reliability suite: faults, hostile input, PII leaks, TLS, small soak
	$(BIN)/python -m pytest tests/reliability -m "not slow" -q
