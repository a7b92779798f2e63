"""``Llamaport``: a LlamaIndex function-calling LLM over native ``/api/chat`` and ``/api/generate``.

Beyond llama-index-llms-ollama: ``tool_required`` becomes ``tool_choice:
"required"``, which the server enforces by grammar; tool calls keep their
ids; ``num_ctx`` is sent only when ``context_window`` was set (the metadata
still reports the model's trained context from ``/api/show``); complete goes
to ``/api/generate``, so ``formatted=True`` sends a raw prompt.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Generator, Sequence
from typing import TYPE_CHECKING, Any, cast

from llama_index.core.base.llms.types import (
    ChatMessage,
    ChatResponse,
    ChatResponseAsyncGen,
    ChatResponseGen,
    CompletionResponse,
    CompletionResponseAsyncGen,
    CompletionResponseGen,
    LLMMetadata,
)
from llama_index.core.bridge.pydantic import Field, PrivateAttr
from llama_index.core.llms.callbacks import llm_chat_callback, llm_completion_callback
from llama_index.core.llms.function_calling import FunctionCallingLLM
from llama_index.core.llms.llm import ToolSelection
from llama_index.core.llms.utils import parse_partial_json
from llama_index.core.prompts import PromptTemplate
from llama_index.core.types import Model, PydanticProgramMode

from llamaport.compat.client import ChatChunk, GenerateChunk, ModelInfo
from llamaport.integrations._native import drop_none
from llamaport.integrations.llama_index._base import Connection
from llamaport.integrations.llama_index._messages import (
    assistant_message,
    raw_with_usage,
    to_native,
    tool_call_blocks,
)

if TYPE_CHECKING:
    from llama_index.core.tools.types import BaseTool

__all__ = ["Llamaport"]

DEFAULT_CONTEXT_WINDOW = 2048
"""Reported when ``/api/show`` names no context length (llama-index needs a number)."""
DEFAULT_NUM_OUTPUTS = 256


class Llamaport(Connection, FunctionCallingLLM):
    """A llamaport (or Ollama) model for LlamaIndex.

    ```python
    from llamaport.integrations.llama_index import Llamaport

    llm = Llamaport(model="smollm2:135m", max_tokens=64)
    llm.complete("Llamas are")
    ```
    """

    model: str = Field(description="The model name, e.g. smollm2:135m.")
    temperature: float | None = Field(default=None)
    max_tokens: int | None = Field(default=None, description="Sent as num_predict.")
    context_window: int = Field(
        default=-1, description="num_ctx to request; -1 keeps the server's and asks /api/show."
    )
    additional_kwargs: dict[str, Any] = Field(
        default_factory=dict, description="More native options, e.g. top_k or seed."
    )
    json_mode: bool = Field(default=False, description='Send format: "json".')
    thinking: bool | str | None = Field(default=None, description="Sent as native think.")
    is_function_calling_model: bool | None = Field(
        default=None, description="None: ask the server (llamaport serves tools to every model)."
    )

    _info: ModelInfo | None = PrivateAttr(default=None)

    @classmethod
    def class_name(cls) -> str:
        return "Llamaport_llm"

    def _model_info(self) -> ModelInfo:
        if self._info is None:
            self._info = self._http().model_info(self.model)
        return self._info

    @property
    def metadata(self) -> LLMMetadata:
        info = self._model_info()
        calling = self.is_function_calling_model
        return LLMMetadata(
            context_window=(
                self.context_window
                if self.context_window > 0
                else info.context_length or DEFAULT_CONTEXT_WINDOW
            ),
            num_output=self.max_tokens or DEFAULT_NUM_OUTPUTS,
            model_name=self.model,
            is_chat_model=True,
            is_function_calling_model=info.tool_calling if calling is None else calling,
        )

    def _body(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        kwargs = dict(kwargs)
        options = drop_none(
            {
                **self.additional_kwargs,
                "temperature": self.temperature,
                "num_predict": self.max_tokens,
                "num_ctx": self.context_window if self.context_window > 0 else None,
                **kwargs.pop("options", {}),
            }
        )
        return drop_none(
            {
                "model": kwargs.pop("model", self.model),
                "options": options,
                "format": kwargs.pop("format", "json" if self.json_mode else None),
                "think": kwargs.pop("think", self.thinking),
                "keep_alive": kwargs.pop("keep_alive", self.keep_alive),
                "tools": kwargs.pop("tools", None),
                "tool_choice": kwargs.pop("tool_choice", None),
            }
        )

    def _chat_body(
        self, messages: Sequence[ChatMessage], stream: bool, kwargs: dict[str, Any]
    ) -> dict[str, Any]:
        return {**self._body(kwargs), "messages": to_native(messages), "stream": stream}

    def _generate_body(
        self, prompt: str, formatted: bool, stream: bool, kwargs: dict[str, Any]
    ) -> dict[str, Any]:
        body = {**self._body(kwargs), "prompt": prompt, "stream": stream}
        if formatted:
            body["raw"] = True
        return body

    @staticmethod
    def _chat_response(part: ChatChunk) -> ChatResponse:
        message = part.message
        reply = assistant_message(
            message.content, message.thinking or "", tool_call_blocks(message)
        )
        return ChatResponse(message=reply, raw=raw_with_usage(part))

    @llm_chat_callback()
    def chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        (answer,) = self._http().chat(self._chat_body(messages, False, kwargs))
        return self._chat_response(answer)

    @llm_chat_callback()
    async def achat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        body = self._chat_body(messages, False, kwargs)
        (answer,) = [part async for part in self._http().achat(body)]
        return self._chat_response(answer)

    @staticmethod
    def _chat_stepper() -> Any:
        """A function from each native chunk to the cumulative ``ChatResponse``."""
        text: list[str] = []
        thinking: list[str] = []
        calls: list[Any] = []

        def step(part: ChatChunk) -> ChatResponse:
            message = part.message
            delta = message.content
            text.append(delta)
            thinking.append(message.thinking or "")
            calls.extend(tool_call_blocks(message))
            reply = assistant_message("".join(text), "".join(thinking), list(calls))
            extra = {"thinking_delta": message.thinking} if message.thinking else {}
            return ChatResponse(
                message=reply, delta=delta, raw=raw_with_usage(part), additional_kwargs=extra
            )

        return step

    @llm_chat_callback()
    def stream_chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponseGen:
        body = self._chat_body(messages, True, kwargs)

        def gen() -> Generator[ChatResponse, None, None]:
            step = self._chat_stepper()
            for part in self._http().chat(body):
                yield step(part)

        return gen()

    @llm_chat_callback()
    async def astream_chat(
        self, messages: Sequence[ChatMessage], **kwargs: Any
    ) -> ChatResponseAsyncGen:
        body = self._chat_body(messages, True, kwargs)

        async def gen() -> AsyncGenerator[ChatResponse, None]:
            step = self._chat_stepper()
            async for part in self._http().achat(body):
                yield step(part)

        return gen()

    @staticmethod
    def _completion(part: GenerateChunk, text: str = "") -> CompletionResponse:
        delta = part.response
        return CompletionResponse(text=text + delta, delta=delta, raw=raw_with_usage(part))

    @llm_completion_callback()
    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        (answer,) = self._http().generate(self._generate_body(prompt, formatted, False, kwargs))
        return self._completion(answer)

    @llm_completion_callback()
    async def acomplete(
        self, prompt: str, formatted: bool = False, **kwargs: Any
    ) -> CompletionResponse:
        body = self._generate_body(prompt, formatted, False, kwargs)
        (answer,) = [part async for part in self._http().agenerate(body)]
        return self._completion(answer)

    @llm_completion_callback()
    def stream_complete(
        self, prompt: str, formatted: bool = False, **kwargs: Any
    ) -> CompletionResponseGen:
        body = self._generate_body(prompt, formatted, True, kwargs)

        def gen() -> Generator[CompletionResponse, None, None]:
            text = ""
            for part in self._http().generate(body):
                response = self._completion(part, text)
                text = response.text
                yield response

        return gen()

    @llm_completion_callback()
    async def astream_complete(
        self, prompt: str, formatted: bool = False, **kwargs: Any
    ) -> CompletionResponseAsyncGen:
        body = self._generate_body(prompt, formatted, True, kwargs)

        async def gen() -> AsyncGenerator[CompletionResponse, None]:
            text = ""
            async for part in self._http().agenerate(body):
                response = self._completion(part, text)
                text = response.text
                yield response

        return gen()

    def _prepare_chat_with_tools(
        self,
        tools: Sequence[BaseTool],
        user_msg: str | ChatMessage | None = None,
        chat_history: list[ChatMessage] | None = None,
        verbose: bool = False,
        allow_parallel_tool_calls: bool = False,
        tool_required: bool = False,
        **kwargs: Any,
    ) -> dict[str, Any]:
        """``tool_required`` is enforced: the server decodes a call under a grammar."""
        messages = list(chat_history or [])
        if user_msg is not None:
            messages.append(
                user_msg if isinstance(user_msg, ChatMessage) else ChatMessage(content=user_msg)
            )
        return {
            "messages": messages,
            "tools": [t.metadata.to_openai_tool(skip_length_check=True) for t in tools] or None,
            "tool_choice": "required" if tool_required and tools else None,
            **kwargs,
        }

    def _validate_chat_with_tools_response(
        self,
        response: ChatResponse,
        tools: Sequence[BaseTool],
        allow_parallel_tool_calls: bool = False,
        **kwargs: Any,
    ) -> ChatResponse:
        if not allow_parallel_tool_calls:
            calls = [b for b in response.message.blocks if b.block_type == "tool_call"]
            others = [b for b in response.message.blocks if b.block_type != "tool_call"]
            response.message.blocks = others + calls[:1]
        return response

    def get_tool_calls_from_response(
        self, response: ChatResponse, error_on_no_tool_call: bool = True, **kwargs: Any
    ) -> list[ToolSelection]:
        calls = [
            ToolSelection(
                tool_id=block.tool_call_id or block.tool_name,
                tool_name=block.tool_name,
                tool_kwargs=(
                    block.tool_kwargs
                    if isinstance(block.tool_kwargs, dict)
                    else parse_partial_json(block.tool_kwargs)
                ),
            )
            for block in response.message.blocks
            if block.block_type == "tool_call"
        ]
        if not calls and error_on_no_tool_call:
            raise ValueError(f"expected at least one tool call, got: {response.message.content!r}")
        return calls

    def structured_predict(
        self,
        output_cls: type[Model],
        prompt: PromptTemplate,
        llm_kwargs: dict[str, Any] | None = None,
        **prompt_args: Any,
    ) -> Model:
        """In the default program mode the schema goes out as native ``format``, so the
        answer is decoded under its grammar and always validates."""
        if self.pydantic_program_mode != PydanticProgramMode.DEFAULT:
            return cast(
                Model, super().structured_predict(output_cls, prompt, llm_kwargs, **prompt_args)
            )
        kwargs = {**(llm_kwargs or {}), "format": output_cls.model_json_schema()}
        response = self.chat(prompt.format_messages(**prompt_args), **kwargs)
        return output_cls.model_validate_json(response.message.content or "")

    async def astructured_predict(
        self,
        output_cls: type[Model],
        prompt: PromptTemplate,
        llm_kwargs: dict[str, Any] | None = None,
        **prompt_args: Any,
    ) -> Model:
        if self.pydantic_program_mode != PydanticProgramMode.DEFAULT:
            predicted = await super().astructured_predict(
                output_cls, prompt, llm_kwargs, **prompt_args
            )
            return cast(Model, predicted)
        kwargs = {**(llm_kwargs or {}), "format": output_cls.model_json_schema()}
        response = await self.achat(prompt.format_messages(**prompt_args), **kwargs)
        return output_cls.model_validate_json(response.message.content or "")
