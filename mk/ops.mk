# Operations targets: look at a deployed stack (docs/operations.md). Included by the main
# Makefile; TARGET, SEND_SAM, SEND_STACK, SEND_ENDPOINT, SEND_CREDENTIALS and stack_output come
# from mk/deploy.mk.

.PHONY: dashboard
dashboard: $(STAMP) $(SAM_STAMP) ## Read the stack's CloudWatch dashboard back (get-dashboard) and list its widgets (TARGET=localstack|aws)
	@set -euo pipefail; name=$$($(call stack_output,$(SEND_SAM),$(SEND_STACK),DashboardName)); \
	$(SEND_CREDENTIALS) $(BIN)/python - "$$name" $(SEND_ENDPOINT) <<< "$$DASHBOARD_PY"

.PHONY: status
status: $(STAMP) $(SAM_STAMP) ## login-etl status for the stack's queue (TARGET=localstack|aws; needs DATABASE_URL)
	@set -euo pipefail; queue_url=$$($(call stack_output,$(SEND_SAM),$(SEND_STACK),QueueUrl)); \
	$(SEND_CREDENTIALS) $(BIN)/login-etl status --queue-url "$$queue_url" $(SEND_ENDPOINT)

define DASHBOARD_PY
import json, sys, boto3
endpoint = sys.argv[3] if len(sys.argv) > 3 else None  # argv: name [--endpoint-url URL]
cloudwatch = boto3.client("cloudwatch", endpoint_url=endpoint)
body = json.loads(cloudwatch.get_dashboard(DashboardName=sys.argv[1])["DashboardBody"])
widgets = body["widgets"]
if not widgets:
    sys.exit(f"dashboard {sys.argv[1]}: no widgets")
print(f"dashboard {sys.argv[1]}: {len(widgets)} widgets")
for widget in widgets:
    print(f'  {widget["type"]:<7} {widget["properties"]["title"]}')
endef
export DASHBOARD_PY
