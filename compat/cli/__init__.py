"""The ``llamaport`` command line; the entry point is :func:`llamaport.compat.cli.main.main`.

Nothing is re-exported here: importing ``main`` at package import would make
``python -m llamaport.compat.cli.main`` load the module twice.
"""

__all__: list[str] = []
