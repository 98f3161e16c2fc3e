"""The usual tutorial approach, as the "naive" baseline of ``make bench``.

Powertools' ``BatchProcessor`` calls a record handler once per SQS record; the handler masks each
PII field with pycryptodome's ``AES.MODE_SIV`` (a fresh cipher per field, pure-Python S2V) and
runs one ``INSERT ... ON CONFLICT DO NOTHING`` per record on a plain pg8000 connection (no
TCP_NODELAY), committing each record on its own, which is what makes a per-record failure
report in ``batchItemFailures`` mean anything.

To compare like with like it validates with the project's own ``parse_login`` and writes the very
same rows: the masked values are byte-identical to ``KeyRing.mask`` (the bench checks it).
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from Crypto.Cipher import AES
from login_etl.records import parse_login
from support.pg import connect

__all__ = ["NaiveHandler", "NaiveMasker"]

_INSERT = """
INSERT INTO user_logins (user_id, device_type, masked_ip, masked_device_id, locale,
                         app_version, create_date, message_id)
VALUES (:user_id, :device_type, :masked_ip, :masked_device_id, :locale,
        :app_version, :create_date, :message_id)
ON CONFLICT (message_id) DO NOTHING
"""


class NaiveMasker:
    """The tutorial's masking: a fresh pycryptodome ``AES.MODE_SIV`` cipher per field. The bench
    times it on its own, and checks it is byte-identical to ``KeyRing.mask``."""

    def __init__(self, key_id: str, key: bytes) -> None:
        self._key = key
        self._prefix = key_id + ":"

    def mask(self, value: str, ad: bytes) -> str:
        cipher = AES.new(self._key, AES.MODE_SIV)
        cipher.update(ad)
        ciphertext, tag = cipher.encrypt_and_digest(value.encode("utf-8"))
        return self._prefix + base64.urlsafe_b64encode(tag + ciphertext).rstrip(b"=").decode("ascii")


class NaiveHandler:
    """A tutorial-style SQS handler; ``__call__(event, context)`` is the Lambda entry point."""

    def __init__(self, url: str, key_id: str, key: bytes) -> None:
        self._conn = connect(url)  # as a tutorial does: pg8000's own socket, no TCP_NODELAY
        self._mask = NaiveMasker(key_id, key).mask
        self._processor = BatchProcessor(event_type=EventType.SQS)

    def _record_handler(self, record: SQSRecord) -> None:
        login = parse_login(record.body)
        sent = int(record.attributes.sent_timestamp)
        self._conn.run(
            _INSERT,
            user_id=login.user_id,
            device_type=login.device_type,
            masked_ip=self._mask(login.ip, b"ip"),
            masked_device_id=self._mask(login.device_id, b"device_id"),
            locale=login.locale,
            app_version=login.app_version,
            create_date=datetime.fromtimestamp(sent / 1000, UTC).date(),
            message_id=record.message_id,
        )

    def __call__(self, event: dict[str, Any], context: Any) -> Any:
        return process_partial_response(
            event=event, record_handler=self._record_handler, processor=self._processor, context=context
        )

    def close(self) -> None:
        self._conn.close()
