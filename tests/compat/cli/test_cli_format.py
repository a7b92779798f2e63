"""Table-driven tests of the CLI's pure formatters against Ollama's outputs.

Expected strings come from Ollama's ``format/*_test.go`` and
``cmd/cmd_test.go`` (TestListHandler, TestShowInfo) where those pin them.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from llamaport.compat.cli.format import (
    go_duration,
    human_bytes,
    human_number,
    human_time,
    list_table,
    parse_timestamp,
    processor,
    ps_table,
    render_table,
    show_info,
    timing_summary,
    wrap_cell,
)
from llamaport.compat.client import Metrics, ModelEntry, RunningModel, ShowResponse

NOW = datetime(2025, 6, 1, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("size", "expected"),
    [
        (0, "0 B"),
        (1, "1 B"),
        (999, "999 B"),
        (1000, "1 KB"),
        (1024, "1.0 KB"),
        (1500, "1.5 KB"),
        (999999, "999 KB"),
        (1000000, "1 MB"),
        (1500000, "1.5 MB"),
        (999999999, "999 MB"),
        (1000000000, "1 GB"),
        (1500000000, "1.5 GB"),
        (2019393189, "2.0 GB"),
        (9600000000, "9.6 GB"),
        (10500000000, "10 GB"),
        (999999999999, "999 GB"),
        (1000000000000, "1 TB"),
        (1500000000000, "1.5 TB"),
        (1999999999999, "2.0 TB"),
        (1234, "1.2 KB"),
        (1234567, "1.2 MB"),
        (1234567890, "1.2 GB"),
    ],
    ids=lambda v: str(v),
)
def test_human_bytes(size: int, expected: str) -> None:
    assert human_bytes(size) == expected


@pytest.mark.parametrize(
    ("count", "expected"),
    [
        (0, "0"),
        (999, "999"),
        (1000, "1K"),
        (1001, "1K"),
        (1000000, "1M"),
        (125000000, "125M"),
        (500500000, "500.50M"),
        (500550000, "500.55M"),
        (1000000000, "1B"),
        (2800000000, "2.8B"),
        (2850000000, "2.9B"),
        (1000000000000, "1000B"),
    ],
    ids=lambda v: str(v),
)
def test_human_number(count: int, expected: str) -> None:
    assert human_number(count) == expected


PAST = [
    (timedelta(milliseconds=500), "Less than a second ago"),
    (timedelta(seconds=1), "1 second ago"),
    (timedelta(seconds=1, milliseconds=900), "1 second ago"),
    (timedelta(seconds=59), "59 seconds ago"),
    (timedelta(seconds=60), "About a minute ago"),
    (timedelta(seconds=119), "About a minute ago"),
    (timedelta(minutes=2), "2 minutes ago"),
    (timedelta(minutes=59, seconds=59), "59 minutes ago"),
    (timedelta(minutes=60), "About an hour ago"),
    (timedelta(minutes=89), "About an hour ago"),
    (timedelta(minutes=90), "2 hours ago"),
    (timedelta(hours=24), "24 hours ago"),
    (timedelta(hours=47), "47 hours ago"),
    (timedelta(hours=47, minutes=31), "2 days ago"),
    (timedelta(days=2), "2 days ago"),
    (timedelta(days=13), "13 days ago"),
    (timedelta(days=14), "2 weeks ago"),
    (timedelta(days=59), "8 weeks ago"),
    (timedelta(days=60), "2 months ago"),
    (timedelta(days=729), "24 months ago"),
    (timedelta(days=730), "2 years ago"),
    (timedelta(days=3650), "10 years ago"),
]

FUTURE = [
    (timedelta(milliseconds=800), "Less than a second from now"),
    (timedelta(minutes=4, seconds=30), "4 minutes from now"),
    (timedelta(hours=48), "2 days from now"),
    (timedelta(days=365 * 20), "20 years from now"),
    (timedelta(days=365 * 21), "Forever"),
    (timedelta(days=365 * 200), "Forever"),
]


@pytest.mark.parametrize(("ago", "expected"), PAST, ids=[e for _, e in PAST])
def test_human_time_past(ago: timedelta, expected: str) -> None:
    assert human_time(NOW - ago, NOW) == expected


@pytest.mark.parametrize(("ahead", "expected"), FUTURE, ids=[e for _, e in FUTURE])
def test_human_time_future(ahead: timedelta, expected: str) -> None:
    assert human_time(NOW + ahead, NOW) == expected


def test_human_time_zero_value() -> None:
    assert human_time(None, NOW, "Never") == "Never"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2025-05-04T17:37:44.706015396-07:00", datetime(2025, 5, 5, 0, 37, 44, 706015, UTC)),
        ("2025-06-01T12:00:00Z", NOW),
        ("2025-06-01T12:00:00.5Z", NOW + timedelta(milliseconds=500)),
        ("0001-01-01T00:00:00Z", None),
        ("", None),
        (None, None),
    ],
    ids=["nanoseconds-offset", "utc", "fraction", "go-zero-time", "empty", "missing"],
)
def test_parse_timestamp(text: str | None, expected: datetime | None) -> None:
    assert parse_timestamp(text) == expected


@pytest.mark.parametrize(
    ("ns", "expected"),
    [
        (0, "0s"),
        (1, "1ns"),
        (999, "999ns"),
        (1000, "1µs"),
        (1500, "1.5µs"),
        (12_000_000, "12ms"),
        (130_079_000, "130.079ms"),
        (1_200_000_000, "1.2s"),
        (10_706_818_083, "10.706818083s"),
        (60_000_000_000, "1m0s"),
        (63_500_000_000, "1m3.5s"),
        (3_600_000_000_000, "1h0m0s"),
        (3_723_000_000_000, "1h2m3s"),
        (-1_500_000, "-1.5ms"),
    ],
    ids=lambda v: str(v),
)
def test_go_duration(ns: int, expected: str) -> None:
    assert go_duration(ns) == expected


def test_timing_summary_matches_ollamas_block() -> None:
    metrics = {
        "total_duration": 10706818083,
        "load_duration": 6338219291,
        "prompt_eval_count": 26,
        "prompt_eval_duration": 130079000,
        "eval_count": 259,
        "eval_duration": 4232710000,
    }
    assert timing_summary(Metrics.model_validate(metrics)) == (
        "total duration:       10.706818083s\n"
        "load duration:        6.338219291s\n"
        "prompt eval count:    26 token(s)\n"
        "prompt eval duration: 130.079ms\n"
        "prompt eval rate:     199.88 tokens/s\n"
        "eval count:           259 token(s)\n"
        "eval duration:        4.23271s\n"
        "eval rate:            61.19 tokens/s\n"
    )


def test_timing_summary_skips_zero_fields() -> None:
    assert timing_summary(Metrics(total_duration=1_000_000, eval_count=3)) == (
        "total duration:       1ms\neval count:           3 token(s)\n"
    )


@pytest.mark.parametrize(
    ("size", "vram", "expected"),
    [
        (10, 0, "100% CPU"),
        (10, 10, "100% GPU"),
        (100, 52, "48%/52% CPU/GPU"),
        (1000, 995, "1%/99% CPU/GPU"),
        (100, 150, "Unknown"),
    ],
    ids=["cpu", "gpu", "split", "split-rounds-half-up", "unknown"],
)
def test_processor(size: int, vram: int, expected: str) -> None:
    assert processor(size, vram) == expected


def _stamp(delta: timedelta) -> str:
    return (NOW + delta).isoformat()


LIST_MODELS = [
    {
        "name": "model1",
        "digest": "sha256:abc123",
        "size": 1024,
        "modified_at": _stamp(-timedelta(hours=24)),
    },
    {
        "name": "model2",
        "digest": "sha256:def456",
        "size": 2048,
        "modified_at": _stamp(-timedelta(hours=48)),
    },
]


@pytest.mark.parametrize(
    ("prefix", "expected"),
    [
        (
            "",
            "NAME      ID              SIZE      MODIFIED     \n"
            "model1    sha256:abc12    1.0 KB    24 hours ago    \n"
            "model2    sha256:def45    2.0 KB    2 days ago      \n",
        ),
        (
            "MODEL1",
            "NAME      ID              SIZE      MODIFIED     \n"
            "model1    sha256:abc12    1.0 KB    24 hours ago    \n",
        ),
        ("nothing", "NAME    ID    SIZE    MODIFIED \n"),
    ],
    ids=["all", "prefix-ignores-case", "no-match"],
)
def test_list_table(prefix: str, expected: str) -> None:
    assert list_table([ModelEntry.model_validate(m) for m in LIST_MODELS], NOW, prefix) == expected


def test_list_table_remote_model_has_no_size() -> None:
    models = [
        {
            "name": "gpt-oss:120b-cloud",
            "digest": "0123456789abcdef",
            "size": 384,
            "remote_model": "gpt-oss:120b",
            "modified_at": _stamp(-timedelta(days=21)),
        }
    ]
    assert list_table([ModelEntry.model_validate(m) for m in models], NOW) == (
        "NAME                  ID              SIZE    MODIFIED    \n"
        "gpt-oss:120b-cloud    0123456789ab    -       3 weeks ago    \n"
    )


def test_ps_table() -> None:
    digest = "bdbd181c33f2" + "0" * 52
    raw = [
        {
            "name": "qwen3:14b",
            "digest": digest,
            "size": 9600000000,
            "size_vram": 9600000000,
            "context_length": 4096,
            "expires_at": _stamp(timedelta(minutes=4, seconds=30)),
        },
        {
            "name": "llama3.2:latest",
            "digest": digest,
            "size": 2000000000,
            "size_vram": 0,
            "context_length": 8192,
            "expires_at": "2318-09-12T12:00:00Z",
        },
        {
            "name": "gone:latest",
            "digest": digest,
            "size": 1000,
            "size_vram": 400,
            "context_length": 2048,
            "expires_at": _stamp(-timedelta(seconds=3)),
        },
    ]
    models = [RunningModel.model_validate(m) for m in raw]
    assert ps_table(models, NOW).splitlines(keepends=True) == [
        "NAME               ID              SIZE      PROCESSOR          "
        "CONTEXT    UNTIL              \n",
        "qwen3:14b          bdbd181c33f2    9.6 GB    100% GPU           "
        "4096       4 minutes from now    \n",
        "llama3.2:latest    bdbd181c33f2    2 GB      100% CPU           "
        "8192       Forever               \n",
        "gone:latest        bdbd181c33f2    1 KB      60%/40% CPU/GPU    "
        "2048       Stopping...           \n",
    ]
    # Unlike ``list``, Ollama's ``ps`` prefix filter is case-sensitive.
    assert ps_table(models, NOW, "QWEN") == "NAME    ID    SIZE    PROCESSOR    CONTEXT    UNTIL \n"


def test_wrap_cell_balances_lines() -> None:
    assert wrap_cell("aaa bbb ccc", 7) == ["aaa bbb", "ccc"]
    assert wrap_cell("a-very-long-single-word", 5) == ["a-very-long-single-word"]


def test_render_table_pads_wrapped_rows() -> None:
    # Continuation lines fill empty cells with two spaces, as tablewriter does.
    rows = [["", "one two three four five six seven"], ["", "x"]]
    assert render_table(None, rows, max_width=10).replace(" ", ".") == (
        "....one.two.......\n"
        "......three.four....\n"
        "......five.six......\n"
        "......seven.........\n"
        "....x.............\n"
    )


DETAILS = {"family": "test", "parameter_size": "7B", "quantization_level": "FP16"}

SHOW_CASES: list[tuple[str, dict[str, Any], str]] = [
    (
        "bare-details",
        {"details": DETAILS},
        "  Model\n"
        "    architecture    test    \n"
        "    parameters      7B      \n"
        "    quantization    FP16    \n"
        "\n",
    ),
    (
        "bare-model-info",
        {
            "details": DETAILS,
            "model_info": {
                "general.architecture": "test",
                "general.parameter_count": 7_000_000_000,
                "test.context_length": 0,
                "test.embedding_length": 0,
            },
        },
        "  Model\n"
        "    architecture        test    \n"
        "    parameters          7B      \n"
        "    context length      0       \n"
        "    embedding length    0       \n"
        "    quantization        FP16    \n"
        "\n",
    ),
    (
        "parameter-count-fallback",
        {
            "details": {"quantization_level": "Q4_K_M"},
            "model_info": {"general.architecture": "llama", "general.parameter_count": 1235814432},
        },
        "  Model\n"
        "    architecture    llama     \n"
        "    parameters      1.2B      \n"
        "    quantization    Q4_K_M    \n"
        "\n",
    ),
    (
        "parameters",
        {
            "details": DETAILS,
            "parameters": "\nstop never\nstop gonna\nstop give\nstop you\nstop up\ntemperature 99",
        },
        "  Model\n"
        "    architecture    test    \n"
        "    parameters      7B      \n"
        "    quantization    FP16    \n"
        "\n"
        "  Parameters\n"
        "    stop           never    \n"
        "    stop           gonna    \n"
        "    stop           give     \n"
        "    stop           you      \n"
        "    stop           up       \n"
        "    temperature    99       \n"
        "\n",
    ),
    (
        "projector",
        {
            "details": DETAILS,
            "projector_info": {
                "general.architecture": "clip",
                "general.parameter_count": 133_700_000,
                "clip.vision.embedding_length": 0,
                "clip.vision.projection_dim": 0,
            },
        },
        "  Model\n"
        "    architecture    test    \n"
        "    parameters      7B      \n"
        "    quantization    FP16    \n"
        "\n"
        "  Projector\n"
        "    architecture        clip       \n"
        "    parameters          133.70M    \n"
        "    embedding length    0          \n"
        "    dimensions          0          \n"
        "\n",
    ),
    (
        "system",
        {"details": DETAILS, "system": "You are a pirate!\nAhoy, matey!\nWeigh anchor!\n   "},
        "  Model\n"
        "    architecture    test    \n"
        "    parameters      7B      \n"
        "    quantization    FP16    \n"
        "\n"
        "  System\n"
        "    You are a pirate!    \n"
        "    Ahoy, matey!         \n"
        "    ...                  \n"
        "\n",
    ),
    (
        "license",
        {"details": DETAILS, "license": "MIT License\nCopyright (c) Ollama\n"},
        "  Model\n"
        "    architecture    test    \n"
        "    parameters      7B      \n"
        "    quantization    FP16    \n"
        "\n"
        "  License\n"
        "    MIT License             \n"
        "    Copyright (c) Ollama    \n"
        "\n",
    ),
    (
        "capabilities",
        {"details": DETAILS, "capabilities": ["vision", "tools"]},
        "  Model\n"
        "    architecture    test    \n"
        "    parameters      7B      \n"
        "    quantization    FP16    \n"
        "\n"
        "  Capabilities\n"
        "    vision    \n"
        "    tools     \n"
        "\n",
    ),
    (
        "requires",
        {"details": DETAILS, "requires": "0.19.0"},
        "  Model\n"
        "    architecture    test      \n"
        "    parameters      7B        \n"
        "    quantization    FP16      \n"
        "    requires        0.19.0    \n"
        "\n",
    ),
]


@pytest.mark.parametrize(
    ("resp", "expected"), [c[1:] for c in SHOW_CASES], ids=[c[0] for c in SHOW_CASES]
)
def test_show_info(resp: dict[str, Any], expected: str) -> None:
    assert show_info(ShowResponse.model_validate(resp)) == expected


def test_show_info_verbose_metadata_and_tensors() -> None:
    resp = ShowResponse.model_validate(
        {
            "details": {
                "family": "llama",
                "parameter_size": "134.52M",
                "quantization_level": "Q4_1",
            },
            "model_info": {
                "general.architecture": "llama",
                "general.parameter_count": 134515008,
                "tokenizer.ggml.tokens": ["<|endoftext|>", "<|im_start|>", "a"],
                "tokenizer.ggml.merges": [],
                "general.flag": True,
                "x.f": 0.5,
            },
            "tensors": [{"name": "token_embd.weight", "type": "Q8_0", "shape": [576, 49152]}],
        }
    )
    out = show_info(resp, verbose=True)
    assert out.endswith(
        "  Metadata\n"
        "    general.architecture       llama                         \n"
        "    general.flag               true                          \n"
        "    general.parameter_count    1.34515008e+08                \n"
        "    tokenizer.ggml.merges      []                            \n"
        "    tokenizer.ggml.tokens      [<|endoftext|> ...+2 more]    \n"
        "    x.f                        0.5                           \n"
        "\n"
        "  Tensors\n"
        "    token_embd.weight    Q8_0    [576 49152]    \n"
        "\n"
    )
    assert "Metadata" not in show_info(resp)
