"""langchain-tests' integration suites against the live server and smollm2:135m.

Structured output and ``tool_choice`` must pass: the server guarantees them
by grammar. The xfails below are the tiny model's quality, each with its
reason; the structure of every answer is still checked by the passing tests.
"""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.language_models import BaseChatModel
from langchain_tests.integration_tests import ChatModelIntegrationTests

from llamaport.integrations.langchain import ChatLlamaport
from tests.integrations.conftest import MODEL, Live

pytestmark = pytest.mark.usefixtures("live")


class TestChatLlamaport(ChatModelIntegrationTests):
    @property
    def chat_model_class(self) -> type[ChatLlamaport]:
        return ChatLlamaport

    @property
    def chat_model_params(self) -> dict[str, Any]:
        return {
            "model": MODEL,
            "base_url": Live.url,
            "temperature": 0,
            "seed": 0,
            "max_tokens": 48,
            "timeout": 120,
        }

    @property
    def has_tool_choice(self) -> bool:
        return True

    @property
    def supports_json_mode(self) -> bool:
        return True

    @property
    def structured_output_kwargs(self) -> dict[str, Any]:
        return {"method": "json_schema"}

    @pytest.mark.xfail(
        reason="model quality: with tool_choice auto the 135M model answers get_weather "
        "questions in prose instead of calling the tool"
    )
    @pytest.mark.parametrize("model", [{}, {"output_version": "v1"}], indirect=True)
    def test_agent_loop(self, model: BaseChatModel) -> None:
        super().test_agent_loop(model)

    @pytest.mark.xfail(
        run=False,
        reason="model quality: json_mode constrains to JSON, not to keys; the model does not "
        "pick exactly setup/punchline from the prompt alone",
    )
    def test_json_mode(self, model: BaseChatModel) -> None:
        super().test_json_mode(model)

    @pytest.mark.xfail(
        run=False,
        reason="model quality: the forced call comes, but the model copies the tool's "
        "docstring into 'description' without end, so max_tokens cuts the call",
    )
    def test_unicode_tool_call_integration(
        self, model: BaseChatModel, *, tool_choice: str | None = None, force_tool_call: bool = True
    ) -> None:
        super().test_unicode_tool_call_integration(
            model, tool_choice=tool_choice, force_tool_call=force_tool_call
        )
