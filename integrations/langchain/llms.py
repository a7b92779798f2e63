"""``LlamaportLLM``: a LangChain text-completion model over native ``/api/generate``."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseLLM, LangSmithParams
from langchain_core.outputs import Generation, GenerationChunk, LLMResult

from llamaport.compat.client import GenerateChunk
from llamaport.integrations.langchain._base import PROVIDER, Generating, arelay, relay

__all__ = ["LlamaportLLM"]


def _generation(part: GenerateChunk) -> GenerationChunk:
    info = None
    if part.done:
        info = part.model_dump(exclude_unset=True, exclude={"response", "context"})
        info["model_name"] = part.model
    return GenerationChunk(text=part.response, generation_info=info)


class LlamaportLLM(Generating, BaseLLM):
    """Complete a prompt with a llamaport (or Ollama) server.

    ```python
    from llamaport.integrations.langchain import LlamaportLLM

    llm = LlamaportLLM(model="smollm2:135m", max_tokens=32)
    llm.invoke("The capital of France is")
    ```
    """

    system: str | None = None
    """A system prompt, in place of the model's own."""
    raw: bool = False
    """Send the prompt without the model's template."""

    @property
    def _llm_type(self) -> str:
        return "llamaport-llm"

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> LangSmithParams:
        params = super()._get_ls_params(stop=stop, **kwargs)
        params["ls_provider"] = PROVIDER
        return params

    def _body(
        self, prompt: str, stop: list[str] | None, stream: bool, kwargs: Any
    ) -> dict[str, Any]:
        kwargs = dict(kwargs)
        body = self._inference_body(self.model, stop, kwargs)
        body.update(prompt=prompt, stream=stream)
        if system := kwargs.pop("system", self.system):
            body["system"] = system
        if kwargs.pop("raw", self.raw):
            body["raw"] = True
        return body

    def _generate(
        self,
        prompts: list[str],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> LLMResult:
        answers = [self._http().generate(self._body(p, stop, False, kwargs)) for p in prompts]
        return LLMResult(generations=[[_generation(a) for a in answer] for answer in answers])

    async def _agenerate(
        self,
        prompts: list[str],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> LLMResult:
        async def answer(prompt: str) -> list[Generation]:
            parts = self._http().agenerate(self._body(prompt, stop, False, kwargs))
            return [_generation(part) async for part in parts]

        answers = await asyncio.gather(*(answer(p) for p in prompts))
        return LLMResult(generations=list(answers))

    def _stream(
        self,
        prompt: str,
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[GenerationChunk]:
        parts = self._http().generate(self._body(prompt, stop, True, kwargs))
        yield from relay(parts, _generation, run_manager)

    async def _astream(
        self,
        prompt: str,
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[GenerationChunk]:
        parts = self._http().agenerate(self._body(prompt, stop, True, kwargs))
        async for chunk in arelay(parts, _generation, run_manager):
            yield chunk
