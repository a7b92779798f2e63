"""``llamaport.compat.client`` exports its API; its error texts and NDJSON lines.

That it imports nothing of the server is checked with the integrations
(``tests/integrations/test_exports.py``) and by ``tests/test_layers.py``.
"""

from __future__ import annotations

import pytest

import llamaport.compat.client as client
from llamaport.compat.client import ResponseError, decode_line, error_message


def test_all_entries_exist() -> None:
    assert [n for n in client.__all__ if not hasattr(client, n)] == []
    assert len(client.__all__) == len(set(client.__all__))


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('{"error": "model not found"}', "model not found"),
        ('{"error": {"message": "bad n", "type": "invalid_request_error"}}', "bad n"),
        (b"plain text\n", "plain text"),
        ("", "unknown error"),
        ("[1]", "[1]"),
    ],
    ids=["native", "openai", "text", "empty", "not-an-object"],
)
def test_error_message(body: str | bytes, message: str) -> None:
    assert error_message(body) == message


def test_ndjson_lines() -> None:
    assert decode_line("  ", 200) is None
    assert decode_line('{"done": true}', 200) == {"done": True}
    with pytest.raises(ResponseError) as caught:
        decode_line('{"error": "boom"}', 200)
    assert (caught.value.status, caught.value.status_code, caught.value.message) == (
        200,
        200,
        "boom",
    )
    with pytest.raises(ResponseError):
        decode_line("[1, 2]", 200)
