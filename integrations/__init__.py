"""First-party LangChain and LlamaIndex integrations (they talk HTTP only)."""

__all__: list[str] = []
