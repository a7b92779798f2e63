"""Writing an error body can never fail itself, whatever text the error carries."""

from __future__ import annotations

import json

import pytest

from llamaport.compat.errors import ApiError, error_response, openai_error_response
from llamaport.storage.errors import ModelNotFound


@pytest.mark.parametrize(
    "exc",
    [ModelNotFound("bad\ud800name"), ApiError(400, "bad \udfff text", param="x\ud800")],
    ids=["typed", "api-error"],
)
def test_text_utf8_cannot_carry_is_escaped_in_both_envelopes(exc: Exception) -> None:
    """Lone surrogates once made the error response itself raise (a plain-text 500)."""
    native = json.loads(error_response(exc).body)
    openai = json.loads(openai_error_response(exc).body)["error"]
    assert "\\ud800" in native["error"] or "\\udfff" in native["error"]
    assert openai["message"] == native["error"]
