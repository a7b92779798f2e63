"""Blobs, copy and delete over a real server: Ollama's statuses and texts,
and nothing left behind by a refused request."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.compat.native.conftest import digest_of
from tests.conftest import MODEL, Server

BAD_DIGESTS = ["sha256:123", "sha256:" + "g" * 64, "md5:" + "0" * 64, "sha256-..%2F..%2Fx"]


def blob_files(server: Server) -> set[str]:
    return {p.name for p in (server.home / "models" / "blobs").iterdir()}


def temp_files(server: Server) -> list[str]:
    return [p.name for p in (server.home / "models").rglob(".tmp-*")]


def model_names(client: httpx.Client) -> set[str]:
    return {m["name"] for m in client.get("/api/tags").json()["models"]}


# -- blobs -------------------------------------------------------------------------


def test_blob_upload_head_and_reupload(mclient: httpx.Client, manage_server: Server) -> None:
    data = os.urandom(3000)
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    assert mclient.head(f"/api/blobs/{digest}").status_code == 404
    created = mclient.post(f"/api/blobs/{digest}", content=data)
    assert created.status_code == 201, created.text
    assert mclient.head(f"/api/blobs/{digest}").status_code == 200
    assert mclient.post(f"/api/blobs/{digest}", content=data).status_code == 200
    stored = manage_server.home / "models" / "blobs" / f"sha256-{digest[7:]}"
    assert stored.read_bytes() == data


def test_blob_digest_mismatch_keeps_nothing(mclient: httpx.Client, manage_server: Server) -> None:
    claimed = "sha256:" + hashlib.sha256(b"what was promised").hexdigest()
    before = blob_files(manage_server)
    response = mclient.post(f"/api/blobs/{claimed}", content=b"something else")
    assert response.status_code == 400
    got = "sha256:" + hashlib.sha256(b"something else").hexdigest()
    assert response.json() == {"error": f'digest mismatch, expected "{claimed}", got "{got}"'}
    assert blob_files(manage_server) == before
    assert temp_files(manage_server) == []
    assert mclient.head(f"/api/blobs/{claimed}").status_code == 404


def _announce_only(server: Server, path: str, length: int) -> tuple[int, bytes]:
    """Send only the headers of a POST announcing ``length`` bytes (no client
    library sends fewer bytes than it declares) and read the early answer."""
    host, port = server.host.split(":")
    head = f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: {length}\r\n\r\n"
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(head.encode())
        reply = b""
        while b"\r\n\r\n" not in reply or not reply.rstrip().endswith(b"}"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            reply += chunk
    status_line, _, rest = reply.partition(b"\r\n")
    return int(status_line.split()[1]), rest.partition(b"\r\n\r\n")[2]


def test_an_upload_larger_than_the_free_disk_space_is_refused_before_writing(
    manage_server: Server,
) -> None:
    """The announced length is checked against the disk, so nothing is sent in vain."""
    digest = "sha256:" + hashlib.sha256(b"never sent").hexdigest()
    blobs = manage_server.home / "models" / "blobs"
    huge = shutil.disk_usage(blobs).free + (1 << 40)
    before = blob_files(manage_server)
    status, body = _announce_only(manage_server, f"/api/blobs/{digest}", huge)
    assert status == 507
    assert "not enough disk space" in json.loads(body)["error"]
    assert blob_files(manage_server) == before
    assert temp_files(manage_server) == []


def test_the_blob_limit_refuses_announced_and_streamed_uploads(
    start_server: Callable[..., Server],
) -> None:
    srv = start_server(LLAMAPORT_MAX_BLOB_BYTES="1000")
    data = os.urandom(2000)
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    with srv.client() as client:
        announced = client.post(f"/api/blobs/{digest}", content=data)
        streamed = client.post(f"/api/blobs/{digest}", content=iter([data[:600], data[600:]]))
        small = os.urandom(1000)
        fits = client.post(f"/api/blobs/sha256:{hashlib.sha256(small).hexdigest()}", content=small)
    for response in (announced, streamed):
        assert response.status_code == 413
        assert "LLAMAPORT_MAX_BLOB_BYTES" in response.json()["error"]
    assert fits.status_code == 201
    assert temp_files(srv) == []


FULL_DISK_MB = 112
"""A tmpfs models directory this size holds the embedded model's 98 MiB weights
(copied, as a link cannot cross file systems) and little else."""


def _on_a_small_disk(home: Path) -> list[str]:
    """A wrapper that serves from a tmpfs of FULL_DISK_MB at ``home/models``, in a
    mount namespace of its own; skipped where the kernel allows no such namespace."""
    models = home / "models"
    models.mkdir(parents=True)
    probe = subprocess.run(["unshare", "-rm", "true"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip(f"no user mount namespace here: {probe.stderr.decode().strip()}")
    mount = f'mount -t tmpfs -o size={FULL_DISK_MB}m tmpfs "{models}" && exec "$0" "$@"'
    return ["unshare", "-rm", "sh", "-c", mount]


def test_a_disk_that_fills_during_a_streamed_upload_is_a_507(
    start_server: Callable[..., Server], tmp_path: Path
) -> None:
    """A chunked upload announces no length, so only the write can find the disk
    full: the answer is a 507, the partial file is gone, and the server goes on
    (a real full file system, not a fake: a small tmpfs)."""
    home = tmp_path / "home"
    srv = start_server(home, prefix=_on_a_small_disk(home))
    data = os.urandom(32 << 20)
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    pieces = (data[i : i + (1 << 20)] for i in range(0, len(data), 1 << 20))
    with srv.client() as client:
        full = client.post(f"/api/blobs/{digest}", content=pieces)
        assert full.status_code == 507, full.text
        assert "not enough disk space" in full.json()["error"]
        assert temp_files(srv) == []
        assert client.head(f"/api/blobs/{digest}").status_code == 404
        small = os.urandom(1000)
        fits = client.post(f"/api/blobs/sha256:{hashlib.sha256(small).hexdigest()}", content=small)
        assert fits.status_code == 201
        body = {"model": MODEL, "prompt": "Hi", "stream": False, "options": {"num_predict": 2}}
        assert client.post("/api/generate", json=body).status_code == 200


@pytest.mark.parametrize("digest", BAD_DIGESTS)
def test_bad_digest_is_refused(mclient: httpx.Client, digest: str) -> None:
    head = mclient.head(f"/api/blobs/{digest}")
    assert head.status_code in (400, 404)
    post = mclient.post(f"/api/blobs/{digest}", content=b"x")
    assert post.status_code in (400, 404)
    if post.status_code == 400:
        assert post.json() == {"error": "invalid digest format"}


def test_large_blob_streams(mclient: httpx.Client, tmp_path: Path) -> None:
    path = tmp_path / "big.bin"
    path.write_bytes(os.urandom(5 * 1024 * 1024 + 17))
    digest = digest_of(path)

    def chunks() -> object:
        with path.open("rb") as handle:
            while block := handle.read(65536):
                yield block

    response = mclient.post(f"/api/blobs/{digest}", content=chunks())  # type: ignore[arg-type]
    assert response.status_code == 201, response.text
    assert mclient.head(f"/api/blobs/{digest}").status_code == 200


# -- copy and delete -----------------------------------------------------------------


def test_copy_then_delete(mclient: httpx.Client, manage_server: Server) -> None:
    copied = mclient.post("/api/copy", json={"source": MODEL, "destination": "backup/smol:v1"})
    assert copied.status_code == 200
    assert copied.content == b""
    assert "backup/smol:v1" in model_names(mclient)
    blobs = blob_files(manage_server)
    deleted = mclient.request("DELETE", "/api/delete", json={"model": "BACKUP/smol:V1"})
    assert deleted.status_code == 200
    assert deleted.content == b""
    assert "backup/smol:v1" not in model_names(mclient)
    assert blob_files(manage_server) == blobs, "blobs shared with smollm2 must stay"
    again = mclient.request("DELETE", "/api/delete", json={"model": "backup/smol:v1"})
    assert again.status_code == 404
    assert again.json() == {"error": "model 'backup/smol:v1' not found"}


@pytest.mark.parametrize(
    ("body", "status", "error"),
    [
        ({"source": "a b", "destination": "x"}, 400, 'source "a b" is invalid'),
        ({"source": MODEL, "destination": "bad/na me"}, 400, 'destination "bad/na me" is invalid'),
        ({"source": "nope", "destination": "x"}, 404, 'model "nope" not found'),
    ],
    ids=["bad-source", "bad-destination", "missing-source"],
)
def test_copy_errors(mclient: httpx.Client, body: dict[str, str], status: int, error: str) -> None:
    response = mclient.post("/api/copy", json=body)
    assert response.status_code == status
    assert response.json() == {"error": error}


@pytest.mark.parametrize(
    ("body", "status", "error"),
    [
        ({"model": "nope"}, 404, "model 'nope' not found"),
        ({"name": "nope:tag"}, 404, "model 'nope:tag' not found"),
        ({"model": "a b"}, 400, 'name "a b" is invalid'),
        ({"model": ""}, 400, 'name "" is invalid'),
    ],
    ids=["missing", "legacy-name-field", "bad-name", "empty"],
)
def test_delete_errors(
    mclient: httpx.Client, body: dict[str, str], status: int, error: str
) -> None:
    response = mclient.request("DELETE", "/api/delete", json=body)
    assert response.status_code == status
    assert response.json() == {"error": error}


def test_delete_removes_unshared_blobs(mclient: httpx.Client, manage_server: Server) -> None:
    system = f"unique {time.time()}"
    response = mclient.post(
        "/api/create", json={"model": "lonely", "from": MODEL, "system": system}
    )
    assert response.status_code == 200, response.text
    before = blob_files(manage_server)
    assert mclient.request("DELETE", "/api/delete", json={"model": "lonely"}).status_code == 200
    gone = before - blob_files(manage_server)
    assert gone == {"sha256-" + hashlib.sha256(system.encode()).hexdigest()}, "weights stay"


# -- garbage collection ----------------------------------------------------------------


def test_unreferenced_blobs_are_collected_after_the_grace_period(
    mclient: httpx.Client, manage_server: Server
) -> None:
    old, fresh = os.urandom(100), os.urandom(100)
    old_digest, fresh_digest = upload_bytes(mclient, old), upload_bytes(mclient, fresh)
    blobs = manage_server.home / "models" / "blobs"
    stale = time.time() - 2 * 3600
    os.utime(blobs / f"sha256-{old_digest[7:]}", (stale, stale))
    abandoned = blobs / ".tmp-abandoned"
    abandoned.write_bytes(b"half an upload")
    os.utime(abandoned, (stale, stale))
    mclient.post("/api/copy", json={"source": MODEL, "destination": "gc-trigger"})
    assert mclient.request("DELETE", "/api/delete", json={"model": "gc-trigger"}).status_code == 200
    assert mclient.head(f"/api/blobs/{old_digest}").status_code == 404
    assert not abandoned.exists()
    assert mclient.head(f"/api/blobs/{fresh_digest}").status_code == 200, "an upload in progress"


def upload_bytes(client: httpx.Client, data: bytes) -> str:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    assert client.post(f"/api/blobs/{digest}", content=data).status_code == 201
    return digest


@pytest.mark.parametrize(
    ("env", "collected"),
    [({}, True), ({"LLAMAPORT_NOPRUNE": "1"}, False)],
    ids=["prune", "noprune"],
)
def test_collection_runs_at_start_up(
    start_server: Callable[..., Server], tmp_path: Path, env: dict[str, str], collected: bool
) -> None:
    blobs = tmp_path / "gc-home" / "models" / "blobs"
    blobs.mkdir(parents=True)
    orphan = blobs / f"sha256-{'ab' * 32}"
    orphan.write_bytes(b"nobody uses me")
    stale = time.time() - 2 * 3600
    os.utime(orphan, (stale, stale))
    young = blobs / f"sha256-{'cd' * 32}"
    young.write_bytes(b"just uploaded")
    start_server(tmp_path / "gc-home", **env)
    assert orphan.exists() is not collected
    assert young.exists()


def test_an_upload_cut_short_keeps_nothing(mclient: httpx.Client, manage_server: Server) -> None:
    digest = "sha256:" + hashlib.sha256(b"x" * 100_000).hexdigest()
    host, port = manage_server.host.split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        head = (
            f"POST /api/blobs/{digest} HTTP/1.1\r\nHost: {manage_server.host}\r\n"
            "Content-Length: 100000\r\n\r\n"
        )
        sock.sendall(head.encode() + b"x" * 30_000)
        deadline = time.monotonic() + 30
        while not temp_files(manage_server) and time.monotonic() < deadline:
            time.sleep(0.02)  # poll: the server has begun writing the upload
        assert temp_files(manage_server), "the partial upload reached the server"
    deadline = time.monotonic() + 30
    while temp_files(manage_server) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert temp_files(manage_server) == []
    assert mclient.head(f"/api/blobs/{digest}").status_code == 404
    assert mclient.get("/api/version").status_code == 200
