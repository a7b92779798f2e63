"""Environment parsing, with cases from Ollama's ``envconfig/config_test.go``."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from llamaport.storage.settings import (
    DEFAULT_PORT,
    FOREVER,
    Host,
    Settings,
    load_settings,
    parse_bool,
    parse_duration,
    parse_host,
    parse_keep_alive_env,
)

DURATIONS = [
    ("0", 0.0),
    ("-0", 0.0),
    ("5m", 300.0),
    ("1h30m", 5400.0),
    ("1.5h", 5400.0),
    (".5s", 0.5),
    ("+5s", 5.0),
    ("-5m", -300.0),
    ("5m0s", 300.0),
    ("300ms", 0.3),
    ("2us", 2e-6),
    ("1µs", 1e-6),
    ("10ns", 1e-8),
]


@pytest.mark.parametrize(("text", "seconds"), DURATIONS, ids=[d[0] for d in DURATIONS])
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


BAD_DURATIONS = [
    ("1", 'time: missing unit in duration "1"'),
    ("-1", 'time: missing unit in duration "-1"'),
    ("", 'time: invalid duration ""'),
    ("-", 'time: invalid duration "-"'),
    ("abc", 'time: invalid duration "abc"'),
    ("1d", 'time: invalid duration "1d"'),
    ("1h-5m", 'time: invalid duration "1h-5m"'),
    ("5 m", 'time: invalid duration "5 m"'),
]


@pytest.mark.parametrize(
    ("text", "message"), BAD_DURATIONS, ids=[repr(b[0]) for b in BAD_DURATIONS]
)
def test_parse_duration_errors_use_go_wording(text: str, message: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_duration(text)
    assert str(info.value) == message


KEEP_ALIVE = [
    ("", 300.0),
    ("3", 3.0),
    ("1h", 3600.0),
    ("0", 0.0),
    ("-1", FOREVER),
    ("-1s", FOREVER),
    ("1.5", 300.0),
    ("garbage", 300.0),
]


@pytest.mark.parametrize(("text", "seconds"), KEEP_ALIVE, ids=[repr(k[0]) for k in KEEP_ALIVE])
def test_keep_alive_env(text: str, seconds: float) -> None:
    got = load_settings({"OLLAMA_KEEP_ALIVE": text}).keep_alive
    assert got == seconds
    if text:
        assert parse_keep_alive_env(text) == seconds


def test_forever_is_infinite() -> None:
    assert math.isinf(FOREVER)


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("", False),
        ("0", False),
        ("f", False),
        ("false", False),
        ("FALSE", False),
        ("1", True),
        ("true", True),
        ("t", True),
        ("random", True),
    ],
    ids=lambda v: repr(v),
)
def test_parse_bool(text: str, want: bool) -> None:
    assert parse_bool(text) is want


HOSTS = [
    ("", "http://127.0.0.1:11434"),
    ("1.2.3.4", "http://1.2.3.4:11434"),
    ("1.2.3.4:1234", "http://1.2.3.4:1234"),
    ("example.com", "http://example.com:11434"),
    ("example.com:1234", "http://example.com:1234"),
    ("[::1]", "http://[::1]:11434"),
    ("[::]", "http://[::]:11434"),
    ("[::1]:1337", "http://[::1]:1337"),
    (" 1.2.3.4 ", "http://1.2.3.4:11434"),
    ('"1.2.3.4"', "http://1.2.3.4:11434"),
    (' " 1.2.3.4 " ', "http://1.2.3.4:11434"),
    ("'1.2.3.4'", "http://1.2.3.4:11434"),
    ("http://1.2.3.4", "http://1.2.3.4:80"),
    ("http://1.2.3.4:4321", "http://1.2.3.4:4321"),
    ("https://1.2.3.4", "https://1.2.3.4:443"),
    ("https://1.2.3.4:4321", "https://1.2.3.4:4321"),
    ("https://example.com/ollama", "https://example.com:443/ollama"),
    (":1234", "http://127.0.0.1:1234"),
    (":0", "http://127.0.0.1:0"),
    ("::1", "http://[::1]:11434"),
    (":66000", "http://127.0.0.1:11434"),
    (":-1", "http://127.0.0.1:11434"),
]


@pytest.mark.parametrize(("value", "url"), HOSTS, ids=[repr(h[0]) for h in HOSTS])
def test_host_from_env(value: str, url: str) -> None:
    assert load_settings({"OLLAMA_HOST": value}).host.url == url


def test_host_fields_and_loopback() -> None:
    host = parse_host("0.0.0.0:8080")
    assert host == Host(scheme="http", host="0.0.0.0", port=8080)
    assert not host.is_loopback
    assert parse_host("").is_loopback
    assert parse_host("localhost").is_loopback
    assert parse_host("[::1]").is_loopback
    assert parse_host("127.0.0.2").is_loopback
    assert parse_host("").port == DEFAULT_PORT


def test_a_bare_port_binds_every_interface() -> None:
    host = parse_host(":1234")
    assert (host.host, host.bind_host, host.port) == ("", "0.0.0.0", 1234)
    assert parse_host("10.0.0.5:80").bind_host == "10.0.0.5"


def test_defaults(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    settings = load_settings({})
    home = tmp_path / ".llamaport"
    assert settings == Settings(home=home, models=home / "models", config=home / "config.toml")
    assert settings.keep_alive == 300.0
    assert settings.context_length == 4096
    assert settings.num_parallel == 4
    assert settings.max_loaded_models == 3
    assert settings.max_queue == 512
    assert settings.flash_attention is None
    assert settings.kv_cache_type == "f16"
    assert settings.history_file == tmp_path / ".llamaport" / "history"
    assert settings.server_log == tmp_path / ".llamaport" / "server.log"


def test_llamaport_variables_win_over_ollama_twins(tmp_path: Path) -> None:
    settings = load_settings(
        {
            "LLAMAPORT_MODELS": str(tmp_path / "lp"),
            "OLLAMA_MODELS": str(tmp_path / "ol"),
            "LLAMAPORT_NUM_PARALLEL": "2",
            "OLLAMA_NUM_PARALLEL": "8",
            "LLAMAPORT_HOST": "   ",
            "OLLAMA_HOST": "0.0.0.0:9999",
        }
    )
    assert settings.models == tmp_path / "lp"
    assert settings.num_parallel == 2
    assert settings.host.port == 9999  # a blank LLAMAPORT_ value falls through


def test_models_follow_home(tmp_path: Path) -> None:
    settings = load_settings({"LLAMAPORT_HOME": str(tmp_path)})
    assert settings.home == tmp_path
    assert settings.models == tmp_path / "models"
    assert load_settings({"OLLAMA_HOME": str(tmp_path)}).home != tmp_path


@pytest.mark.parametrize(
    ("env", "field", "want"),
    [
        ({"OLLAMA_CONTEXT_LENGTH": "0"}, "context_length", 4096),
        ({"OLLAMA_CONTEXT_LENGTH": "8192"}, "context_length", 8192),
        ({"OLLAMA_CONTEXT_LENGTH": "lots"}, "context_length", 4096),
        ({"OLLAMA_NUM_PARALLEL": "0"}, "num_parallel", 1),
        ({"OLLAMA_MAX_LOADED_MODELS": "0"}, "max_loaded_models", 3),
        ({"OLLAMA_MAX_QUEUE": "-5"}, "max_queue", 1),
        ({"LLAMAPORT_NUM_THREAD": "-2"}, "num_thread", 0),
        ({"OLLAMA_NUM_THREAD": "6"}, "num_thread", 0),
        ({"OLLAMA_FLASH_ATTENTION": "1"}, "flash_attention", True),
        ({"OLLAMA_FLASH_ATTENTION": "false"}, "flash_attention", False),
        ({"OLLAMA_NOPRUNE": "1"}, "noprune", True),
        ({"OLLAMA_NOHISTORY": "true"}, "nohistory", True),
        ({"OLLAMA_DEBUG": "0"}, "debug", False),
        ({"OLLAMA_KV_CACHE_TYPE": "q8_0"}, "kv_cache_type", "q8_0"),
        ({"OLLAMA_LOAD_TIMEOUT": "10m"}, "load_timeout", 600.0),
        ({"OLLAMA_ORIGINS": " http://a , ,https://b "}, "origins", ("http://a", "https://b")),
        ({"LLAMAPORT_MAX_REQUEST_BYTES": "1000"}, "max_request_bytes", 1000),
        ({"LLAMAPORT_MAX_REQUEST_BYTES": "0"}, "max_request_bytes", 64 * 1024 * 1024),
        ({"OLLAMA_MAX_REQUEST_BYTES": "1000"}, "max_request_bytes", 64 * 1024 * 1024),
        ({}, "max_blob_bytes", 0),
        ({"LLAMAPORT_MAX_BLOB_BYTES": "1000"}, "max_blob_bytes", 1000),
        ({"LLAMAPORT_MAX_BLOB_BYTES": "-1"}, "max_blob_bytes", 0),
        ({"OLLAMA_MAX_BLOB_BYTES": "1000"}, "max_blob_bytes", 0),
        ({}, "shutdown_grace", 10.0),
        ({"LLAMAPORT_SHUTDOWN_GRACE": "2.5"}, "shutdown_grace", 2.5),
        ({"LLAMAPORT_SHUTDOWN_GRACE": "1m"}, "shutdown_grace", 60.0),
        ({"LLAMAPORT_SHUTDOWN_GRACE": "-3"}, "shutdown_grace", 0.0),
        ({"LLAMAPORT_SHUTDOWN_GRACE": "soon"}, "shutdown_grace", 10.0),
        ({"LLAMAPORT_SHUTDOWN_GRACE": "inf"}, "shutdown_grace", 10.0),
        ({"OLLAMA_SHUTDOWN_GRACE": "1"}, "shutdown_grace", 10.0),
        ({"LLAMAPORT_API_KEY": " 'k' "}, "api_key", "k"),
        ({"OLLAMA_API_KEY": "k"}, "api_key", ""),
        ({}, "no_gpu", False),
        ({"LLAMAPORT_NO_GPU": "1"}, "no_gpu", True),
        ({"OLLAMA_NO_GPU": "true"}, "no_gpu", True),
        ({"OLLAMA_NO_GPU": "0"}, "no_gpu", False),
        ({"CUDA_VISIBLE_DEVICES": ""}, "no_gpu", True),
        ({"CUDA_VISIBLE_DEVICES": "0"}, "no_gpu", False),
        ({}, "cache_ram", 2048),
        ({"LLAMAPORT_PRELOAD": " a:1 , ,b "}, "preload", ("a:1", "b")),
        ({"OLLAMA_PRELOAD": "a"}, "preload", ()),
        ({"LLAMAPORT_CACHE_RAM": "0"}, "cache_ram", 0),
        ({"LLAMAPORT_CACHE_RAM": "-1"}, "cache_ram", 0),
        ({"LLAMAPORT_CACHE_RAM": "512"}, "cache_ram", 512),
        ({"OLLAMA_CACHE_RAM": "512"}, "cache_ram", 2048),
        ({}, "cache_disk", 4096),
        ({"LLAMAPORT_CACHE_DISK": "0"}, "cache_disk", 0),
        ({"LLAMAPORT_CACHE_DISK": "-5"}, "cache_disk", 0),
        ({"LLAMAPORT_CACHE_DISK": "64"}, "cache_disk", 64),
        ({"OLLAMA_CACHE_DISK": "64"}, "cache_disk", 4096),
    ],
    ids=lambda v: str(v),
)
def test_numeric_and_flag_settings(env: dict[str, str], field: str, want: object) -> None:
    assert getattr(load_settings(env), field) == want
