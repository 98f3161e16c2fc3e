"""Stand in for what AWS publishes about a queue, on the test session's real CloudWatch API (moto)."""

from __future__ import annotations

from datetime import datetime
from typing import Any


def publish_oldest_message_age(cloudwatch: Any, queue_url: str, age_s: float, at: datetime) -> None:
    """One ``AWS/SQS ApproximateAgeOfOldestMessage`` datapoint for the queue (moto keeps it as given)."""
    cloudwatch.put_metric_data(
        Namespace="AWS/SQS",
        MetricData=[
            {
                "MetricName": "ApproximateAgeOfOldestMessage",
                "Dimensions": [{"Name": "QueueName", "Value": queue_url.rsplit("/", 1)[-1]}],
                "Timestamp": at,
                "Value": age_s,
            }
        ],
    )
