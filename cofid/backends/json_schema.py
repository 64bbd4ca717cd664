"""The JSON-Schema subset of strict structured outputs: check a reply, or make an instance.

Model replies are untrusted input, so every chat reply is validated before a stage sees
it. Strict structured outputs (OpenAI, vLLM, llama.cpp) use a small subset of JSON Schema,
and that subset is all this module knows:

1. `type`: object, array, string, number, integer, boolean, null, or a list of them.
   Booleans are not numbers; 3.0 is an integer.
2. Objects: `properties`, `required`, `additionalProperties` (false, true, or a schema).
3. Arrays: `items`, `minItems`, `maxItems`.
4. Strings: `minLength`, `maxLength`, `pattern` (searched, as JSON Schema says).
5. Numbers: `minimum`, `maximum`, `exclusiveMinimum`, `exclusiveMaximum`.
6. `enum`, `const`, `anyOf`, and local `$ref`s ("#/$defs/name").
7. Every other keyword (title, description, format, ...) is ignored.

`validate` raises `SchemaViolation` at the first violation, with its JSON path
("$.answers[2].question_id"). `example_instance` builds a small instance that validates,
for simulators and tests.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

_TYPE_ORDER = ("object", "array", "string", "integer", "number", "boolean", "null")


class SchemaViolation(ValueError):
    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path
        self.message = message


def _is_type(instance: Any, type_name: str) -> bool:
    if type_name == "null":
        return instance is None
    if type_name == "boolean":
        return isinstance(instance, bool)
    if type_name == "integer":
        if isinstance(instance, bool):
            return False
        return isinstance(instance, int) or (
            isinstance(instance, float) and math.isfinite(instance) and instance.is_integer()
        )
    if type_name == "number":
        return isinstance(instance, int | float) and not isinstance(instance, bool)
    if type_name == "string":
        return isinstance(instance, str)
    if type_name == "array":
        return isinstance(instance, list)
    if type_name == "object":
        return isinstance(instance, dict)
    raise SchemaViolation("$schema", f"unknown type {type_name!r}")


def _types(schema: Mapping[str, Any]) -> list[str]:
    declared = schema.get("type")
    if declared is None:
        return []
    return [declared] if isinstance(declared, str) else list(declared)


def _child(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
        return f"{path}.{key}"
    return f"{path}[{key!r}]"


def _resolve(root: Mapping[str, Any], schema: Any) -> Any:
    seen = 0
    while isinstance(schema, Mapping) and "$ref" in schema:
        ref = schema["$ref"]
        if not isinstance(ref, str) or not ref.startswith("#"):
            raise SchemaViolation("$schema", f"only local $ref is supported, got {ref!r}")
        target: Any = root
        for part in filter(None, ref[1:].split("/")):
            part = part.replace("~1", "/").replace("~0", "~")
            if not isinstance(target, Mapping) or part not in target:
                raise SchemaViolation("$schema", f"unresolvable $ref {ref!r}")
            target = target[part]
        schema = target
        seen += 1
        if seen > 64:
            raise SchemaViolation("$schema", f"$ref loop at {ref!r}")
    return schema


def validate(instance: Any, schema: Mapping[str, Any]) -> None:
    """Raise SchemaViolation unless `instance` matches `schema`."""
    _check(instance, schema, "$", schema)


def _check(instance: Any, schema: Any, path: str, root: Mapping[str, Any]) -> None:
    schema = _resolve(root, schema)
    if schema is True:
        return
    if schema is False:
        raise SchemaViolation(path, "no value is allowed here")
    if not isinstance(schema, Mapping):
        raise SchemaViolation("$schema", f"a schema must be an object, got {schema!r}")

    if "anyOf" in schema:
        errors = []
        for option in schema["anyOf"]:
            try:
                _check(instance, option, path, root)
                break
            except SchemaViolation as exc:
                errors.append(exc.message)
        else:
            raise SchemaViolation(path, "matches none of anyOf: " + "; ".join(errors))

    types = _types(schema)
    if types and not any(_is_type(instance, t) for t in types):
        raise SchemaViolation(path, f"expected {' or '.join(types)}, got {_json_type(instance)}")
    if "const" in schema and not _json_equal(instance, schema["const"]):
        raise SchemaViolation(path, f"expected {schema['const']!r}")
    if "enum" in schema and not any(_json_equal(instance, v) for v in schema["enum"]):
        raise SchemaViolation(path, f"{instance!r} is not one of {list(schema['enum'])!r}")

    if isinstance(instance, dict):
        _check_object(instance, schema, path, root)
    elif isinstance(instance, list):
        _check_array(instance, schema, path, root)
    elif isinstance(instance, str):
        _check_string(instance, schema, path)
    elif isinstance(instance, int | float) and not isinstance(instance, bool):
        _check_number(instance, schema, path)


def _check_object(instance: dict, schema: Mapping[str, Any], path: str, root) -> None:
    properties = schema.get("properties") or {}
    for name in schema.get("required") or ():
        if name not in instance:
            raise SchemaViolation(path, f"missing required property {name!r}")
    extra = schema.get("additionalProperties", True)
    for name, value in instance.items():
        if name in properties:
            _check(value, properties[name], _child(path, name), root)
        elif extra is False:
            raise SchemaViolation(path, f"unexpected property {name!r}")
        elif isinstance(extra, Mapping):
            _check(value, extra, _child(path, name), root)


def _check_array(instance: list, schema: Mapping[str, Any], path: str, root) -> None:
    if "minItems" in schema and len(instance) < schema["minItems"]:
        raise SchemaViolation(path, f"{len(instance)} items, at least {schema['minItems']} needed")
    if "maxItems" in schema and len(instance) > schema["maxItems"]:
        raise SchemaViolation(path, f"{len(instance)} items, at most {schema['maxItems']} allowed")
    if "items" in schema:
        for index, item in enumerate(instance):
            _check(item, schema["items"], _child(path, index), root)


def _check_string(instance: str, schema: Mapping[str, Any], path: str) -> None:
    if "minLength" in schema and len(instance) < schema["minLength"]:
        raise SchemaViolation(path, f"shorter than {schema['minLength']} characters")
    if "maxLength" in schema and len(instance) > schema["maxLength"]:
        raise SchemaViolation(path, f"longer than {schema['maxLength']} characters")
    if "pattern" in schema and re.search(schema["pattern"], instance) is None:
        raise SchemaViolation(path, f"does not match pattern {schema['pattern']!r}")


def _check_number(instance: float, schema: Mapping[str, Any], path: str) -> None:
    if "minimum" in schema and instance < schema["minimum"]:
        raise SchemaViolation(path, f"{instance} is less than the minimum {schema['minimum']}")
    if "maximum" in schema and instance > schema["maximum"]:
        raise SchemaViolation(path, f"{instance} is more than the maximum {schema['maximum']}")
    if "exclusiveMinimum" in schema and instance <= schema["exclusiveMinimum"]:
        raise SchemaViolation(path, f"{instance} is not above {schema['exclusiveMinimum']}")
    if "exclusiveMaximum" in schema and instance >= schema["exclusiveMaximum"]:
        raise SchemaViolation(path, f"{instance} is not below {schema['exclusiveMaximum']}")


def _json_type(instance: Any) -> str:
    for name in ("null", "boolean", "integer", "number", "string", "array", "object"):
        if _is_type(instance, name):
            return name
    return type(instance).__name__


def _json_equal(a: Any, b: Any) -> bool:
    # JSON equality: True is not 1, and 1 == 1.0.
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    return a == b


def example_instance(schema: Mapping[str, Any], *, salt: str = "") -> Any:
    """A small instance of `schema`: required properties only, first enum values, minimum
    numbers, `minItems` items. In an array with minItems == maxItems, item i takes the i-th
    value of every enum property (one answer per question id). `salt` goes into strings."""
    return _example(schema, schema, salt, "value", None)


def _example(schema: Any, root: Mapping[str, Any], salt: str, hint: str, index: int | None):
    schema = _resolve(root, schema)
    if not isinstance(schema, Mapping):
        return None
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        values = list(schema["enum"])
        return values[index % len(values)] if index is not None else values[0]
    if schema.get("anyOf"):
        return _example(schema["anyOf"][0], root, salt, hint, index)
    types = _types(schema) or ["object" if "properties" in schema else "string"]
    non_null = [t for t in types if t != "null"]
    kind = min(non_null, key=_TYPE_ORDER.index) if non_null else "null"

    if kind == "object":
        properties = schema.get("properties") or {}
        return {
            name: _example(properties.get(name, {}), root, salt, name, index)
            for name in schema.get("required") or ()
        }
    if kind == "array":
        count = int(schema.get("minItems", 0))
        spread = count > 0 and schema.get("maxItems") == count
        item = schema.get("items", {})
        return [_example(item, root, salt, hint, i if spread else None) for i in range(count)]
    if kind == "string":
        text = f"{hint}-{salt[:8]}" if salt else hint
        text = text.ljust(int(schema.get("minLength", 0)), "x")
        return text[: schema["maxLength"]] if "maxLength" in schema else text
    if kind in ("integer", "number"):
        return _example_number(schema, integer=kind == "integer")
    if kind == "boolean":
        return False
    return None


def _example_number(schema: Mapping[str, Any], *, integer: bool) -> float:
    step = 1 if integer else 0.5
    if "minimum" in schema:
        value = schema["minimum"]
    elif "exclusiveMinimum" in schema:
        value = schema["exclusiveMinimum"] + step
    elif "maximum" in schema:
        value = min(0, schema["maximum"])
    elif "exclusiveMaximum" in schema:
        value = min(0, schema["exclusiveMaximum"] - step)
    else:
        value = 0
    if integer:
        value = math.ceil(value)
    return value
