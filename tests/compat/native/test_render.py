"""Templates through the server: ``_debug_render_only``, the request ``template``,
and a stored model's TEMPLATE, SYSTEM, MESSAGE and PARAMETER layers in effect."""

from __future__ import annotations

from typing import Any

import httpx

from tests.compat._native import RFC3339_UTC, single_json
from tests.compat.conftest import TemplatedModel
from tests.conftest import MODEL

Json = dict[str, Any]


def _render(client: httpx.Client, route: str, body: Json) -> Json:
    out = single_json(client.post(f"/api/{route}", json={**body, "_debug_render_only": True}))
    assert RFC3339_UTC.fullmatch(out.pop("created_at"))
    assert out.pop("model") == body["model"]
    assert out.pop("done") is False
    info = out.pop("_debug_info")
    assert out == (
        {"response": ""} if route == "generate" else {"message": {"role": "", "content": ""}}
    )
    assert set(info) <= {"rendered_template", "image_count"}
    prompt: str = info["rendered_template"]
    return {"prompt": prompt, "image_count": info.get("image_count", 0)}


def test_generate_renders_the_gguf_template(client: httpx.Client) -> None:
    prompt = _render(client, "generate", {"model": MODEL, "prompt": "Hi", "system": "Be brief."})
    assert prompt["prompt"] == (
        "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
        "<|im_start|>assistant\n"
    )


def test_request_template_takes_precedence(client: httpx.Client) -> None:
    body = {
        "model": MODEL,
        "prompt": "Hi",
        "system": "S",
        "template": "[{{ .System }}|{{ .Prompt }}]",
    }
    assert _render(client, "generate", body)["prompt"] == "[S|Hi]"


def test_request_template_runs_the_model(client: httpx.Client) -> None:
    body = {
        "model": MODEL,
        "prompt": "Hi",
        "template": "<|im_start|>user\n{{ .Prompt }}<|im_end|>\n<|im_start|>assistant\n",
        "stream": False,
        "options": {"num_predict": 2, "temperature": 0},
    }
    out = single_json(client.post("/api/generate", json=body))
    assert out["done"] is True
    assert 0 < out["eval_count"] <= 2


def test_bad_request_template_is_a_400(client: httpx.Client) -> None:
    body = {"model": MODEL, "prompt": "Hi", "template": "{{ if .Prompt }}unclosed"}
    response = client.post("/api/generate", json=body)
    assert response.status_code == 400
    assert response.json() == {"error": "template error: line 1: unexpected EOF"}


def test_raw_refuses_a_template(client: httpx.Client) -> None:
    body = {"model": MODEL, "prompt": "Hi", "raw": True, "template": "{{ .Prompt }}"}
    response = client.post("/api/generate", json=body)
    assert response.status_code == 400
    assert response.json() == {"error": "raw mode does not support template, system, or context"}


def test_debug_render_keeps_load_requests(client: httpx.Client) -> None:
    load = single_json(
        client.post("/api/generate", json={"model": MODEL, "_debug_render_only": True})
    )
    assert load["done_reason"] == "load"


def test_stored_template_system_and_messages(
    client: httpx.Client, templated_model: TemplatedModel
) -> None:
    name = templated_model.name
    prompt = _render(client, "generate", {"model": name, "prompt": "And Paris?"})["prompt"]
    assert prompt == (
        "<|im_start|>system\nYou are Mario.<|im_end|>\n"
        "<|im_start|>user\nIs Toronto in Canada?<|im_end|>\n"
        "<|im_start|>assistant\nyes<|im_end|>\n"
        "<|im_start|>user\nAnd Paris?<|im_end|>\n"
        "<|im_start|>assistant\n"
    )
    override = _render(client, "generate", {"model": name, "prompt": "Q", "system": "Luigi."})
    assert override["prompt"].startswith("<|im_start|>system\nLuigi.<|im_end|>\n")


def test_stored_template_in_chat(client: httpx.Client, templated_model: TemplatedModel) -> None:
    messages = [{"role": "user", "content": "Hello"}]
    prompt = _render(client, "chat", {"model": templated_model.name, "messages": messages})[
        "prompt"
    ]
    assert prompt == (
        "<|im_start|>system\nYou are Mario.<|im_end|>\n"
        "<|im_start|>user\nIs Toronto in Canada?<|im_end|>\n"
        "<|im_start|>assistant\nyes<|im_end|>\n"
        "<|im_start|>user\nHello<|im_end|>\n"
        "<|im_start|>assistant\n"
    )
    own_system = [{"role": "system", "content": "Peach."}, *messages]
    body = {"model": templated_model.name, "messages": own_system}
    assert "Mario" not in _render(client, "chat", body)["prompt"]


def test_tools_reach_a_go_template_that_knows_them(
    client: httpx.Client, templated_model: TemplatedModel
) -> None:
    tool = {"type": "function", "function": {"name": "get_weather", "description": "Weather."}}
    body = {"model": templated_model.name, "messages": [{"role": "user", "content": "?"}]}
    prompt = _render(client, "chat", {**body, "tools": [tool]})["prompt"]
    assert "TOOL get_weather: Weather.<|im_end|>" in prompt


def test_suffix_uses_the_infill_mode(client: httpx.Client, templated_model: TemplatedModel) -> None:
    body = {"model": templated_model.name, "prompt": "def f(", "suffix": "):\n"}
    assert _render(client, "generate", body)["prompt"] == (
        "<fim_prefix>def f(<fim_suffix>):\n<fim_middle>"
    )
    refused = client.post("/api/generate", json={"model": MODEL, "prompt": "a", "suffix": "b"})
    assert refused.status_code == 400
    assert refused.json() == {
        "error": "registry.ollama.ai/library/smollm2:135m does not support insert"
    }


def test_stored_parameters_are_in_effect(
    client: httpx.Client, templated_model: TemplatedModel
) -> None:
    """PARAMETER num_predict 3 caps the reply (counting to ten takes more); options still win."""
    body = {"model": templated_model.name, "prompt": "Count from one to ten.", "stream": False}
    out = single_json(client.post("/api/generate", json=body))
    assert 0 < out["eval_count"] <= templated_model.params["num_predict"]
    options = {"num_predict": 1}
    one = single_json(client.post("/api/generate", json={**body, "options": options}))
    assert one["eval_count"] == 1
