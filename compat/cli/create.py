"""``create MODEL [-f Modelfile] [-q TYPE]``: build a model as Ollama's client does.

The Modelfile is parsed here, with the one parser the server uses. A FROM
or ADAPTER naming a local file (or a folder of GGUFs), relative to the
Modelfile's folder, is hashed and uploaded through ``/api/blobs`` unless the
server already has it (``HEAD``); any other FROM is a model name. Then the
structured ``/api/create`` request is sent. Uploads and the server's
progress (quantizing included) share one display.
"""

from __future__ import annotations

import hashlib
import queue
import threading
from collections.abc import Iterator
from pathlib import Path

from llamaport.compat.cli.commands import CLIError, Console, pull_if_missing, require_server
from llamaport.compat.cli.progress import show_progress
from llamaport.compat.client import Client, JSONObject, ProgressLine
from llamaport.storage.modelfile import Modelfile, ModelfileError, parse_modelfile

__all__ = ["create_model", "modelfile_request"]

_CHUNK = 1 << 20


def _digest(path: Path) -> str:
    hasher = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(_CHUNK):
            hasher.update(block)
    return f"sha256:{hasher.hexdigest()}"


def _local_files(value: str, folder: Path) -> list[Path] | None:
    """The files a FROM/ADAPTER value names on this machine, or None for a model name."""
    path = Path(value).expanduser()
    if not path.is_absolute():
        path = folder / path
    if path.is_file():
        return [path]
    if path.is_dir():
        found = sorted(path.glob("*.gguf"))
        if not found:
            raise CLIError(f"no Modelfile or GGUF files found in {path}")
        return found
    return None


def modelfile_request(
    modelfile: Modelfile, folder: Path
) -> tuple[JSONObject, list[Path], list[Path]]:
    """The ``/api/create`` body for ``modelfile`` (without ``model``/``files``/``adapters``),
    the local model files and the local adapter files it names."""
    body: JSONObject = {}
    models: list[Path] = []
    for value in modelfile.froms:
        local = _local_files(value, folder)
        if local is None:
            body["from"] = value
        else:
            models += local
    adapters: list[Path] = []
    for value in modelfile.adapters:
        local = _local_files(value, folder)
        if local is None:
            raise CLIError(f"ADAPTER {value}: no such file")
        adapters += local
    fields = {
        "template": modelfile.template,
        "system": modelfile.system,
        "license": modelfile.licenses or None,
        "parameters": modelfile.parameters or None,
        "messages": modelfile.messages or None,
        "requires": modelfile.requires,
    }
    body.update((key, value) for key, value in fields.items() if value is not None)
    return body, models, adapters


def _upload(client: Client, path: Path, digest: str) -> Iterator[ProgressLine]:
    """Upload one file unless the server has it, as progress events for the bars."""
    size = path.stat().st_size
    status = f"copying file {digest}"
    if client.has_blob(digest):
        yield ProgressLine(status=status, digest=digest, total=size, completed=size)
        return
    sent: queue.Queue[int | BaseException | None] = queue.Queue()

    def chunks() -> Iterator[bytes]:
        done = 0
        with path.open("rb") as handle:
            while block := handle.read(_CHUNK):
                done += len(block)
                sent.put(done)
                yield block

    def send() -> None:
        try:
            client.upload_blob(digest, chunks(), size)
        except BaseException as exc:
            sent.put(exc)
        else:
            sent.put(None)

    threading.Thread(target=send, name="upload", daemon=True).start()
    while (item := sent.get()) is not None:
        if isinstance(item, BaseException):
            raise item
        yield ProgressLine(status=status, digest=digest, total=size, completed=item)


def _events(
    client: Client, body: JSONObject, models: list[Path], adapters: list[Path]
) -> Iterator[ProgressLine]:
    yield ProgressLine(status="gathering model components")
    for key, paths in (("files", models), ("adapters", adapters)):
        if not paths:
            continue
        refs: dict[str, str] = {}
        for path in paths:
            digest = _digest(path)
            yield from _upload(client, path, digest)
            refs[path.name] = digest
        body[key] = refs
    base = body.get("from")
    if isinstance(base, str):
        yield from pull_if_missing(client, base)
    yield from client.create(body)


def create_model(
    client: Client, console: Console, model: str, file: str | None, quantize: str | None
) -> int:
    """``create``: parse, upload, create; progress on stderr, ``success`` last."""
    require_server(client)
    path = Path(file or "Modelfile").expanduser()
    try:
        text = path.read_bytes()
    except FileNotFoundError:
        if file is not None:
            raise CLIError("specified Modelfile wasn't found") from None
        text = b"FROM .\n"  # as Ollama: the GGUF files of the current folder
    except OSError as exc:
        raise CLIError(f"cannot read {path}: {exc.strerror}") from None
    try:
        modelfile = parse_modelfile(text)
    except ModelfileError as exc:
        raise CLIError(str(exc)) from None
    for warning in modelfile.warnings:
        console.stderr.write(f"warning: {warning}\n")
    body, models, adapters = modelfile_request(modelfile, path.resolve().parent)
    body["model"] = model
    if quantize:
        body["quantize"] = quantize
    show_progress(_events(client, body, models, adapters), console.stderr)
    return 0
