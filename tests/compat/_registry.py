"""Registries for the pull and push tests, all on loopback with bounded waits.

* :func:`start_docker_registry`: Debian's ``docker-registry`` (distribution
  2.8), the real thing, with a temporary storage dir and optional htpasswd.
* :class:`FakeRegistry`: the OCI routes of a pull and a push, in memory; it can cut
  blob downloads after a byte budget (an interrupted pull) or serve bytes
  that do not match their digest. A real registry can do neither on demand.
* :class:`FakeHub`: the Hugging Face endpoints huggingface_hub uses for a
  download (model info with file metadata, ``resolve`` with HEAD and GET).
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs

import httpx

from llamaport.storage.manifest import MEDIA_TYPE_MANIFEST
from tests.conftest import free_port

WAIT_SECONDS = 30.0
_budget_lock = threading.Lock()
SLICE = 1 << 20


@dataclass
class DockerRegistry:
    host: str
    proc: subprocess.Popen[bytes]
    log: Path

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


def docker_registry_binary() -> str | None:
    return shutil.which("docker-registry") or (
        "/usr/bin/docker-registry" if Path("/usr/bin/docker-registry").exists() else None
    )


def start_docker_registry(workdir: Path, users: dict[str, str] | None = None) -> DockerRegistry:
    """``docker-registry serve`` on a free loopback port; htpasswd auth when ``users``."""
    binary = docker_registry_binary()
    assert binary is not None, "docker-registry is missing: run `make system-deps`"
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    auth = ""
    if users:
        htpasswd = workdir / "htpasswd"
        for index, (user, password) in enumerate(users.items()):
            flags = "-Bbc" if index == 0 else "-Bb"
            subprocess.run(["htpasswd", flags, str(htpasswd), user, password], check=True)
        auth = f"auth:\n  htpasswd:\n    realm: llamaport-test\n    path: {htpasswd}\n"
    config = workdir / "config.yml"
    config.write_text(
        "version: 0.1\n"
        "log:\n  level: info\n"
        f"storage:\n  filesystem:\n    rootdirectory: {workdir / 'data'}\n"
        f"http:\n  addr: 127.0.0.1:{port}\n  secret: llamaport-test\n" + auth
    )
    log = workdir / "registry.log"
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [binary, "serve", str(config)],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    registry = DockerRegistry(host=f"127.0.0.1:{port}", proc=proc, log=log)
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if httpx.get(f"http://{registry.host}/v2/", timeout=1).status_code in (200, 401):
                return registry
        except httpx.HTTPError:
            time.sleep(0.1)
    registry.stop()
    raise RuntimeError(f"docker-registry did not start:\n{registry.log_text()[-3000:]}")


Handler = Callable[[BaseHTTPRequestHandler], None]


class LoopbackServer:
    """A threaded HTTP server on 127.0.0.1 whose requests go to :meth:`handle`."""

    def __init__(self) -> None:
        owner = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                owner.handle(self)

            do_HEAD = do_POST = do_PATCH = do_PUT = do_GET

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.httpd.daemon_threads = True
        self.host = f"127.0.0.1:{self.httpd.server_address[1]}"
        self.url = f"http://{self.host}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def handle(self, request: BaseHTTPRequestHandler) -> None:
        raise NotImplementedError


def send_bytes(
    request: BaseHTTPRequestHandler,
    data: bytes,
    headers: dict[str, str],
    budget: list[int] | None = None,
    delay: float = 0.0,
) -> int:
    """Answer with ``data`` honouring ``Range``; returns the bytes sent.

    With a ``budget`` (a one-item list shared by all requests), the body is
    cut once the budget is spent: the connection closes mid-body. ``delay``
    is a pause after each 1 MiB, to make a download slow enough to interrupt.
    """
    start, end, status = 0, len(data), 200
    match = re.fullmatch(r"bytes=(\d+)-(\d*)", request.headers.get("Range") or "")
    if match:
        start = int(match.group(1))
        end = int(match.group(2)) + 1 if match.group(2) else len(data)
        status = 206
    request.send_response(status)
    for key, value in headers.items():
        request.send_header(key, value)
    request.send_header("Accept-Ranges", "bytes")
    request.send_header("Content-Length", str(end - start))
    if status == 206:
        request.send_header("Content-Range", f"bytes {start}-{end - 1}/{len(data)}")
    request.end_headers()
    if request.command == "HEAD":
        return 0
    body = data[start:end]
    if budget is not None:
        with _budget_lock:  # parallel part downloads share one budget
            body = body[: max(0, budget[0])]
            budget[0] -= len(body)
        request.close_connection = True
    try:
        for offset in range(0, len(body), SLICE):
            request.wfile.write(body[offset : offset + SLICE])
            request.wfile.flush()
            time.sleep(delay)
    except OSError:  # the client hung up
        request.close_connection = True
    return len(body)


def send_status(
    request: BaseHTTPRequestHandler, status: int, body: bytes, headers: dict[str, str]
) -> None:
    request.send_response(status)
    for key, value in {"Content-Type": "application/json", **headers}.items():
        request.send_header(key, value)
    request.send_header("Content-Length", str(len(body)))
    request.end_headers()
    if request.command != "HEAD":
        request.wfile.write(body)


def sha256(data: bytes) -> str:
    return f"sha256:{hashlib.sha256(data).hexdigest()}"


@dataclass
class FakeRegistry(LoopbackServer):
    """Manifests and blobs from memory; records each blob ``Range`` it is asked for."""

    manifests: dict[str, bytes] = field(default_factory=dict)
    blobs: dict[str, bytes] = field(default_factory=dict)
    ranges: list[tuple[str, str]] = field(default_factory=list)
    """``(digest, Range header)`` of every blob GET."""
    uploads: dict[str, bytearray] = field(default_factory=dict)
    budget: list[int] | None = None
    """Blob bytes left to send before every blob download is cut; None: no limit."""
    delay: float = 0.0
    """Seconds to pause after each MiB of a blob."""

    def __post_init__(self) -> None:
        super().__init__()

    token: str | None = None
    """When set, every ``/v2/`` request needs ``Authorization: Bearer <token>``."""
    issued: str = ""
    """What the realm hands out, when it should differ from ``token``."""
    realm: str = ""
    """The token URL the challenge names; default ``<url>/token``."""
    token_requests: list[tuple[str, str]] = field(default_factory=list)
    """``(query, Authorization header)`` of each request to the token realm."""

    def _authorized(self, request: BaseHTTPRequestHandler) -> bool:
        path, _, query = request.path.partition("?")
        if path == "/token":
            self.token_requests.append((query, request.headers.get("Authorization") or ""))
            body = json.dumps({"token": self.issued or self.token}).encode()
            send_bytes(request, body, {"Content-Type": "application/json"})
            return False
        if self.token is None or request.headers.get("Authorization") == f"Bearer {self.token}":
            return True
        repository = re.sub(r"^/v2/(.+)/(manifests|blobs)/.*$", r"\1", path)
        challenge = (
            f'Bearer realm="{self.realm or self.url + "/token"}",service="fake",'
            f'scope="repository:{repository}:pull"'
        )
        request.rfile.read(int(request.headers.get("Content-Length") or 0))
        send_status(
            request, 401, b'{"errors":[{"code":"UNAUTHORIZED"}]}', {"WWW-Authenticate": challenge}
        )
        return False

    def _receive(self, request: BaseHTTPRequestHandler) -> None:
        """Uploads (POST, chunked PATCH, PUT ?digest=) and manifest PUTs, as distribution does."""
        path, _, query = request.path.partition("?")
        body = request.rfile.read(int(request.headers.get("Content-Length") or 0))
        session = re.fullmatch(r"/upload/([0-9a-f]+)", path)
        manifest = re.fullmatch(r"/v2/(.+)/manifests/([^/]+)", path)
        if request.command == "POST" and re.fullmatch(r"/v2/.+/blobs/uploads/", path):
            key = uuid.uuid4().hex
            self.uploads[key] = bytearray()
            send_status(request, 202, b"", {"Location": f"/upload/{key}"})
        elif request.command == "PATCH" and session:
            self.uploads[session.group(1)] += body
            send_status(request, 202, b"", {"Location": path})
        elif request.command == "PUT" and session:
            data = bytes(self.uploads.pop(session.group(1))) + body
            digest = parse_qs(query)["digest"][0]
            if sha256(data) != digest:
                send_status(request, 400, b'{"errors":[{"code":"DIGEST_INVALID"}]}', {})
            else:
                self.blobs[digest] = data
                send_status(request, 201, b"", {"Docker-Content-Digest": digest})
        elif request.command == "PUT" and manifest:
            self.manifests[f"{manifest.group(1)}:{manifest.group(2)}"] = body
            send_status(request, 201, b"", {"Docker-Content-Digest": sha256(body)})
        else:
            send_status(request, 405, b"", {})

    def handle(self, request: BaseHTTPRequestHandler) -> None:
        if not self._authorized(request):
            return
        if request.command not in ("GET", "HEAD"):
            self._receive(request)
            return
        manifest = re.fullmatch(r"/v2/(.+)/manifests/([^/]+)", request.path)
        blob = re.fullmatch(r"/v2/(.+)/blobs/(sha256:[0-9a-f]{64})", request.path)
        if manifest and f"{manifest.group(1)}:{manifest.group(2)}" in self.manifests:
            data = self.manifests[f"{manifest.group(1)}:{manifest.group(2)}"]
            send_bytes(request, data, {"Content-Type": MEDIA_TYPE_MANIFEST})
        elif blob and blob.group(2) in self.blobs:
            if request.command == "GET":
                self.ranges.append((blob.group(2), request.headers.get("Range") or ""))
                if self.budget is not None and self.budget[0] <= 0:
                    request.close_connection = True  # hang up without an answer
                    return
            data = self.blobs[blob.group(2)]
            headers = {"Content-Type": "application/octet-stream"}
            send_bytes(request, data, headers, self.budget, self.delay)
        else:
            send_status(request, 404, b'{"errors":[{"code":"MANIFEST_UNKNOWN"}]}', {})

    def add_model(
        self, repository: str, tag: str, manifest: bytes, blobs: dict[str, bytes]
    ) -> None:
        self.manifests[f"{repository}:{tag}"] = manifest
        self.blobs.update(blobs)

    def requested_bytes(self, digest: str) -> int:
        """Bytes the recorded GETs asked for of one blob."""
        size = len(self.blobs[digest])
        total = 0
        for value in (r for d, r in self.ranges if d == digest):
            match = re.fullmatch(r"bytes=(\d+)-(\d*)", value)
            if match is None:
                total += size
            else:
                end = int(match.group(2)) + 1 if match.group(2) else size
                total += end - int(match.group(1))
        return total


@dataclass(frozen=True)
class HubFile:
    name: str
    data: bytes | None = None
    path: Path | None = None

    def content(self) -> bytes:
        if self.data is not None:
            return self.data
        assert self.path is not None
        return self.path.read_bytes()


@dataclass
class FakeHub(LoopbackServer):
    """One commit per repo; ``downloads`` records the files fetched with GET."""

    repos: dict[str, list[HubFile]] = field(default_factory=dict)
    downloads: list[str] = field(default_factory=list)
    ranges: list[str] = field(default_factory=list)
    """The ``Range`` header of each file GET."""
    budget: list[int] | None = None
    """As :attr:`FakeRegistry.budget`: file bytes left to send before GETs are cut."""
    commit: str = "0123456789abcdef0123456789abcdef01234567"
    _cache: dict[str, bytes] = field(default_factory=dict)

    def __post_init__(self) -> None:
        super().__init__()

    def _content(self, file: HubFile) -> bytes:
        key = file.name + str(file.path)
        if key not in self._cache:
            self._cache[key] = file.content()
        return self._cache[key]

    def handle(self, request: BaseHTTPRequestHandler) -> None:
        path = request.path.split("?", 1)[0]
        info = re.fullmatch(r"/api/models/([^/]+/[^/]+)", path)
        resolve = re.fullmatch(r"/([^/]+/[^/]+)/resolve/([^/]+)/(.+)", path)
        if info and info.group(1) in self.repos:
            siblings = []
            for file in self.repos[info.group(1)]:
                data = self._content(file)
                digest = hashlib.sha256(data).hexdigest()
                lfs = {"sha256": digest, "size": len(data), "pointerSize": 134}
                siblings.append({"rfilename": file.name, "size": len(data), "lfs": lfs})
            body = json.dumps({"id": info.group(1), "sha": self.commit, "siblings": siblings})
            send_bytes(request, body.encode(), {"Content-Type": "application/json"})
            return
        if resolve and resolve.group(1) in self.repos:
            for file in self.repos[resolve.group(1)]:
                if file.name == resolve.group(3):
                    data = self._content(file)
                    etag = hashlib.sha256(data).hexdigest()
                    headers = {
                        "Content-Type": "application/octet-stream",
                        "X-Repo-Commit": self.commit,
                        "ETag": f'"{etag}"',
                        "X-Linked-Etag": f'"{etag}"',
                        "X-Linked-Size": str(len(data)),
                    }
                    if request.command == "GET":
                        self.downloads.append(file.name)
                        self.ranges.append(request.headers.get("Range") or "")
                    send_bytes(request, data, headers, self.budget)
                    return
        send_status(
            request, 404, b'{"error":"Repository not found"}', {"X-Error-Code": "RepoNotFound"}
        )
