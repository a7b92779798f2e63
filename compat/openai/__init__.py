"""OpenAI's ``/v1`` face: it translates to and from the runtime, nothing more.

``protocol`` holds the request bodies, ``translate`` the pure functions between
them and :mod:`llamaport.runtime.types`, ``routes`` the thin FastAPI routes.
"""

from llamaport.compat.openai.routes import router

__all__ = ["router"]
