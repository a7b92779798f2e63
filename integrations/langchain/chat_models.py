"""``ChatLlamaport``: a LangChain chat model over native ``/api/chat``.

Beyond langchain-ollama's ``ChatOllama``: ``tool_choice`` is sent and the
server enforces it by grammar, so ``with_structured_output(method=
"function_calling")`` really forces the call; ``max_tokens``, ``timeout`` and
``max_retries`` are honoured; call ids, ``tool_call_id`` and tool names reach
the server; thinking is surfaced whether or not ``reasoning`` was set; a
per-call ``model`` shows in traces; ``profile`` comes from ``/api/show``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from operator import itemgetter
from typing import Any, Literal

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import LangSmithParams, LanguageModelInput, ModelProfile
from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.output_parsers import (
    JsonOutputKeyToolsParser,
    JsonOutputParser,
    PydanticOutputParser,
    PydanticToolsParser,
)
from langchain_core.outputs import ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable, RunnableMap, RunnablePassthrough
from langchain_core.tools import BaseTool
from langchain_core.utils.function_calling import convert_to_json_schema, convert_to_openai_tool
from langchain_core.utils.pydantic import is_basemodel_subclass
from pydantic import BaseModel

from llamaport.integrations._native import tool_choice as native_tool_choice
from llamaport.integrations.langchain._base import PROVIDER, Generating, arelay, relay
from llamaport.integrations.langchain._messages import (
    chunk_from_native,
    message_from_native,
    to_native,
)

__all__ = ["ChatLlamaport"]

_PROFILE_TIMEOUT = 10.0
"""Seconds to wait for ``/api/show`` when filling ``profile`` (a failure leaves it None)."""

StructuredMethod = Literal["json_schema", "function_calling", "json_mode"]


def _json_schema(schema: dict[str, Any] | type) -> dict[str, Any]:
    """The schema to constrain decoding to; a TypedDict's keys all become required."""
    if isinstance(schema, type) and is_basemodel_subclass(schema):
        if hasattr(schema, "model_json_schema"):
            return dict(schema.model_json_schema())
        return convert_to_json_schema(schema)
    converted = convert_to_json_schema(schema)
    if isinstance(schema, type):
        converted["required"] = list(converted.get("properties", {}))
    return converted


class ChatLlamaport(Generating, BaseChatModel):
    """Chat with a llamaport (or Ollama) server.

    ```python
    from llamaport.integrations.langchain import ChatLlamaport

    llm = ChatLlamaport(model="smollm2:135m", temperature=0, max_tokens=64)
    llm.invoke("Hello!")
    ```
    """

    streaming: bool = False
    """Make ``invoke`` go through the stream (core reads this field)."""
    conversation: str | None = None
    """A server-side conversation id: the server keeps the history under it."""

    @property
    def _llm_type(self) -> str:
        return "chat-llamaport"

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> LangSmithParams:
        params = super()._get_ls_params(stop=stop, **kwargs)
        params["ls_provider"] = PROVIDER
        return params

    def _resolve_model_profile(self) -> ModelProfile | None:
        with self._connect(min(self.timeout or _PROFILE_TIMEOUT, _PROFILE_TIMEOUT), 0) as client:
            info = client.model_info(self.model)
        profile = ModelProfile(
            text_inputs=True,
            text_outputs=True,
            tool_calling=info.tool_calling,
            tool_choice=info.llamaport,
            structured_output=True,
            image_inputs="vision" in info.capabilities,
            reasoning_output="thinking" in info.capabilities,
        )
        if info.context_length:
            profile["max_input_tokens"] = info.context_length
        return profile

    def _chat_body(
        self, messages: list[BaseMessage], stop: list[str] | None, stream: bool, kwargs: Any
    ) -> dict[str, Any]:
        kwargs = dict(kwargs)
        body = self._inference_body(self.model, stop, kwargs)
        body["messages"] = to_native(messages)
        body["stream"] = stream
        if tools := kwargs.pop("tools", None):
            body["tools"] = tools
            names = [t["function"]["name"] for t in tools]
            choice = native_tool_choice(kwargs.pop("tool_choice", None), names)
            if choice is not None:
                body["tool_choice"] = choice
        if conversation := kwargs.pop("conversation", self.conversation):
            body["conversation"] = conversation
        return body

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        (answer,) = self._http().chat(self._chat_body(messages, stop, False, kwargs))
        return ChatResult(generations=[message_from_native(answer)])

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        body = self._chat_body(messages, stop, False, kwargs)
        (answer,) = [part async for part in self._http().achat(body)]
        return ChatResult(generations=[message_from_native(answer)])

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        body = self._chat_body(messages, stop, True, kwargs)
        yield from relay(self._http().chat(body), chunk_from_native, run_manager)

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        body = self._chat_body(messages, stop, True, kwargs)
        async for chunk in arelay(self._http().achat(body), chunk_from_native, run_manager):
            yield chunk

    def bind_tools(
        self,
        tools: Sequence[dict[str, Any] | type | Callable[..., Any] | BaseTool],
        *,
        tool_choice: dict[str, Any] | str | bool | None = None,
        strict: bool | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        """Bind tools; ``tool_choice`` ("auto", "none", "any"/"required", a tool name)
        is enforced by the server with a grammar, so a forced call always comes."""
        formatted = [convert_to_openai_tool(tool, strict=strict) for tool in tools]
        names = [t["function"]["name"] for t in formatted]
        choice = native_tool_choice(tool_choice, names)
        if choice is not None:
            kwargs["tool_choice"] = choice
        return super().bind(tools=formatted, **kwargs)

    def with_structured_output(
        self,
        schema: dict[str, Any] | type,
        *,
        method: StructuredMethod = "json_schema",
        include_raw: bool = False,
        strict: bool | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, dict[str, Any] | BaseModel]:
        """Answers that match ``schema``, guaranteed by the server's constrained decoding.

        ``json_schema`` (default) sends the schema as native ``format``;
        ``function_calling`` forces a call to a tool made from it; ``json_mode``
        sends ``format: "json"`` (the prompt must describe the keys).
        """
        if kwargs:
            raise ValueError(f"unsupported arguments: {sorted(kwargs)}")
        pydantic = isinstance(schema, type) and is_basemodel_subclass(schema)
        traced = {"kwargs": {"method": method}, "schema": schema}
        parser: Runnable[Any, Any]
        if method == "function_calling":
            tool = convert_to_openai_tool(schema, strict=strict)
            name = tool["function"]["name"]
            traced["schema"] = tool
            llm = self.bind_tools(
                [schema], tool_choice=name, strict=strict, ls_structured_output_format=traced
            )
            parser = (
                PydanticToolsParser(tools=[schema], first_tool_only=True)  # type: ignore[list-item]
                if pydantic
                else JsonOutputKeyToolsParser(key_name=name, first_tool_only=True)
            )
        elif method in ("json_schema", "json_mode"):
            form = _json_schema(schema) if method == "json_schema" else "json"
            llm = self.bind(format=form, ls_structured_output_format=traced)
            parser = (
                PydanticOutputParser(pydantic_object=schema)  # type: ignore[arg-type]
                if pydantic
                else JsonOutputParser()
            )
        else:
            raise ValueError(
                f"unknown method {method!r}: use json_schema, function_calling or json_mode"
            )
        if not include_raw:
            return llm | parser
        parsed = RunnablePassthrough.assign(
            parsed=itemgetter("raw") | parser, parsing_error=lambda _: None
        )
        failed = RunnablePassthrough.assign(parsed=lambda _: None)
        return RunnableMap(raw=llm) | parsed.with_fallbacks([failed], exception_key="parsing_error")
