"""Server-side history with the official ``openai`` SDK against a running llamaport.

The server keeps the conversation: each request sends only the new turn, and
the history survives a server restart. Run it against a server::

    llamaport serve &
    python examples/conversation.py                  # LLAMAPORT_HOST or 127.0.0.1:11434
    python examples/conversation.py http://host:port

It creates a conversation, asks two questions in it, continues once more
with ``previous_response_id`` (a chain without a conversation), prints the
stored items and deletes the conversation again.
"""

from __future__ import annotations

import os
import sys

import openai

MODEL = os.environ.get("LLAMAPORT_EXAMPLE_MODEL", "smollm2:135m")


def base_url(argv: list[str]) -> str:
    """The server from the command line, else ``LLAMAPORT_HOST``, else Ollama's default."""
    host = argv[1] if len(argv) > 1 else os.environ.get("LLAMAPORT_HOST") or "127.0.0.1:11434"
    if "://" not in host:
        host = f"http://{host}"
    return host.rstrip("/") + "/v1"


def main(argv: list[str]) -> int:
    client = openai.OpenAI(base_url=base_url(argv), api_key="llamaport")
    conversation = client.conversations.create(metadata={"example": "conversation.py"})
    print(f"conversation {conversation.id}")

    for question in ("What is the capital of France?", "And of Italy?"):
        reply = client.responses.create(
            model=MODEL,
            conversation=conversation.id,
            input=question,
            max_output_tokens=32,
        )
        print(f"> {question}\n{reply.output_text}\n")

    follow_up = client.responses.create(
        model=MODEL,
        previous_response_id=reply.id,
        input="Say that again in one word.",
        max_output_tokens=16,
    )
    print(f"> (chained on {reply.id})\n{follow_up.output_text}\n")

    items = client.conversations.items.list(conversation.id, order="asc")
    for item in items:
        if item.type == "message":
            text = " ".join(part.text for part in item.content if hasattr(part, "text"))
            print(f"[{item.role}] {text}")

    client.conversations.delete(conversation.id)
    print("deleted")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
