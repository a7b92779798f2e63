"""LangChain chat with llamaport: invoke, stream, a forced tool call, structured output.

pip install "llamaport[langchain]"
LLAMAPORT_URL=http://127.0.0.1:11434 python examples/langchain_chat.py
"""

from __future__ import annotations

import os

from langchain_core.tools import tool
from pydantic import BaseModel, Field

from llamaport.integrations.langchain import ChatLlamaport

BASE_URL = os.environ.get("LLAMAPORT_URL", "http://127.0.0.1:11434")
MODEL = os.environ.get("LLAMAPORT_MODEL", "smollm2:135m")


@tool
def get_weather(city: str) -> str:
    """Current weather in a city."""
    return f"It is sunny in {city}."


class City(BaseModel):
    name: str = Field(max_length=30)
    country: str = Field(max_length=30)


def main() -> None:
    llm = ChatLlamaport(model=MODEL, base_url=BASE_URL, temperature=0, max_tokens=48)

    reply = llm.invoke("Say hello to a llama.")
    print("invoke:", reply.content, reply.usage_metadata)

    print("stream:", "".join(str(chunk.content) for chunk in llm.stream("Count to five.")))

    # tool_choice is enforced by the server's grammar: the call always comes.
    with_tools = llm.bind_tools([get_weather], tool_choice="get_weather")
    call = with_tools.invoke("What is the weather in Paris?").tool_calls[0]
    print("tool call:", call["name"], call["args"], "->", get_weather.invoke(call["args"]))

    # The schema goes to the server as `format`: the answer always validates.
    city = llm.with_structured_output(City).invoke("Name a city and its country.")
    print("structured:", city)


if __name__ == "__main__":
    main()
