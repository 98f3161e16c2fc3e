"""A FIFO send never asks SQS for a MessageGroupId it refuses, whatever the body's user_id.

SQS allows 1-128 characters from ``!`` to ``~``. Generated over arbitrary user_ids (any Unicode,
spaces, controls, empty, long) and arbitrary bodies.
"""

from __future__ import annotations

import json
import re

from hypothesis import given
from hypothesis import strategies as st
from login_etl_cli.sender import FALLBACK_GROUP, group_of

# The rule as AWS documents it for MessageGroupId, written independently of the code's regex.
SQS_GROUP_ID = re.compile(r"[\x21-\x7e]{1,128}")


@given(st.text(st.characters(codec=None), max_size=200))
def test_the_group_id_of_any_user_id_is_one_sqs_accepts(user_id: str) -> None:
    group = group_of(json.dumps({"user_id": user_id, "ip": "10.0.0.1"}))

    assert SQS_GROUP_ID.fullmatch(group)
    assert group == (user_id if SQS_GROUP_ID.fullmatch(user_id) else FALLBACK_GROUP)


@given(st.text(max_size=300))
def test_any_body_gets_an_accepted_group_id(body: str) -> None:
    assert SQS_GROUP_ID.fullmatch(group_of(body))


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(),
        lambda c: st.lists(c) | st.dictionaries(st.text(), c),
    )
)
def test_any_json_value_as_user_id_gets_an_accepted_group_id(user_id: object) -> None:
    assert SQS_GROUP_ID.fullmatch(group_of(json.dumps({"user_id": user_id})))


def test_a_deeply_nested_body_gets_the_fallback_group() -> None:
    assert group_of("[" * 100_000 + "]" * 100_000) == FALLBACK_GROUP
