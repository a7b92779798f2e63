"""The OpenAI SDK against llamaport: chat, streaming, tools, structured output, embeddings.

    LLAMAPORT_URL=http://127.0.0.1:11434 python examples/openai_sdk.py

Only ``base_url`` changes; the API key is not checked but the SDK wants one.
"""

from __future__ import annotations

import os

from openai import OpenAI
from pydantic import BaseModel, Field

BASE_URL = os.environ.get("LLAMAPORT_URL", "http://127.0.0.1:11434")
MODEL = os.environ.get("LLAMAPORT_MODEL", "smollm2:135m")

client = OpenAI(base_url=f"{BASE_URL}/v1", api_key="unused")


class City(BaseModel):
    name: str = Field(max_length=30)
    country: str = Field(max_length=30)


def main() -> None:
    ask = [{"role": "user", "content": "Say hello to a llama."}]

    reply = client.chat.completions.create(model=MODEL, messages=ask, max_tokens=32)
    print("chat:", reply.choices[0].message.content)

    print("stream:", end=" ")
    for chunk in client.chat.completions.create(
        model=MODEL,
        messages=ask,
        max_tokens=32,
        stream=True,
    ):
        if chunk.choices:
            print(chunk.choices[0].delta.content or "", end="", flush=True)
    print()

    weather = {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Current weather in a city",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string", "maxLength": 20}},
                "required": ["city"],
            },
        },
    }
    called = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "What is the weather in Paris?"}],
        tools=[weather],
        tool_choice="required",  # enforced by grammar: a call always comes
        max_tokens=48,
    )
    for call in called.choices[0].message.tool_calls or []:
        print("tool call:", call.function.name, call.function.arguments)

    parsed = client.chat.completions.parse(
        model=MODEL,
        messages=[{"role": "user", "content": "Name a city and its country."}],
        response_format=City,
        max_tokens=256,
    )
    print("structured:", parsed.choices[0].message.parsed)

    vectors = client.embeddings.create(model=MODEL, input=["llamas", "alpacas"])
    print("embeddings:", len(vectors.data), "vectors of", len(vectors.data[0].embedding))


if __name__ == "__main__":
    main()
