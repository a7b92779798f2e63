"""The chat page at ``/ui`` (``compat/ui.py``): served by the server, then used
in headless Chromium against a real ``llamaport serve`` with the real model.

The browser tests follow what a user does (pick the model, send, watch the
reply stream, stop it, reload, delete) and check the page against the server's
own records through the API. Screenshots of each step stay under the test's
``tmp_path/shots``.
"""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from selenium.common.exceptions import NoAlertPresentException
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import Select

from tests.compat._browser import Page, start_browser
from tests.compat._registry import DockerRegistry
from tests.compat._thinking import THINKING_MODEL
from tests.conftest import MODEL, Server

LONG_PROMPT = "Write a very long story about a cat who sails around the world."
XSS = (
    "<script>window.__xss = 1; alert(1)</script>\n"
    '<img src="x" onerror="window.__xss = 2; alert(2)">\n'
    "[click](javascript:window.__xss=3) "
    '<a href="javascript:window.__xss = 4">link</a>\n\n'
    "```html\n<script>window.__xss = 5</script>\n```"
)


@pytest.fixture(scope="module")
def browser() -> Iterator[WebDriver]:
    driver = start_browser()
    yield driver
    driver.quit()


@pytest.fixture
def page(browser: WebDriver, tmp_path: Path) -> Iterator[Page]:
    shots = tmp_path / "shots"
    shots.mkdir()
    browser.set_window_size(1200, 900)
    yield Page(browser, shots)
    if browser.current_url.startswith("http"):
        browser.execute_script("localStorage.clear()")


def test_page_is_served_and_root_still_answers_ollama(server: Server) -> None:
    with server.client() as c:
        assert c.get("/").text == "Ollama is running"
        redirect = c.get("/ui")
        assert redirect.status_code in (307, 308)
        assert redirect.headers["location"].endswith("/ui/")
        index = c.get("/ui/")
        assert index.status_code == 200
        assert index.headers["content-type"].startswith("text/html")
        for asset in ("app.js", "app.css", "markdown.js"):
            assert asset in index.text
            assert c.get(f"/ui/{asset}").status_code == 200
        assert c.get("/ui/missing.js").status_code == 404
    assert f"chat page at {server.url}/ui/" in server.log.read_text()


def test_page_is_public_with_an_api_key_but_the_api_is_not(
    start_server: Callable[..., Server],
) -> None:
    srv = start_server(LLAMAPORT_API_KEY="s3cret")
    with srv.client() as c:
        assert c.get("/ui/").status_code == 200
        assert c.get("/ui/app.js").status_code == 200
        assert c.get("/api/tags").status_code == 401
        assert c.get("/uix").status_code == 401
        # The page cannot be fetched from a foreign origin or a rebound name either.
        assert c.get("/ui/", headers={"Origin": "https://evil.example"}).status_code == 403
        assert c.get("/ui/", headers={"Host": "evil.example"}).status_code == 403


def _picker(page: Page) -> list[str]:
    """The model picker's values, read in one step (the page may be refilling it)."""
    values: list[str] = page.driver.execute_script(
        "return [...document.querySelectorAll('#model option')].map((o) => o.value)"
    )
    return values


def _titles(page: Page) -> list[str]:
    """The sidebar's titles, read in one step (the page refills it after each turn)."""
    titles: list[str] = page.driver.execute_script(
        "return [...document.querySelectorAll('#conversations .title')].map((e) => e.textContent)"
    )
    return titles


def _assistant_text(page: Page) -> str:
    bubbles = page.all(".message.assistant .body")
    return bubbles[-1].text if bubbles else ""


def _streaming(page: Page) -> bool:
    return bool(page.all(".message.assistant.streaming"))


def _send_and_watch_it_grow(page: Page, text: str) -> None:
    """Send ``text`` and wait until its reply shows and grows, or has already ended.
    The wait is on the reply's own bubble, not on it streaming: a short reply (three
    tokens stream in 35 ms) can begin and end between two looks. A turn the server
    refused fails here with the page's notice; a stalled stream never ends the wait."""
    before = len(page.all(".message.assistant"))
    prompt = page.find("#prompt")
    prompt.send_keys(text)
    prompt.send_keys(Keys.ENTER)  # the page clears its notice before this returns
    page.until(lambda d: len(page.all(".message.assistant")) > before or page.visible("#notice"))
    assert not page.visible("#notice"), page.find("#notice-text").text
    page.until(lambda d: _assistant_text(page) or not _streaming(page))
    first = _assistant_text(page)
    page.until(lambda d: len(_assistant_text(page)) > len(first) or not _streaming(page))


def _stop(page: Page) -> None:
    """Stop the reply if it still streams (a script click: it may have just ended and
    hidden the button) and wait until the page can send again."""
    page.driver.execute_script("document.getElementById('stop').click()")
    page.until(lambda d: page.visible("#send"))


def _items(client: httpx.Client, conversation: str) -> list[dict[str, Any]]:
    response = client.get(f"/v1/conversations/{conversation}/items", params={"order": "asc"})
    data: list[dict[str, Any]] = response.json()["data"]
    return data


def test_chat_streams_stops_reloads_and_deletes(server: Server, page: Page) -> None:
    page.open(f"{server.url}/ui/")
    Select(page.find("#model")).select_by_value(MODEL)
    page.find("#settings summary").click()
    page.find("#system").send_keys("You are a storyteller.")
    page.find("#temperature").send_keys("0.5")
    page.shot("ready")

    _send_and_watch_it_grow(page, LONG_PROMPT)
    page.shot("streaming")
    page.find("#stop").click()
    page.until(lambda d: page.all(".message.assistant.stopped"))
    assert page.visible("#send")
    assert not page.visible("#notice")
    page.shot("stopped")

    conversation = page.driver.execute_script("return location.hash.slice(1)")
    with server.client() as c:
        meta = c.get(f"/v1/conversations/{conversation}").json()["metadata"]
        assert meta == {"model": MODEL, "system": "You are a storyteller.", "temperature": "0.5"}
        # The cut-off turn is stored (incomplete) once the server saw the disconnect.
        page.until(lambda d: len(_items(c, conversation)) == 3)
        system, user, reply = _items(c, conversation)
    assert (system["role"], user["role"], reply["role"]) == ("system", "user", "assistant")
    assert reply["status"] == "incomplete"

    _send_and_watch_it_grow(page, "And then?")
    page.find("#prompt").send_keys(Keys.ESCAPE)
    page.until(lambda d: len(page.all(".message.assistant.stopped")) == 2)
    with server.client() as c:
        page.until(lambda d: len(_items(c, conversation)) == 5)
        # Escape can land after the server sent its last line and before the page
        # read it: the page shows "stopped", the store holds the whole reply.
        stored = [i["status"] for i in _items(c, conversation) if i["role"] == "assistant"]
    assert stored[0] == "incomplete"

    page.driver.refresh()
    page.wait_ready()
    page.shot("reloaded")
    assert [e.text for e in page.all(".message.user .body")] == [LONG_PROMPT, "And then?"]
    shown = [
        "incomplete" if "incomplete" in e.get_attribute("class").split() else "completed"
        for e in page.all(".message.assistant")
    ]
    assert shown == stored
    assert page.find("#system").get_attribute("value") == "You are a storyteller."
    current = page.find("#conversations li.current")
    assert current.get_attribute("data-id") == conversation
    assert current.find_element("css selector", ".title").text == LONG_PROMPT

    current.find_element("css selector", ".rename").click()
    rename = page.find("#conversations li.current .rename-input")
    rename.clear()
    rename.send_keys("Cat story", Keys.ENTER)
    page.until(lambda d: "Cat story" in _titles(page))

    for _ in range(2):  # the first click asks, the second deletes
        page.find(f'#conversations li[data-id="{conversation}"] .danger').click()
    page.until(lambda d: not page.all(f'#conversations li[data-id="{conversation}"]'))
    page.shot("deleted")
    assert not page.all(".message")
    with server.client() as c:
        assert c.get(f"/v1/conversations/{conversation}").status_code == 404


def test_html_in_a_reply_stays_text(server: Server, page: Page) -> None:
    items = [
        {"type": "message", "role": "user", "content": "say something nasty"},
        {"type": "message", "role": "assistant", "content": XSS},
    ]
    body = {"items": items, "metadata": {"title": '<img src="x" onerror="window.__xss = 6">'}}
    with server.client() as c:
        conversation = c.post("/v1/conversations", json=body).json()["id"]
    page.open(f"{server.url}/ui/#{conversation}")
    page.until(lambda d: page.all(".message.assistant pre"))
    page.shot("xss")
    with pytest.raises(NoAlertPresentException):
        page.driver.switch_to.alert.text  # noqa: B018 (reading it is the check)
    assert page.driver.execute_script("return window.__xss") is None
    assert not page.all("#messages script, #messages img, #messages a, #conversations img")
    text = page.find(".message.assistant .body").text
    assert "<script>window.__xss = 1; alert(1)</script>" in text
    assert 'onerror="window.__xss = 2' in text
    assert page.find(".message.assistant pre code").text == "<script>window.__xss = 5</script>"
    assert '<img src="x"' in page.find("#conversations li.current .title").text


def test_errors_show_in_the_page_which_keeps_working(server: Server, page: Page) -> None:
    page.driver.set_window_size(390, 844)  # a phone
    page.open(f"{server.url}/ui/#conv_doesnotexist")
    page.until(lambda d: page.visible("#notice"))
    assert "not found" in page.find("#notice-text").text.lower()
    assert page.driver.execute_script("return location.hash") == ""
    width = page.driver.execute_script("return [document.documentElement.scrollWidth, innerWidth]")
    assert width[0] <= width[1]
    page.shot("phone-error")

    page.driver.execute_script(
        "const s = document.getElementById('model'); s.add(new Option('gone:1b', 'gone:1b'));"
        "s.value = 'gone:1b';"
    )
    with server.client() as client:
        stored = client.get("/v1/conversations", params={"limit": 100}).json()["data"]
        page.find("#prompt").send_keys("hello", Keys.ENTER)
        page.until(lambda d: "gone:1b" in page.find("#notice-text").text)
        assert page.visible("#send")
        # The refused first turn leaves no empty conversation behind, and its text comes back.
        page.until(lambda d: page.find("#prompt").get_attribute("value") == "hello")
        assert not page.all(".message.user")
        assert client.get("/v1/conversations", params={"limit": 100}).json()["data"] == stored
        assert page.driver.execute_script("return location.hash") == ""
    page.shot("unknown-model")

    page.find("#toggle-sidebar").click()
    page.until(lambda d: page.find("#new-chat").is_displayed())
    page.find("#models-panel summary").click()
    page.find("#pull-name").send_keys("127.0.0.1:9/none/such:latest", Keys.ENTER)
    page.until(lambda d: page.find("#pull-status").text.startswith("pull failed:"))
    page.shot("pull-failed")


def test_an_error_mid_stream_shows_and_the_next_turn_works(
    start_server: Callable[..., Server], page: Page
) -> None:
    """The engine is killed mid-reply: the server ends the stream with an error line."""
    srv = start_server()
    page.open(f"{srv.url}/ui/")
    _send_and_watch_it_grow(page, LONG_PROMPT)
    (engine,) = srv.engine_pids()
    os.kill(engine, signal.SIGKILL)
    page.until(lambda d: page.visible("#notice"))
    assert page.all(".message.assistant.incomplete")
    assert page.visible("#send")
    page.shot("engine-killed")
    _send_and_watch_it_grow(page, "Try again.")
    _stop(page)  # the reply may run long: stopping it is the user's way out too
    assert not page.visible("#notice")
    page.shot("recovered")


def test_a_dropped_connection_shows_and_the_page_works_once_the_server_is_back(
    start_server: Callable[..., Server], tmp_path: Path, page: Page
) -> None:
    """The server itself dies mid-reply (no error line: the socket closes); the page
    says the connection dropped, and works again against the restarted server."""
    home = tmp_path / "dropped"
    srv = start_server(home)
    page.open(f"{srv.url}/ui/")
    _send_and_watch_it_grow(page, LONG_PROMPT)
    for pid in srv.engine_pids():
        os.kill(pid, signal.SIGKILL)
    srv.proc.kill()
    srv.proc.wait(timeout=10)
    page.until(lambda d: page.visible("#notice"))
    assert "connection dropped" in page.find("#notice-text").text
    assert page.all(".message.assistant.incomplete")
    assert page.visible("#send")
    page.shot("connection-dropped")
    start_server(home, LLAMAPORT_HOST=srv.host)
    _send_and_watch_it_grow(page, "Try again.")
    _stop(page)
    assert not page.visible("#notice")
    page.shot("server-back")


def test_pull_shows_progress_and_delete_removes(
    server: Server, docker_registry: DockerRegistry, page: Page
) -> None:
    name = f"{docker_registry.host}/test/ui-pull:v1"
    with server.client(timeout=300) as c:
        assert c.post("/api/copy", json={"source": MODEL, "destination": name}).status_code == 200
        pushed = c.post("/api/push", json={"model": name, "insecure": True, "stream": False})
        assert pushed.json()["status"] == "success"
        assert c.request("DELETE", "/api/delete", json={"model": name}).status_code == 200
    page.open(f"{server.url}/ui/")
    page.find("#models-panel summary").click()
    page.find("#pull-insecure").click()
    page.find("#pull-name").send_keys(name, Keys.ENTER)
    page.until(lambda d: page.find("#pull-status").text == f"{name}: success")
    assert page.find("#pull-progress").get_attribute("value") == "1"
    page.until(lambda d: name in _picker(page))
    page.shot("pulled")

    row = next(li for li in page.all("#models li") if li.text.startswith(name))
    for _ in range(2):  # the first click asks, the second deletes
        row.find_element("css selector", ".danger").click()
    page.until(lambda d: name not in _picker(page))
    page.shot("model-deleted")
    with server.client() as c:
        assert name not in [m["name"] for m in c.get("/api/tags").json()["models"]]


def test_thinking_is_shown_folded(thinking_server: Server, page: Page) -> None:
    page.open(f"{thinking_server.url}/ui/")
    Select(page.find("#model")).select_by_value(THINKING_MODEL)
    page.find("#prompt").send_keys("Is the sea salty? Think first.", Keys.ENTER)
    page.until(lambda d: page.all(".message.assistant details.thinking"))
    page.until(lambda d: page.find("details.thinking div").get_attribute("textContent"))
    assert page.find("details.thinking").get_attribute("open") is None
    page.shot("thinking")
    _stop(page)


def test_api_key_is_asked_once_and_kept(start_server: Callable[..., Server], page: Page) -> None:
    srv = start_server(LLAMAPORT_API_KEY="s3cret")
    page.driver.get(f"{srv.url}/ui/")
    page.until(lambda d: page.visible("#key-overlay"))
    page.shot("key-asked")
    page.find("#key-input").send_keys("wrong", Keys.ENTER)
    page.until(lambda d: "refused" in page.find("#key-message").text)
    assert page.visible("#key-overlay")
    page.find("#key-input").send_keys("s3cret", Keys.ENTER)
    page.wait_ready()
    assert MODEL in _picker(page)
    page.driver.refresh()
    page.wait_ready()
    assert not page.visible("#key-overlay")
    key = page.driver.execute_script("return localStorage.getItem('llamaport.apiKey')")
    assert json.dumps(key) == '"s3cret"'
    page.shot("key-kept")
