"""A LocalStack CloudFormation resource provider for ``AWS::CloudWatch::Dashboard``.

Test and local support, never deployed. LocalStack community 4.14 serves CloudWatch's
PutDashboard/GetDashboard API but has no CloudFormation provider for the dashboard resource: its
engine skips the resource as unsupported (``CFN_IGNORE_UNSUPPORTED_RESOURCE_TYPES``), reports
CREATE_COMPLETE, and gives it the physical id ``unknown``, so no dashboard exists. Resource
providers are a plugin point (``localstack.cloudformation.resource_providers``); this one maps
the resource onto that API the way CloudFormation does on AWS: the name is the physical id, the
body is put as given (after LocalStack resolved its ``Fn::Sub``), and delete deletes it.
"""

from __future__ import annotations

from typing import Any

from localstack.services.cloudformation.resource_provider import (
    CloudFormationResourceProviderPlugin,
    OperationStatus,
    ProgressEvent,
    ResourceProvider,
    ResourceRequest,
)
from localstack.utils.strings import short_uid

# The parts of CloudFormation's registry schema for the type that LocalStack's engine reads.
SCHEMA: dict[str, Any] = {
    "typeName": "AWS::CloudWatch::Dashboard",
    "properties": {"DashboardName": {"type": "string"}, "DashboardBody": {"type": "string"}},
    "required": ["DashboardBody"],
    "createOnlyProperties": ["/properties/DashboardName"],
    "primaryIdentifier": ["/properties/DashboardName"],
}


class CloudWatchDashboardProvider(ResourceProvider[dict[str, Any]]):
    TYPE = "AWS::CloudWatch::Dashboard"
    SCHEMA = SCHEMA

    def create(self, request: ResourceRequest[dict[str, Any]]) -> ProgressEvent[dict[str, Any]]:
        model = request.desired_state
        if not model.get("DashboardName"):  # as on AWS: a generated name when none is given
            model["DashboardName"] = f"{request.stack_name}-{request.logical_resource_id}-{short_uid()}"
        request.aws_client_factory.cloudwatch.put_dashboard(
            DashboardName=model["DashboardName"], DashboardBody=model["DashboardBody"]
        )
        return ProgressEvent(status=OperationStatus.SUCCESS, resource_model=model)

    def update(self, request: ResourceRequest[dict[str, Any]]) -> ProgressEvent[dict[str, Any]]:
        model = request.desired_state
        model["DashboardName"] = request.previous_state["DashboardName"]
        request.aws_client_factory.cloudwatch.put_dashboard(
            DashboardName=model["DashboardName"], DashboardBody=model["DashboardBody"]
        )
        return ProgressEvent(status=OperationStatus.SUCCESS, resource_model=model)

    def delete(self, request: ResourceRequest[dict[str, Any]]) -> ProgressEvent[dict[str, Any]]:
        model = request.previous_state or request.desired_state
        request.aws_client_factory.cloudwatch.delete_dashboards(DashboardNames=[model["DashboardName"]])
        return ProgressEvent(status=OperationStatus.SUCCESS, resource_model={})


class CloudWatchDashboardProviderPlugin(CloudFormationResourceProviderPlugin):
    name = "AWS::CloudWatch::Dashboard"

    def __init__(self) -> None:
        self.factory: type[ResourceProvider[Any]] | None = None

    def load(self) -> None:
        self.factory = CloudWatchDashboardProvider
