# tests/sam: the real SAM CLI on a private Docker engine (docs/sam-local.md).
# `make test` runs it; `make test-sam` runs it alone.
#
# Debian packages the tier needs; installed with apt when missing (root). Without apt the tier
# says what is missing: a loud skip, or a failure under LOGIN_ETL_REQUIRE_AWS_LOCAL=1.
SAM_TIER_DEBS := docker.io debootstrap postgresql

.PHONY: sam-tier-deps
sam-tier-deps:
	@if [ ! -x /usr/sbin/dockerd ] || [ ! -x /usr/bin/docker ] || [ ! -x /usr/sbin/debootstrap ] \
		|| ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then \
		if command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
			echo "installing $(SAM_TIER_DEBS) for tests/sam" >&2; \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
				-o DPkg::Lock::Timeout=600 --no-install-recommends $(SAM_TIER_DEBS) >/dev/null; \
		else echo "warning: cannot install $(SAM_TIER_DEBS) (needs apt as root); tests/sam will say so" >&2; fi; \
	fi

.PHONY: test-sam
test-sam: $(STAMP) $(SAM_STAMP) sam-tier-deps ## The SAM CLI tier: sam build, sam local invoke on every event, start-lambda (own engine)
	$(SAM_PATH)LOGIN_ETL_SAM=$(SAM_BIN)/sam LOGIN_ETL_CACHE=$(LOGIN_ETL_CACHE) \
		$(BIN)/python -m pytest tests/sam -q -p no:cacheprovider
