"""A model that thinks: SmolLM2's weights under a Qwen3-style thinking template.

No thinking model ships with the test dependencies, so :func:`write_thinking_gguf`
writes a copy of the embedded GGUF whose ``tokenizer.chat_template`` opens
``<think>`` in the generation prompt (or, with ``enable_thinking`` false,
renders an empty ``<think></think>`` block). The tiny model does not really
reason; constrained decoding and the output parser are what the tests check.
"""

from __future__ import annotations

from pathlib import Path

import gguf

from llamaport.storage.gguf_meta import read_gguf_info
from llamaport.storage.names import parse_name
from llamaport.storage.store import Store
from tests._tiny_models import write_embedded_copy

THINKING_MODEL = "smollm2-think:135m"
THINKING_TEMPLATE = (
    "{%- for message in messages %}"
    "{{ '<|im_start|>' + message.role + '\\n' }}"
    "{%- if message.role == 'assistant' and '</think>' in message.content %}"
    "{{ message.content.split('</think>')[-1].lstrip('\\n') }}"
    "{%- else %}{{ message.content }}{%- endif %}"
    "{{ '<|im_end|>\\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}"
    "{%- if enable_thinking is defined and enable_thinking is false %}"
    "{{ '<think>\\n\\n</think>\\n\\n' }}"
    "{%- else %}{{ '<think>\\n' }}{%- endif %}"
    "{%- endif %}"
)


def write_thinking_gguf(path: Path) -> None:
    write_embedded_copy(path, {gguf.Keys.Tokenizer.CHAT_TEMPLATE: THINKING_TEMPLATE})


def register_gguf(models: Path, name: str, gguf_path: Path) -> None:
    """Store ``gguf_path`` as model ``name``: a config and one weights layer."""
    store = Store(models)
    weights = store.import_blob_file(gguf_path, link=True)
    store.write_manifest(
        parse_name(name), store.weights_manifest(read_gguf_info(gguf_path), weights)
    )
