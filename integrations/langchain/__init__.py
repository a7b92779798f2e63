"""LangChain classes for llamaport (``pip install llamaport[langchain]``).

They talk HTTP to a llamaport server, or to an Ollama server, on the native
routes; nothing of the server is imported.
"""

from llamaport.compat.client import ResponseError as APIError
from llamaport.integrations.langchain.chat_models import ChatLlamaport
from llamaport.integrations.langchain.embeddings import LlamaportEmbeddings
from llamaport.integrations.langchain.llms import LlamaportLLM

__all__ = ["APIError", "ChatLlamaport", "LlamaportEmbeddings", "LlamaportLLM"]
