#!/usr/bin/env bash
# Every llamaport route, once, with curl.
#
#   LLAMAPORT_URL=http://127.0.0.1:11434 examples/curl.sh
#
# LLAMAPORT_URL is the server's base URL (default http://127.0.0.1:11434) and
# LLAMAPORT_MODEL the model (default smollm2:135m). Each `call` line is one
# route: to show a new route, add one line to its section.
set -euo pipefail

BASE="${LLAMAPORT_URL:-http://127.0.0.1:11434}"
MODEL="${LLAMAPORT_MODEL:-smollm2:135m}"

# call METHOD PATH [JSON]: print the route and its answer; a 4xx/5xx stops the script.
call() {
  local method=$1 path=$2 body=${3-}
  echo "### $method $path"
  if [[ -n $body ]]; then
    curl -sS --fail-with-body -X "$method" "$BASE$path" -H 'Content-Type: application/json' -d "$body"
  else
    curl -sS --fail-with-body -X "$method" "$BASE$path"
  fi
  echo
}

# --- native (Ollama) routes: NDJSON streams unless "stream": false ---
call GET  /
call GET  /api/version
call GET  /api/tags
call GET  /api/ps
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
