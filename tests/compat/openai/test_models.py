"""``GET /v1/models`` and ``/v1/models/{model}``, with llamaport's extra fields."""

from __future__ import annotations

import httpx
import openai
import pytest

from tests.conftest import MODEL


def test_list(oai: openai.OpenAI, client: httpx.Client) -> None:
    models = {m.id: m for m in oai.models.list()}
    model = models[MODEL]
    assert model.object == "model"
    assert model.owned_by == "library"
    tags = {m["name"]: m for m in client.get("/api/tags").json()["models"]}
    assert model.created > 0
    assert set(models) == set(tags)
    extra = model.model_extra or {}
    assert extra["context_length"] == tags[MODEL]["details"]["context_length"] > 0
    assert extra["capabilities"] == tags[MODEL]["capabilities"]
    assert "completion" in extra["capabilities"]


@pytest.mark.parametrize("name", [MODEL, f"library/{MODEL}", MODEL.upper()], ids=str)
def test_retrieve(oai: openai.OpenAI, name: str) -> None:
    model = oai.models.retrieve(name)
    assert model.id == MODEL
    assert model.owned_by == "library"
    assert (model.model_extra or {})["context_length"] > 0


def test_unknown_model_is_not_found(oai: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        oai.models.retrieve("nope:1b")
    assert caught.value.status_code == 404
    assert caught.value.type == "not_found_error"
    assert caught.value.body == {
        "message": "model 'nope:1b' not found",
        "type": "not_found_error",
        "param": None,
        "code": None,
    }
