"""Stored conversations' KV state on disk, on real servers: a conversation
resumed after a restart skips its prefill; a file is never restored under
another model or template, and a corrupt one is removed; the folder is bounded;
deleting a conversation removes its files."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from llamaport.runtime.engine.client import EngineClient
from llamaport.runtime.engine.kv_disk import DiskCache, forget_files
from llamaport.runtime.engine.wire import Done, LoadSpec, SamplingParams, Segment
from llamaport.storage.embedded import embedded_gguf_path
from tests.conftest import MODEL, Server
from tests.runtime.engine._conversations import opening

Json = dict[str, Any]
OPTIONS = {"num_predict": 8, "temperature": 0, "seed": 7}
ONE_SLOT = {"LLAMAPORT_NUM_PARALLEL": "1"}
WAIT = 30.0
CHATML = (
    "{{- range .Messages }}<|im_start|>{{ .Role }}\n{{ .Content }}<|im_end|>\n{{ end -}}"
    "<|im_start|>assistant\n"
)


def _files(home: Path) -> set[Path]:
    return set((home / "kv").glob("*/*.kv"))


def _wait(done: Callable[[], bool], what: str) -> None:
    """Files are written on the engine's writer thread: wait (bounded) until ``done``."""
    deadline = time.monotonic() + WAIT
    while not done():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def _new_file(home: Path, before: set[Path]) -> Path:
    """The file a turn's finish writes."""
    _wait(lambda: bool(_files(home) - before), f"no KV file written under {home / 'kv'}")
    return (_files(home) - before).pop()


def _text(response: Json) -> str:
    return str(response["output"][0]["content"][0]["text"])


def _conversation(c: httpx.Client) -> str:
    r = c.post("/v1/conversations", json={})
    assert r.status_code == 200, r.text
    conv: str = r.json()["id"]
    return conv


def _chat(c: httpx.Client, messages: list[Json], model: str = MODEL, **extra: Any) -> Json:
    body = {"model": model, "messages": messages, "stream": False, "options": OPTIONS, **extra}
    r = c.post("/api/chat", json=body)
    assert r.status_code == 200, r.text
    out: Json = r.json()
    return out


def _turn(c: httpx.Client, conv: str, text: str, model: str = MODEL) -> Json:
    return _chat(c, [{"role": "user", "content": text}], model, conversation=conv)


def _respond(c: httpx.Client, given: str | list[Json], **extra: Any) -> Json:
    body = {"model": MODEL, "input": given, "max_output_tokens": 8, "temperature": 0, **extra}
    r = c.post("/v1/responses", json=body)
    assert r.status_code == 200, r.text
    out: Json = r.json()
    return out


def _unload(c: httpx.Client, model: str) -> None:
    """Stop the model's engine, so the next turn starts one with empty slots."""
    r = c.post("/api/generate", json={"model": model, "keep_alive": 0})
    assert r.status_code == 200, r.text


def _create(c: httpx.Client, body: Json) -> None:
    r = c.post("/api/create", json={**body, "stream": False})
    assert r.status_code == 200, r.text


def test_a_stored_conversation_resumes_warm_after_a_restart(
    start_server: Callable[..., Server], tmp_path: Path
) -> None:
    """Native ``conversation`` and a Responses chain: the next turn after ``serve``
    restarts restores the last turn's state from disk, and continues with the
    same greedy tokens as the same request on the server that never stopped."""
    home = tmp_path / "home"
    srv = start_server(home, **ONE_SLOT)
    with srv.client() as c:
        conv = _conversation(c)
        first = _turn(c, conv, opening(0))
        native_file = _new_file(home, set())
        history = [
            {"role": "user", "content": opening(0)},
            {"role": "assistant", "content": first["message"]["content"]},
            {"role": "user", "content": "Go on."},
        ]
        expected = _chat(c, history)  # not stored: the reference, on the warm slot
        response = _respond(c, opening(1))
        _new_file(home, {native_file})
        chain = [
            {"role": "user", "content": opening(1)},
            {"role": "assistant", "content": _text(response)},
            {"role": "user", "content": "Go on."},
        ]
        expected_reply = _respond(c, chain, store=False)  # not stored: the reference
    srv.stop()

    srv = start_server(home, **ONE_SLOT)
    with srv.client() as c:
        second = _turn(c, conv, "Go on.")
        reply = _respond(c, "Go on.", previous_response_id=response["id"])
    assert second["prompt_eval_count"] == expected["prompt_eval_count"]
    previous = first["prompt_eval_count"] + first["eval_count"]
    assert 0.9 * previous <= second["prompt_cached_count"] < second["prompt_eval_count"]
    assert second["message"]["content"] == expected["message"]["content"]

    usage, before = reply["usage"], response["usage"]
    cached = usage["input_tokens_details"]["cached_tokens"]
    assert usage["input_tokens"] == expected_reply["usage"]["input_tokens"]
    assert 0.9 * (before["input_tokens"] + before["output_tokens"]) <= cached
    assert cached < usage["input_tokens"]
    assert _text(reply) == _text(expected_reply)


def test_a_state_is_ignored_after_the_template_or_the_model_changes(
    start_server: Callable[..., Server], tmp_path: Path
) -> None:
    """The same rendered tokens under a changed template, then under a model with
    another digest: nothing is restored. The same model again: the file is used."""
    home = tmp_path / "home"
    srv = start_server(home, **ONE_SLOT)
    with srv.client() as c:
        _create(c, {"model": "kv-a", "from": MODEL, "template": CHATML})
        conv = _conversation(c)
        _turn(c, conv, opening(0), "kv-a")
        stale = _new_file(home, set())
        _create(c, {"model": "kv-a", "from": MODEL, "template": CHATML + "{{/* edited */}}"})
        _unload(c, "kv-a")
        retemplated = _turn(c, conv, "Go on.", "kv-a")
        assert retemplated["prompt_cached_count"] == 0, "the template changed"
        _wait(lambda: not stale.exists(), "the continued conversation's old file is dropped")

        _create(c, {"model": "kv-b", "from": "kv-a", "parameters": {"top_k": 7}})
        _unload(c, "kv-a")
        other = _turn(c, conv, "Go on.", "kv-b")
        assert other["prompt_cached_count"] == 0, "another model digest"

        _unload(c, "kv-b")
        again = _turn(c, conv, "Go on.", "kv-b")
    previous = other["prompt_eval_count"] + other["eval_count"]
    assert 0.9 * previous <= again["prompt_cached_count"] < again["prompt_eval_count"]


def _two_stored(c: httpx.Client, home: Path) -> list[tuple[str, Path]]:
    """Two conversations with one turn each and the state file each left, with the
    model unloaded afterwards (so the next turns restore from disk)."""
    stored: list[tuple[str, Path]] = []
    for k in range(2):
        conversation = _conversation(c)
        _turn(c, conversation, opening(k))
        stored.append((conversation, _new_file(home, {path for _, path in stored})))
    _unload(c, MODEL)
    return stored


def test_a_corrupt_or_truncated_file_is_removed_and_the_prompt_prefilled(
    start_server: Callable[..., Server], tmp_path: Path
) -> None:
    """A flipped byte (the checksum), a cut file and one that is no state at all:
    each turn is answered, prefilled, and the bad files are gone."""
    home = tmp_path / "home"
    srv = start_server(home, **ONE_SLOT)
    with srv.client() as c:
        (flipped_conv, flipped), (cut_conv, cut) = _two_stored(c, home)
        data = bytearray(flipped.read_bytes())
        data[-100] ^= 0xFF
        flipped.write_bytes(data)
        with cut.open("r+b") as f:
            f.truncate(cut.stat().st_size // 2)
        junk = flipped.with_name("junk.kv")
        junk.write_bytes(b"not a state")

        for conv, path in ((flipped_conv, flipped), (cut_conv, cut)):
            turn = _turn(c, conv, "Go on.")
            shared = turn["prompt_cached_count"]  # at most the system header the slot holds
            assert shared < 0.1 * turn["prompt_eval_count"], path
            assert not path.exists(), "the bad file is removed"
        assert not junk.exists()
        health = c.get("/api/ps")
    assert health.status_code == 200


def test_the_folder_is_bounded_least_recently_used_first(
    start_server: Callable[..., Server], tmp_path: Path
) -> None:
    """Three states of some 16 MB each under a 40 MiB bound. The first is used
    again (restored by a turn that is then cancelled, so nothing newer replaces
    it) after the second was written: the second is the one that goes."""
    home = tmp_path / "home"
    srv = start_server(home, LLAMAPORT_CACHE_DISK="40", **ONE_SLOT)
    with srv.client() as c:
        (used, first), (_, second) = _two_stored(c, home)
        body = {
            "model": MODEL,
            "messages": [{"role": "user", "content": "Go on."}],
            "conversation": used,
            "options": {"num_predict": 400, "temperature": 0},
        }
        with c.stream("POST", "/api/chat", json=body) as r:
            assert r.status_code == 200
            next(r.iter_lines())  # restored and generating: then the client leaves
        _turn(c, _conversation(c), opening(2))
        third = _new_file(home, {first, second})
    size = second.stat().st_size if second.exists() else first.stat().st_size
    assert 3 * size > 40 << 20 >= 2 * size, "two fit, three do not"
    _wait(lambda: not second.exists(), "the least recently used file is removed")
    assert _files(home) == {first, third}


def _owners(root: Path) -> list[str]:
    """The owner of each file under ``root``, read back from disk by a new cache."""
    cache = DiskCache(root, "fmt", 1 << 20)
    try:
        return sorted(e.owner for e in cache.entries("id"))
    finally:
        cache.close()


def test_forget_waits_for_the_writes_queued_before_it(tmp_path: Path) -> None:
    """An engine removes a deleted conversation's files on its writer thread, after
    the turn it may still be writing; a write is never dropped for a forget."""
    cache = DiskCache(tmp_path, "fmt", 1 << 20)

    def fill(data: Any) -> bool:
        data[:] = list(range(len(data)))
        return True

    cache.write("id", "conv-a", [1, 2, 3], 64, fill)
    cache.write("id", "conv-b", [4, 5, 6], 64, fill)
    cache.forget("conv-a")
    cache.close()
    assert _owners(tmp_path) == ["conv-b"]
    forget_files(tmp_path, "")  # no owner: nothing goes, not even files written without one
    assert _owners(tmp_path) == ["conv-b"]
    forget_files(tmp_path, "conv-b")
    assert not list(tmp_path.glob("*/*.kv"))


async def test_an_engine_removes_an_owners_files_when_told(tmp_path: Path) -> None:
    """``Forget`` over the engine's socket: its writer removes the owner's file,
    and another owner's stays."""
    path = embedded_gguf_path()
    assert path is not None
    spec = LoadSpec(
        model_path=str(path), n_ctx=2048, n_parallel=1, cache_disk=64, cache_dir=str(tmp_path)
    )
    engine = EngineClient(spec)
    await engine.start(timeout=60)
    try:
        sampling = SamplingParams(temperature=0, num_predict=4)
        for k, owner in enumerate(("conv-a", "conv-b")):
            segments = (Segment(opening(k)),)
            events = [e async for e in engine.generate(segments, sampling, False, "id", owner)]
            assert isinstance(events[-1], Done), events[-1]
        _wait(lambda: len(list(tmp_path.glob("*/*.kv"))) == 2, "both turns are written")
        engine.forget("conv-a")
        _wait(lambda: len(list(tmp_path.glob("*/*.kv"))) == 1, "conv-a's file is removed")
    finally:
        await engine.stop()
    fmt = next(tmp_path.iterdir()).name
    cache = DiskCache(tmp_path, fmt, 64 << 20)
    assert [e.owner for e in cache.entries("id")] == ["conv-b"]
    cache.close()


def test_deleting_a_conversation_removes_the_files_its_turns_left(
    start_server: Callable[..., Server], tmp_path: Path
) -> None:
    """A file holds the conversation's tokens, that is its text. Deleted with its
    model unloaded (the server reads every file's owner) or loaded (the engine
    removes it), by conversation, by item, or by a response of a chain; the other
    conversation's file stays and still restores."""
    home = tmp_path / "home"
    srv = start_server(home, **ONE_SLOT)
    with srv.client() as c:
        (gone, gone_file), (kept, kept_file) = _two_stored(c, home)
        assert c.delete(f"/v1/conversations/{gone}").status_code == 200
        assert not gone_file.exists() and kept_file.exists()

        turn = _turn(c, kept, "Go on.")
        assert turn["prompt_cached_count"] > 0.5 * turn["prompt_eval_count"], turn
        _wait(lambda: not kept_file.exists(), "the second turn's file replaces the first")
        newer = _new_file(home, set())
        items = c.get(f"/v1/conversations/{kept}/items").json()["data"]
        r = c.delete(f"/v1/conversations/{kept}/items/{items[0]['id']}")
        assert r.status_code == 200, r.text
        assert not newer.exists()

        first = _respond(c, opening(2))
        _respond(c, "Go on.", previous_response_id=first["id"])
        _wait(lambda: len(_files(home)) == 1, "one file for the chain's last turn")
        assert c.delete(f"/v1/responses/{first['id']}").status_code == 200
        assert not _files(home)
