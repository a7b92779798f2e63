"""LlamaIndex classes for llamaport (``pip install llamaport[llama-index]``).

They talk HTTP to a llamaport server, or to an Ollama server, on the native
routes; nothing of the server is imported.
"""

from llamaport.compat.client import ResponseError as APIError
from llamaport.integrations.llama_index.embeddings import LlamaportEmbedding
from llamaport.integrations.llama_index.llms import Llamaport

__all__ = ["APIError", "Llamaport", "LlamaportEmbedding"]
