"""Execute a parsed Go template (:mod:`._goparse`) over Python data.

Data is plain Python: ``dict`` for Go maps (ranged and marshalled in key
order), :class:`Struct` for Go structs (fields in declaration order, JSON
names of their own), lists, strings, numbers, booleans and ``None``. A
missing key is ``None`` and prints ``<no value>``, as Go's ``missingkey=zero``
does for ``map[string]any``. Functions are Go's builtins that templates use
plus Ollama's ``json``, ``currentDate`` and ``yesterdayDate``. Errors are
:class:`TemplateExecError`.

Templates come from clients (``template`` on ``/api/generate``, TEMPLATE in a
Modelfile), so one execution is bounded: at most :data:`MAX_STEPS` nodes
run, at most :data:`MAX_OUTPUT` characters come out, and a ``printf`` width
or precision is at most :data:`MAX_WIDTH`. Past a bound it is an error, as
Jinja's sandbox refuses ``range(100000000)``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import date, timedelta
from typing import Any

from llamaport.runtime.prompt._goparse import (
    Action,
    Branch,
    Chain,
    Cmd,
    Field,
    Function,
    Literal,
    Loop,
    Node,
    Pipe,
    Text,
    Variable,
)

__all__ = [
    "FUNCTIONS",
    "MAX_OUTPUT",
    "MAX_STEPS",
    "MAX_WIDTH",
    "JSONMap",
    "JSONText",
    "Struct",
    "TemplateExecError",
    "execute",
    "go_json",
    "go_print",
]


class TemplateExecError(ValueError):
    """Executing the template failed (a bad index, a wrong argument type...)."""


class Struct:
    """A Go struct: fields by Go name, marshalled under their JSON names in order.

    ``fields`` holds ``(go_name, json_name, value, omitempty)``.
    """

    def __init__(self, fields: Sequence[tuple[str, str, Any, bool]]) -> None:
        self.fields = list(fields)
        self._by_name = {go: value for go, _, value, _ in fields}

    def get(self, name: str) -> Any:
        return self._by_name.get(name)

    def to_json(self) -> dict[str, Any]:
        return {
            key: value for _, key, value, omit in self.fields if not (omit and not _truth(value))
        }


class JSONText(list[Any]):
    """A list (Ollama's tool list) that prints as its JSON, as its Go type does."""


class JSONMap(dict[str, Any]):
    """A map that prints as its JSON (tool call arguments, tool properties)."""


def _jsonable(value: Any) -> Any:
    if isinstance(value, Struct):
        return {k: _jsonable(v) for k, v in value.to_json().items()}
    if isinstance(value, dict):
        return {str(k): _jsonable(value[k]) for k in sorted(value, key=str)}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def go_json(value: Any) -> str:
    """Go's ``json.Marshal``: compact, map keys sorted, ``<>&`` escaped."""
    text = json.dumps(_jsonable(value), ensure_ascii=False, separators=(",", ":"))
    for char, escape in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026")):
        text = text.replace(char, escape)
    return text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


def _go_float(value: float) -> str:
    if value.is_integer() and abs(value) < 1e21:
        return str(int(value))
    return repr(value)


def go_print(value: Any) -> str:
    """Go's ``%v`` as a template prints a value."""
    if value is None:
        return "<no value>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return _go_float(value)
    if isinstance(value, str):
        return value
    if isinstance(value, Struct | JSONText | JSONMap):
        return go_json(value)
    if isinstance(value, dict):
        return "map[" + " ".join(f"{k}:{go_print(value[k])}" for k in sorted(value, key=str)) + "]"
    if isinstance(value, list | tuple):
        return "[" + " ".join(go_print(v) for v in value) + "]"
    return str(value)


def _truth(value: Any) -> bool:
    if isinstance(value, Struct):
        return True
    return bool(value)


# -- functions -------------------------------------------------------------------


def _eq(first: Any, *others: Any) -> bool:
    if not others:
        raise TemplateExecError("missing argument for comparison")
    return any(first == other for other in others)


def _compare(op: Callable[[Any, Any], bool]) -> Callable[[Any, Any], bool]:
    def compare(a: Any, b: Any) -> bool:
        try:
            return op(a, b)
        except TypeError:
            raise TemplateExecError("incompatible types for comparison") from None

    return compare


def _len(value: Any) -> int:
    if isinstance(value, str):
        return len(value.encode())
    if isinstance(value, list | tuple | dict):
        return len(value)
    raise TemplateExecError(f"len of type {type(value).__name__}")


def _index(value: Any, *keys: Any) -> Any:
    for key in keys:
        if isinstance(value, dict):
            value = value.get(key)
        elif isinstance(value, list | tuple | str) and isinstance(key, int):
            if not 0 <= key < len(value):
                raise TemplateExecError(f"index out of range: {key}")
            value = value[key]
        elif value is None:
            return None
        else:
            raise TemplateExecError(f"can't index item of type {type(value).__name__}")
    return value


def _slice(value: Any, *bounds: Any) -> Any:
    if not isinstance(value, str | list | tuple):
        raise TemplateExecError(f"can't slice item of type {type(value).__name__}")
    if len(bounds) > 2 or not all(isinstance(b, int) for b in bounds):
        raise TemplateExecError("invalid slice indices")
    start = bounds[0] if bounds else 0
    end = bounds[1] if len(bounds) > 1 else len(value)
    if not 0 <= start <= end <= len(value):
        raise TemplateExecError(f"slice index out of range: {start}:{end}")
    return value[start:end]


def _sprint(*args: Any) -> str:
    out = ""
    for i, arg in enumerate(args):
        if i and not isinstance(arg, str) and not isinstance(args[i - 1], str):
            out += " "
        out += go_print(arg)
    return out


MAX_STEPS = 1_000_000
"""Steps one execution may take: each node run and each loop iteration is one."""
MAX_OUTPUT = 1 << 22
"""Characters one execution may produce; a prompt is far shorter than this."""
MAX_WIDTH = 4096
"""The widest ``printf`` width or precision."""

_VERB = re.compile(r"%([-+# 0]*)(\d+)?(?:\.(\d+))?([a-zA-Z%])")


def _sprintf(fmt: str, *args: Any) -> str:
    queue = list(args)

    def verb(found: re.Match[str]) -> str:
        flags, width, precision, kind = found.groups()
        if max(int(width or 0), int(precision or 0)) > MAX_WIDTH:
            raise TemplateExecError(f"printf width or precision above {MAX_WIDTH}")
        if kind == "%":
            return "%"
        if not queue:
            return f"%!{kind}(MISSING)"
        arg = queue.pop(0)
        spec = f"{flags.replace('#', '')}{width or ''}"
        if kind in "sv":
            text = go_print(arg)
            return format(text[: int(precision)] if precision else text, f"{spec}s")
        if kind == "q":
            return format(json.dumps(go_print(arg), ensure_ascii=False), f"{spec}s")
        if kind == "d" and isinstance(arg, int):
            return format(arg, f"{spec}d")
        if kind in "efg" and isinstance(arg, int | float):
            return format(arg, f"{spec}.{precision or 6}{kind}")
        if kind == "t" and isinstance(arg, bool):
            return go_print(arg)
        return f"%!{kind}({go_print(arg)})"

    text = _VERB.sub(verb, fmt)
    if queue:
        text += "%!(EXTRA " + ", ".join(go_print(a) for a in queue) + ")"
    return text


def _date(days: int) -> Callable[..., str]:
    def today(*_: Any) -> str:
        return (date.today() - timedelta(days=days)).isoformat()

    return today


FUNCTIONS: dict[str, Callable[..., Any]] = {
    "not": lambda v: not _truth(v),
    "eq": _eq,
    "ne": lambda a, b: not _eq(a, b),
    "lt": _compare(lambda a, b: a < b),
    "le": _compare(lambda a, b: a <= b),
    "gt": _compare(lambda a, b: a > b),
    "ge": _compare(lambda a, b: a >= b),
    "len": _len,
    "index": _index,
    "slice": _slice,
    "print": _sprint,
    "printf": _sprintf,
    "println": lambda *a: " ".join(go_print(v) for v in a) + "\n",
    "json": go_json,
    "currentDate": _date(0),
    "yesterdayDate": _date(1),
}
"""Every function a template may call, besides the lazy ``and`` and ``or``."""
LAZY = frozenset({"and", "or"})


# -- execution -------------------------------------------------------------------


class _Break(Exception):
    pass


class _Continue(Exception):
    pass


class _State:
    def __init__(self, data: Any) -> None:
        self.vars: list[tuple[str, Any]] = [("$", data)]
        self.out: list[str] = []
        self.steps = 0
        self.size = 0

    def step(self) -> None:
        self.steps += 1
        if self.steps > MAX_STEPS:
            raise TemplateExecError(f"template runs more than {MAX_STEPS} steps")

    def write(self, text: str) -> None:
        self.size += len(text)
        if self.size > MAX_OUTPUT:
            raise TemplateExecError(f"template output above {MAX_OUTPUT} characters")
        self.out.append(text)

    def lookup(self, name: str) -> Any:
        for var, value in reversed(self.vars):
            if var == name:
                return value
        raise TemplateExecError(f"undefined variable: {name}")

    def assign(self, name: str, value: Any) -> None:
        for i in range(len(self.vars) - 1, -1, -1):
            if self.vars[i][0] == name:
                self.vars[i] = (name, value)
                return
        raise TemplateExecError(f"undefined variable: {name}")


def _fields(value: Any, names: Sequence[str]) -> Any:
    for name in names:
        if isinstance(value, Struct | dict):
            value = value.get(name)
        elif value is None:
            return None
        else:
            raise TemplateExecError(f"can't evaluate field {name} in type {type(value).__name__}")
    return value


def _operand(state: _State, arg: Any, dot: Any) -> Any:
    if isinstance(arg, Literal):
        return arg.value
    if isinstance(arg, Field):
        return _fields(dot, arg.names)
    if isinstance(arg, Variable):
        return _fields(state.lookup(arg.name), arg.names)
    if isinstance(arg, Chain):
        return _fields(_pipe(state, arg.pipe, dot), arg.names)
    if isinstance(arg, Pipe):
        return _pipe(state, arg, dot)
    raise TemplateExecError(f"function {arg.name!r} used as a value")


def _command(state: _State, cmd: Cmd, dot: Any, final: tuple[Any, ...]) -> Any:
    head, rest = cmd.args[0], cmd.args[1:]
    if not isinstance(head, Function):
        if rest or final:
            raise TemplateExecError("can't give argument to non-function")
        return _operand(state, head, dot)
    if head.name in LAZY:
        if not rest and not final:
            raise TemplateExecError(f"wrong number of args for {head.name}")
        result: Any = None
        for result in _chain((_operand(state, a, dot) for a in rest), final):
            if _truth(result) == (head.name == "or"):
                return result
        return result
    function = FUNCTIONS.get(head.name)
    if function is None:
        raise TemplateExecError(f'function "{head.name}" not defined')
    args = [_operand(state, a, dot) for a in rest] + list(final)
    try:
        return function(*args)
    except TypeError as exc:
        raise TemplateExecError(f"error calling {head.name}: {exc}") from None


def _chain(values: Iterator[Any], final: tuple[Any, ...]) -> Iterator[Any]:
    yield from values
    yield from final


def _pipe(state: _State, pipe: Pipe, dot: Any) -> Any:
    value: tuple[Any, ...] = ()
    for cmd in pipe.cmds:
        value = (_command(state, cmd, dot, value),)
    result = value[0]
    if pipe.decl:
        if pipe.assign:
            state.assign(pipe.decl[0], result)
        else:
            state.vars.append((pipe.decl[0], result))
    return result


def _range_items(value: Any) -> Iterable[tuple[Any, Any]]:
    """Lazy over an int, so a huge count costs steps, not memory."""
    if value is None:
        return []
    if isinstance(value, dict):
        return [(k, value[k]) for k in sorted(value, key=str)]
    if isinstance(value, list | tuple | str):
        items = value.encode() if isinstance(value, str) else value
        return list(enumerate(items))
    if isinstance(value, int) and not isinstance(value, bool):
        return ((i, i) for i in range(value))
    raise TemplateExecError(f"range can't iterate over {go_print(value)}")


def _branch(state: _State, node: Branch, dot: Any) -> None:
    mark = len(state.vars)
    pipe = node.pipe
    if node.kind == "range":
        value = _pipe(state, Pipe(pipe.cmds), dot)
        ran = False
        for key, item in _range_items(value):
            ran = True
            state.step()
            if len(pipe.decl) == 2:
                state.vars.append((pipe.decl[0], key))
            if pipe.decl:
                state.vars.append((pipe.decl[-1], item))
            try:
                _nodes(state, node.body, item)
            except _Break:
                break
            except _Continue:
                pass
            finally:
                del state.vars[mark:]
        if not ran:
            _nodes(state, node.otherwise, dot)
    else:
        value = _pipe(state, pipe, dot)
        if _truth(value):
            _nodes(state, node.body, value if node.kind == "with" else dot)
        else:
            _nodes(state, node.otherwise, dot)
    del state.vars[mark:]


def _nodes(state: _State, nodes: Sequence[Node], dot: Any) -> None:
    for node in nodes:
        state.step()
        if isinstance(node, Text):
            state.write(node.text)
        elif isinstance(node, Action):
            value = _pipe(state, node.pipe, dot)
            if not node.pipe.decl:
                state.write(go_print(value))
        elif isinstance(node, Branch):
            _branch(state, node, dot)
        elif isinstance(node, Loop):
            raise _Break() if node.kind == "break" else _Continue()


def execute(nodes: Sequence[Node], data: Any) -> str:
    """Render ``nodes`` with ``data`` as dot and ``$``."""
    state = _State(data)
    try:
        _nodes(state, nodes, data)
    except RecursionError:
        raise TemplateExecError("template nests too deeply") from None
    return "".join(state.out)
