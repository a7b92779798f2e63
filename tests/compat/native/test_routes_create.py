"""``/api/create``: layers, progress lines, quantize, adapters, and every bad
input refused with a 4xx before anything is written."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import ollama
import pytest

from llamaport.storage.embedded import embedded_gguf_path
from llamaport.storage.manifest import MEDIA_TYPE_ADAPTER, Layer, Manifest
from llamaport.storage.names import parse_name
from llamaport.storage.store import Store
from tests._tiny_models import CORRUPTIONS, write_corrupt, write_lora
from tests.compat._native import GREEDY, ndjson, single_json
from tests.compat.native.conftest import upload
from tests.conftest import MODEL, Server

Json = dict[str, Any]
A_DIGEST = "sha256:" + "a" * 64


def manifest_of(server: Server, name: str) -> Json:
    path = server.home / "models" / "manifests" / "registry.ollama.ai" / "library"
    model, _, tag = name.partition(":")
    data: Json = json.loads((path / model / (tag or "latest")).read_bytes())
    return data


def layer_bytes(server: Server, manifest: Json, media_type: str) -> bytes:
    (layer,) = [x for x in manifest["layers"] if x["mediaType"] == media_type]
    return (server.home / "models" / "blobs" / layer["digest"].replace(":", "-")).read_bytes()


def create(client: httpx.Client, body: Json) -> list[Json]:
    response = client.post("/api/create", json=body)
    lines = ndjson(response)
    assert lines[-1] == {"status": "success"}, lines
    return lines


def refused(client: httpx.Client, body: Json, status: int = 400) -> str:
    response = client.post("/api/create", json=body)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert isinstance(error, str)
    return error


def generate(client: httpx.Client, model: str, **extra: Any) -> Json:
    body = {"model": model, "prompt": "hi", "stream": False, **extra}
    return single_json(client.post("/api/generate", json=body))


def names(client: httpx.Client) -> set[str]:
    return {m["name"] for m in client.get("/api/tags").json()["models"]}


# -- from an existing model ------------------------------------------------------------


def test_create_from_model_with_system_parameters_messages(
    mclient: httpx.Client, manage_server: Server
) -> None:
    body = {
        "model": "mario",
        "from": MODEL,
        "system": "You are Mario.",
        "parameters": {"num_predict": 3, "temperature": 0, "stop": ["\n\n"]},
        "messages": [
            {"role": "user", "content": "Is Toronto in Canada?"},
            {"role": "assistant", "content": "yes"},
        ],
        "license": ["MIT", "Apache"],
        "requires": "0.14.0",
    }
    lines = create(mclient, body)
    statuses = [line["status"] for line in lines]
    assert statuses[-2:] == ["writing manifest", "success"]
    assert any(s.startswith("using existing layer sha256:") for s in statuses)
    assert sum(s.startswith(("creating new layer", "using existing layer")) for s in statuses) >= 5
    manifest = manifest_of(manage_server, "mario")
    kinds = [x["mediaType"].rsplit(".", 1)[-1] for x in manifest["layers"]]
    assert kinds == ["model", "system", "license", "license", "params", "messages"]
    assert manifest["layers"][0]["from"] == MODEL
    assert layer_bytes(manage_server, manifest, "application/vnd.ollama.image.system") == (
        b"You are Mario."
    )
    params = json.loads(layer_bytes(manage_server, manifest, "application/vnd.ollama.image.params"))
    assert params == {"num_predict": 3, "stop": ["\n\n"], "temperature": 0.0}
    config = json.loads(
        (
            manage_server.home / "models" / "blobs" / manifest["config"]["digest"].replace(":", "-")
        ).read_bytes()
    )
    assert config["requires"] == "0.14.0"
    final = generate(mclient, "mario", options={"seed": 1})
    assert 0 < final["eval_count"] <= 3, "PARAMETER num_predict bounds the answer"
    longer = generate(mclient, "mario", options={"num_predict": 6, "seed": 1})
    assert longer["eval_count"] <= 6, "request options still win over the model's"


def test_a_template_replaces_the_base_template(
    mclient: httpx.Client, manage_server: Server
) -> None:
    template = "{{ if .System }}{{ .System }} {{ end }}Q: {{ .Prompt }} A:"
    create(mclient, {"model": "templated", "from": MODEL, "template": template})
    manifest = manifest_of(manage_server, "templated")
    stored = layer_bytes(manage_server, manifest, "application/vnd.ollama.image.template")
    assert stored == template.encode()
    assert generate(mclient, "templated", options={"num_predict": 2})["eval_count"] <= 2


def test_parameters_merge_and_messages_replace(
    mclient: httpx.Client, manage_server: Server
) -> None:
    create(mclient, {"model": "base-p", "from": MODEL, "parameters": {"top_k": 7, "seed": 3}})
    create(
        mclient,
        {
            "model": "child-p",
            "from": "base-p",
            "parameters": {"seed": 9},
            "messages": [{"role": "user", "content": "hello"}],
        },
    )
    child = manifest_of(manage_server, "child-p")
    params = json.loads(layer_bytes(manage_server, child, "application/vnd.ollama.image.params"))
    assert params == {"seed": 9, "top_k": 7}
    show = mclient.post("/api/show", json={"model": "child-p"}).json()
    assert show["messages"] == [{"role": "user", "content": "hello"}]


def test_create_replaces_an_existing_model_and_collects_its_old_layers(
    mclient: httpx.Client, manage_server: Server
) -> None:
    create(mclient, {"model": "again", "from": MODEL, "system": "first version"})
    first = manifest_of(manage_server, "again")
    create(mclient, {"model": "again", "from": MODEL, "system": "second version"})
    old = [x["digest"] for x in first["layers"] if x["mediaType"].endswith("system")]
    assert mclient.head(f"/api/blobs/{old[0]}").status_code == 404


def test_stream_false_answers_one_object(mclient: httpx.Client) -> None:
    response = mclient.post(
        "/api/create", json={"model": "quiet", "from": MODEL, "system": "s", "stream": False}
    )
    assert single_json(response) == {"status": "success"}
    assert "quiet:latest" in names(mclient)


def test_the_ollama_client_creates_copies_and_deletes(manage_server: Server, ggufs: Path) -> None:
    client = ollama.Client(host=manage_server.url)
    digest = client.create_blob(ggufs / "tiny-f16.gguf")
    assert digest.startswith("sha256:")
    done = client.create(model="tiny-client", files={"tiny.gguf": digest}, system="be brief")
    assert done.status == "success"
    client.copy("tiny-client", "tiny-client2")
    assert {"tiny-client:latest", "tiny-client2:latest"} <= names(manage_server.client())
    client.delete("tiny-client2")
    with pytest.raises(ollama.ResponseError) as excinfo:
        client.delete("tiny-client2")
    assert excinfo.value.status_code == 404


# -- from uploaded files, quantize ---------------------------------------------------


def test_create_from_an_uploaded_gguf_runs(mclient: httpx.Client, ggufs: Path) -> None:
    digest = upload(mclient, ggufs / "tiny-f16.gguf")
    lines = create(mclient, {"model": "tiny", "files": {"tiny-f16.gguf": digest}})
    assert lines[0] == {"status": "parsing GGUF"}
    assert {"status": f"using existing layer {digest}"} in lines
    final = generate(mclient, "tiny", options={"num_predict": 4, "temperature": 0})
    assert final["done"] is True and final["eval_count"] <= 4
    tags = {m["name"]: m for m in mclient.get("/api/tags").json()["models"]}
    assert tags["tiny:latest"]["details"]["quantization_level"] == "F16"


@pytest.mark.parametrize("target", ["q4_K_M", "Q8_0"])
def test_quantize_an_f16_model(mclient: httpx.Client, ggufs: Path, target: str) -> None:
    digest = upload(mclient, ggufs / "tiny-f16.gguf")
    name = f"tiny-{target.lower()}"
    lines = create(mclient, {"model": name, "files": {"m.gguf": digest}, "quantize": target})
    status = f"quantizing F16 model to {target.upper()}"
    steps = [line for line in lines if line["status"] == status]
    assert len(steps) > 2
    assert all(s["digest"] == "0000000000000000000" for s in steps)
    done = [s.get("completed", 0) for s in steps]  # Go omits a zero
    assert done == sorted(done) and done[-1] == steps[0]["total"]
    after = [line["status"] for line in lines[lines.index(steps[-1]) + 1 :]]
    assert after[0] == "verifying conversion"
    assert after[1].startswith("creating new layer sha256:")
    tags = {m["name"]: m for m in mclient.get("/api/tags").json()["models"]}
    assert tags[f"{name}:latest"]["details"]["quantization_level"] == target.upper()
    assert tags[f"{name}:latest"]["size"] < (ggufs / "tiny-f16.gguf").stat().st_size
    final = generate(mclient, name, options={"num_predict": 3, "temperature": 0})
    assert final["eval_count"] <= 3


@pytest.mark.parametrize(
    ("quantize", "error"),
    [
        ("q9_X", "unsupported quantization type q9_X - supported types are F32, F16, "),
        ("q4_K_M", "quantization is only supported for F16, BF16 and F32 models"),
    ],
    ids=["unknown-type", "already-quantized"],
)
def test_quantize_refusals(mclient: httpx.Client, quantize: str, error: str) -> None:
    message = refused(mclient, {"model": "nq", "from": MODEL, "quantize": quantize})
    assert message.startswith(error)
    assert "nq:latest" not in names(mclient)


# -- adapters ------------------------------------------------------------------------


def test_a_model_with_a_lora_adapter_runs_in_its_own_engine(
    mclient: httpx.Client, ggufs: Path
) -> None:
    digest = upload(mclient, ggufs / "smollm2-lora.gguf")
    create(mclient, {"model": "smol-lora", "from": MODEL, "adapters": {"lora.gguf": digest}})
    show = mclient.post("/api/show", json={"model": "smol-lora"}).json()
    assert "ADAPTER " in show["modelfile"]
    adapted = generate(mclient, "smol-lora", options=GREEDY, keep_alive="1m")
    base = generate(mclient, MODEL, options=GREEDY, keep_alive="1m")
    assert adapted["eval_count"] > 0 and base["eval_count"] > 0
    loaded = {m["name"] for m in mclient.get("/api/ps").json()["models"]}
    assert {"smol-lora:latest", MODEL} <= loaded


def test_the_adapter_changes_what_the_model_says(
    mclient: httpx.Client, ggufs: Path, tmp_path: Path
) -> None:
    """A strong random LoRA on every attention output: greedy text must differ."""
    smollm = embedded_gguf_path()
    assert smollm is not None
    targets = tuple(f"blk.{i}.attn_output.weight" for i in range(30))
    lora = write_lora(tmp_path / "strong.gguf", smollm, targets=targets, strength=0.5)
    digest = upload(mclient, lora)
    create(mclient, {"model": "smol-strong", "from": MODEL, "adapters": {"s.gguf": digest}})
    options = {"temperature": 0, "num_predict": 8, "seed": 1}
    adapted = generate(mclient, "smol-strong", options=options, keep_alive=0)
    base = generate(mclient, MODEL, options=options)
    assert adapted["response"] != base["response"]


@pytest.mark.parametrize(
    ("make", "error"),
    [
        ("transposed", "does not fit the model"),
        ("other-arch", "is for architecture qwen2, but the model is llama"),
        ("a-model", "is not a LoRA adapter GGUF"),
        ("wrong-base", "does not fit the model"),
        ("no-tensors", "has no LoRA tensors"),
        ("not-gguf", "not a valid GGUF file"),
    ],
)
def test_bad_adapters_are_refused(
    mclient: httpx.Client, ggufs: Path, tmp_path: Path, make: str, error: str
) -> None:
    base = ggufs / "tiny-f16.gguf"
    smollm = embedded_gguf_path()
    assert smollm is not None
    path = tmp_path / f"{make}.gguf"
    if make == "transposed":
        write_lora(path, smollm, transpose=True)
    elif make == "other-arch":
        write_lora(path, smollm, arch="qwen2")
    elif make == "a-model":
        path = base
    elif make == "wrong-base":
        write_lora(path, base)
    elif make == "no-tensors":
        write_lora(path, smollm, targets=())
    else:
        write_corrupt(path, "not_gguf", base)
    digest = upload(mclient, path)
    message = refused(mclient, {"model": "bad-lora", "from": MODEL, "adapters": {"a.gguf": digest}})
    assert error in message
    assert "bad-lora:latest" not in names(mclient)


# -- bad input -------------------------------------------------------------------------


@pytest.mark.parametrize("kind", CORRUPTIONS)
def test_a_file_that_is_not_a_whole_gguf_is_refused(
    mclient: httpx.Client, manage_server: Server, ggufs: Path, tmp_path: Path, kind: str
) -> None:
    path = write_corrupt(tmp_path / f"{kind}.gguf", kind, ggufs / "tiny-f16.gguf")
    digest = upload(mclient, path)
    message = refused(mclient, {"model": f"broken-{kind}", "files": {"x.gguf": digest}})
    assert message == "not a valid GGUF file"
    assert f"broken-{kind}:latest" not in names(mclient)


@pytest.mark.parametrize(
    ("body", "status", "error"),
    [
        ({"model": "x"}, 400, "neither 'from' or 'files' was specified"),
        ({"model": "bad name", "from": MODEL}, 400, "invalid model name"),
        ({"model": "x", "from": "nope"}, 404, "model 'nope' not found"),
        ({"model": "x", "from": MODEL, "parameters": {"numa": 1}}, 400, "unknown parameter 'numa'"),
        (
            {"model": "x", "from": MODEL, "parameters": {"num_ctx": "lots"}},
            400,
            "invalid int value [lots]",
        ),
        (
            {"model": "x", "from": MODEL, "parameters": {"temperature": [1]}},
            400,
            'option "temperature" must be of type float32',
        ),
        (
            {"model": "x", "files": {"/etc/x.gguf": "sha256:" + "a" * 64}},
            400,
            "file path must be relative",
        ),
        (
            {"model": "x", "files": {"../x.gguf": "sha256:" + "a" * 64}},
            400,
            "file path must be relative",
        ),
        ({"model": "x", "files": {"x.gguf": ""}}, 400, "invalid digest format"),
        ({"model": "x", "files": {"x.gguf": "sha256:zz"}}, 400, "invalid digest format"),
        (
            {"model": "x", "files": {"x.gguf": "sha256:" + "a" * 64}},
            400,
            f'blob "sha256:{"a" * 64}" not found',
        ),
        ({"model": "x", "from": MODEL, "files": 3}, 400, "json: cannot unmarshal number"),
        ({"model": "x", "from": MODEL, "template": "{{ .Prompt "}, 400, "template error: "),
    ],
    ids=[
        "nothing",
        "bad-name",
        "missing-from",
        "unknown-parameter",
        "parameter-text-type",
        "parameter-json-type",
        "absolute-path",
        "dotdot-path",
        "empty-digest",
        "bad-digest",
        "missing-blob",
        "bad-json-type",
        "bad-template",
    ],
)
def test_create_refusals(mclient: httpx.Client, body: Json, status: int, error: str) -> None:
    message = refused(mclient, body, status)
    assert message.startswith(error), message
    assert "x:latest" not in names(mclient)


# -- the pre-0.5.5 form ------------------------------------------------------------------


def test_legacy_modelfile_form(mclient: httpx.Client, manage_server: Server, ggufs: Path) -> None:
    modelfile = (
        f'FROM {MODEL}\nSYSTEM """Be terse."""\nPARAMETER num_predict 2\n'
        "PARAMETER stop <|im_end|>\nMESSAGE user hi\nMESSAGE assistant hello\n"
    )
    create(mclient, {"name": "legacy", "modelfile": modelfile})
    manifest = manifest_of(manage_server, "legacy")
    params = json.loads(layer_bytes(manage_server, manifest, "application/vnd.ollama.image.params"))
    assert params == {"num_predict": 2, "stop": ["<|im_end|>"]}
    assert generate(mclient, "legacy")["eval_count"] <= 2
    digest = upload(mclient, ggufs / "tiny-f16.gguf")
    create(mclient, {"name": "legacy-blob", "modelfile": f"FROM @{digest}\n"})
    assert "legacy-blob:latest" in names(mclient)


def test_a_modelfile_with_each_instruction_is_in_effect(mclient: httpx.Client) -> None:
    """SYSTEM, MESSAGE and TEMPLATE show in the rendered prompt; PARAMETER in the generation."""
    modelfile = (
        f"FROM {MODEL}\n"
        'TEMPLATE """{{ range .Messages }}<{{ .Role }}>{{ .Content }}</{{ .Role }}>{{ end }}"""\n'
        "SYSTEM You are Mario.\n"
        "PARAMETER num_predict 3\n"
        "MESSAGE user Is Toronto in Canada?\n"
        "MESSAGE assistant yes\n"
    )
    create(mclient, {"name": "every-instruction", "modelfile": modelfile})
    body = {
        "model": "every-instruction",
        "messages": [{"role": "user", "content": "And Paris?"}],
        "_debug_render_only": True,
    }
    rendered = single_json(mclient.post("/api/chat", json=body))["_debug_info"]
    assert rendered["rendered_template"] == (
        "<system>You are Mario.</system><user>Is Toronto in Canada?</user>"
        "<assistant>yes</assistant><user>And Paris?</user>"
    )
    body = {"model": "every-instruction", "messages": body["messages"], "stream": False}
    answer = single_json(mclient.post("/api/chat", json=body))
    assert 0 < answer["eval_count"] <= 3, "PARAMETER num_predict bounds the answer"


@pytest.mark.parametrize(
    ("modelfile", "error"),
    [
        (f"FROM {MODEL}\nPARAMETER numa 1\n", "(line 2): unknown parameter 'numa'"),
        (f"FROM {MODEL}\nBOGUS x\n", "(line 2): command must be one of"),
        ("SYSTEM hi\n", "no FROM line"),
        ("FROM /some/local/file.gguf\n", "FROM /some/local/file.gguf: upload the file"),
    ],
    ids=["unknown-parameter", "bad-instruction", "no-from", "local-path"],
)
def test_legacy_modelfile_errors(mclient: httpx.Client, modelfile: str, error: str) -> None:
    message = refused(mclient, {"name": "x", "modelfile": modelfile})
    assert message.startswith(error), message


# -- a damaged blob on disk ----------------------------------------------------------------


def test_a_corrupted_blob_is_reported_on_load(
    mclient: httpx.Client, manage_server: Server, ggufs: Path
) -> None:
    digest = upload(mclient, ggufs / "tiny-f16.gguf")
    create(mclient, {"model": "to-rot", "files": {"m.gguf": digest}, "system": "x"})
    blob = manage_server.home / "models" / "blobs" / digest.replace(":", "-")
    data = bytearray(blob.read_bytes())
    data[len(data) // 2] ^= 0xFF
    rotted = blob.with_name("rotted")
    rotted.write_bytes(bytes(data))
    rotted.replace(blob)
    response = mclient.post("/api/generate", json={"model": "to-rot", "prompt": "hi"})
    assert response.status_code == 500
    error = response.json()["error"]
    assert f"blob {digest} is corrupt" in error and "to-rot" in error


def test_a_truncated_model_is_reported_and_skipped_by_tags(
    mclient: httpx.Client, manage_server: Server, ggufs: Path, tmp_path: Path
) -> None:
    source = write_corrupt(tmp_path / "half.gguf", "truncated", ggufs / "tiny-f16.gguf")
    copy = tmp_path / "whole.gguf"
    copy.write_bytes((ggufs / "tiny-f16.gguf").read_bytes() + b"\0" * 32)
    digest = upload(mclient, copy)
    create(mclient, {"model": "to-cut", "files": {"m.gguf": digest}})
    blob = manage_server.home / "models" / "blobs" / digest.replace(":", "-")
    blob.write_bytes(source.read_bytes())
    listed = mclient.get("/api/tags")
    assert listed.status_code == 200
    assert "to-cut:latest" not in {m["name"] for m in listed.json()["models"]}
    assert MODEL in {m["name"] for m in listed.json()["models"]}
    response = mclient.post("/api/generate", json={"model": "to-cut", "prompt": "hi"})
    assert response.status_code == 500
    error = response.json()["error"]
    assert error.startswith(f"model to-cut:latest: blob {digest} is not a valid GGUF file")


def test_an_adapter_that_does_not_fit_fails_its_load_cleanly(
    mclient: httpx.Client, manage_server: Server, ggufs: Path, tmp_path: Path
) -> None:
    """Written behind the server's back (create refuses it): the check before
    the load names the misfit, and the server and the base model carry on."""
    lora = write_lora(tmp_path / "misfit.gguf", ggufs / "tiny-f16.gguf")
    store = Store(manage_server.home / "models")
    base, _ = store.read_manifest(parse_name(MODEL))
    ref = store.import_blob_file(lora)
    layers = [*base.layers, Layer(MEDIA_TYPE_ADAPTER, ref.digest, ref.size)]
    store.write_manifest(parse_name("misfit"), Manifest(config=base.config, layers=layers))
    response = mclient.post("/api/generate", json={"model": "misfit", "prompt": "hi"})
    assert response.status_code == 500
    assert response.json()["error"] == (
        f"model misfit:latest: adapter {ref.digest} does not fit the model: "
        "tensor blk.0.attn_q.weight"
    )
    assert generate(mclient, MODEL, options={"num_predict": 1})["done"] is True
