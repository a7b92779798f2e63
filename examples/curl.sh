#!/usr/bin/env bash
# Every llamaport route, once, with curl.
#
#   LLAMAPORT_URL=http://127.0.0.1:11434 examples/curl.sh
#
# LLAMAPORT_URL is the server's base URL (default http://127.0.0.1:11434),
# LLAMAPORT_MODEL the model (default smollm2:135m) and LLAMAPORT_REGISTRY an
# OCI registry for push and pull over plain HTTP (skipped when unset). Each `call` line is one
# route: to show a new route, add one line to its section.
set -euo pipefail

BASE="${LLAMAPORT_URL:-http://127.0.0.1:11434}"
MODEL="${LLAMAPORT_MODEL:-smollm2:135m}"
REGISTRY="${LLAMAPORT_REGISTRY:-}"  # e.g. 127.0.0.1:5000: a registry to push to and pull from

# call METHOD PATH [JSON|@FILE]: print the route and its answer (kept in $LAST);
# a 4xx/5xx prints the error and stops the script.
call() {
  local method=$1 path=$2 body=${3-}
  local args=(-sS --fail-with-body -X "$method")
  echo "### $method $path"
  if [[ $method == HEAD ]]; then
    args=(-sS --fail --head)
  elif [[ $body == @* ]]; then
    args+=(--data-binary "$body")
  elif [[ -n $body ]]; then
    args+=(-H 'Content-Type: application/json' -d "$body")
  fi
  if ! LAST=$(curl "${args[@]}" "$BASE$path"); then
    echo "$LAST"
    return 1
  fi
  echo "$LAST"
}

# field PATH: a field of the last JSON answer, e.g. `field id` or `field data.0.id`.
field() {
  python3 -c 'import json, sys
value = json.loads(sys.argv[2])
for key in sys.argv[1].split("."):
    value = value[int(key)] if key.isdigit() else value[key]
print(value)' "$1" "$LAST"
}

# --- native (Ollama) routes: NDJSON streams unless "stream": false ---
call GET  /
call GET  /api/version
call GET  /api/tags
call GET  /api/ps
call GET  /api/upstreams   # proxy mode: each upstream's health (empty when local only)
call POST /api/show        '{"model": "'"$MODEL"'"}'
call POST /api/generate    '{"model": "'"$MODEL"'", "prompt": "Why is the sky blue?", "options": {"num_predict": 16}}'
call POST /api/chat        '{"model": "'"$MODEL"'", "stream": false, "options": {"num_predict": 16}, "messages": [{"role": "user", "content": "Hello!"}]}'
call POST /api/chat        '{"model": "'"$MODEL"'", "stream": false, "options": {"num_predict": 32}, "messages": [{"role": "user", "content": "Weather in Paris?"}], "tools": [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string", "maxLength": 20}}, "required": ["city"]}}}], "tool_choice": "required"}'
call POST /api/chat        '{"model": "'"$MODEL"'", "stream": false, "options": {"num_predict": 32}, "messages": [{"role": "user", "content": "Name a city."}], "format": {"type": "object", "properties": {"city": {"type": "string", "maxLength": 20}}, "required": ["city"]}}'
call POST /api/embed       '{"model": "'"$MODEL"'", "input": ["llamas", "alpacas"]}'
call POST /api/embeddings  '{"model": "'"$MODEL"'", "prompt": "llamas"}'
call POST /api/tokenize    '{"model": "'"$MODEL"'", "prompt": "Hello, llamas!"}'
call POST /api/detokenize  '{"model": "'"$MODEL"'", "tokens": [19556, 28, 13722, 12371, 17]}'

# --- OpenAI routes: SSE streams when "stream": true ---
call GET  /v1/models
call GET  "/v1/models/$MODEL"
call POST /v1/chat/completions '{"model": "'"$MODEL"'", "max_tokens": 16, "messages": [{"role": "user", "content": "Hello!"}]}'
call POST /v1/chat/completions '{"model": "'"$MODEL"'", "max_tokens": 16, "stream": true, "stream_options": {"include_usage": true}, "messages": [{"role": "user", "content": "Hello!"}]}'
call POST /v1/completions  '{"model": "'"$MODEL"'", "max_tokens": 16, "prompt": "Llamas are"}'
call POST /v1/embeddings   '{"model": "'"$MODEL"'", "input": ["llamas", "alpacas"], "encoding_format": "float"}'

# --- model management: blobs, create, copy, push, pull, delete ---
BLOB=$(mktemp)
trap 'rm -f "$BLOB"' EXIT
printf 'a license, uploaded as a blob' >"$BLOB"
DIGEST="sha256:$(sha256sum "$BLOB" | cut -d' ' -f1)"
call POST "/api/blobs/$DIGEST" "@$BLOB"
call HEAD "/api/blobs/$DIGEST"
call POST /api/create      '{"model": "mario", "from": "'"$MODEL"'", "system": "You are Mario from Super Mario Bros.", "parameters": {"temperature": 0.7}, "stream": false}'
call POST /api/copy        '{"source": "mario", "destination": "mario-backup"}'
if [[ -n $REGISTRY ]]; then
  call POST /api/copy      '{"source": "mario", "destination": "'"$REGISTRY"'/examples/mario:latest"}'
  call POST /api/push      '{"model": "'"$REGISTRY"'/examples/mario:latest", "insecure": true, "stream": false}'
  call DELETE /api/delete  '{"model": "'"$REGISTRY"'/examples/mario:latest"}'
  call POST /api/pull      '{"model": "'"$REGISTRY"'/examples/mario:latest", "insecure": true, "stream": false}'
  call DELETE /api/delete  '{"model": "'"$REGISTRY"'/examples/mario:latest"}'
else
  echo "(set LLAMAPORT_REGISTRY to push and pull through a registry)"
fi
call DELETE /api/delete    '{"model": "mario-backup"}'
call DELETE /api/delete    '{"model": "mario"}'

# --- conversations kept by the server (llamaport extension of both faces) ---
call POST /v1/conversations '{"metadata": {"topic": "llamas"}, "items": [{"type": "message", "role": "user", "content": "Llamas are from South America."}]}'
CONV=$(field id)
call GET  /v1/conversations
call GET  "/v1/conversations/$CONV"
call POST "/v1/conversations/$CONV" '{"metadata": {"topic": "alpacas"}}'
call POST /v1/responses    '{"model": "'"$MODEL"'", "conversation": "'"$CONV"'", "input": "Where are llamas from?", "max_output_tokens": 16}'
RESP=$(field id)
call GET  "/v1/responses/$RESP"
call GET  "/v1/responses/$RESP/input_items"
call POST /api/chat        '{"model": "'"$MODEL"'", "conversation": "'"$CONV"'", "stream": false, "options": {"num_predict": 16}, "messages": [{"role": "user", "content": "And alpacas?"}]}'
call POST "/v1/conversations/$CONV/items" '{"items": [{"type": "message", "role": "user", "content": "One more note."}]}'
ITEM=$(field data.0.id)
call GET  "/v1/conversations/$CONV/items?limit=10&order=asc"
call GET  "/v1/conversations/$CONV/items/$ITEM"
call DELETE "/v1/conversations/$CONV/items/$ITEM"
call DELETE "/v1/responses/$RESP"
call DELETE "/v1/conversations/$CONV"
