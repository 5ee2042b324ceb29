"""JSON reader: memory stays bounded whatever the file's size.

JSON arrays are streamed with ijson; JSON Lines are read a line at a time. `record_row` turns one
JSON record (a file's or an API page's) into a row the same way.
"""
from __future__ import annotations

import codecs
import decimal
import json
from pathlib import Path
from typing import Any, Iterator, Sequence

import ijson

from .common import SCAN_BLOCK, FileFormat, FileFormatError, ReadReport, Row, _clean, _number_text, _quoted

_ABSENT = object()


def rows(path: Path, fmt: FileFormat, columns: list[str], name: str, report: ReadReport) -> Iterator[Row]:
    first = _first_byte(path)
    if first is None:
        raise FileFormatError(f"{name} is empty")
    if fmt.records_path:
        if first != b"{":
            raise FileFormatError(
                f"{name}: records_path {fmt.records_path!r} is set but the top level is not a JSON object"
            )
        records, lines = _json_array(path, fmt.records_path, name), False
    elif first == b"[":
        records, lines = _json_array(path, None, name), False
    else:
        records, lines = _json_lines(path, name, report), True
    seen: set[str] = set()
    keys: dict[str, None] = {}   # field names met (bounded), for the error message
    count = 0
    for label, record in records:
        if not isinstance(record, dict):
            raise FileFormatError(f"{name}: {label} is {_json_type(record)}, not an object")
        count += 1
        if len(keys) < 100:
            keys.update(dict.fromkeys(str(k) for k in record))
        row = []
        for column in columns:
            value = _json_field(record, column)
            if value is not _ABSENT:
                seen.add(column)
            row.append(None if value is _ABSENT else _json_text(value))
        if all(v is None for v in row) and not any(_json_has_content(v) for v in record.values()):
            report.blank_rows_skipped += 1
            continue
        yield tuple(row)
    missing = [c for c in columns if c not in seen]
    if count and missing:
        hint = " (one object: is the array of records inside it? set records_path)" if lines and count == 1 else ""
        raise FileFormatError(
            f"{name}: missing column(s) {_quoted(missing)}: absent from all {count} records; "
            f"fields found: {_quoted(keys)}{hint}"
        )


def _first_byte(path: Path) -> bytes | None:
    """The first byte that is not whitespace or a UTF-8 BOM, or None for an empty file."""
    with open(path, "rb") as raw:
        block = raw.read(SCAN_BLOCK).removeprefix(codecs.BOM_UTF8)
        while block:
            stripped = block.lstrip()
            if stripped:
                return stripped[:1]
            block = raw.read(SCAN_BLOCK)
    return None


def _json_array(path: Path, records_path: str | None, name: str) -> Iterator[tuple[str, Any]]:
    """('record N', record) for each item of the array at `records_path` (None: the top level)."""
    array_prefix = records_path or ""
    found: list[bool] = []

    def watch(events: Iterator[tuple[str, str, Any]]) -> Iterator[tuple[str, str, Any]]:
        for prefix, event, value in events:
            if prefix == array_prefix and not found and event not in ("map_key", "end_map", "end_array"):
                if event != "start_array":
                    raise FileFormatError(f"{name}: {records_path!r} is {_json_event_type(event)}, not an array")
                found.append(True)
            yield prefix, event, value

    with open(path, "rb") as raw:
        if raw.read(3) != codecs.BOM_UTF8:
            raw.seek(0)
        items = ijson.items(watch(ijson.parse(raw)), f"{records_path}.item" if records_path else "item")
        number = 0
        while True:
            try:
                record = next(items)
            except StopIteration:
                break
            except (ijson.JSONError, UnicodeDecodeError) as exc:
                reason = _exception_text(exc)
                raise FileFormatError(
                    f"{name}: invalid or truncated JSON at record {number + 1} (after {number} complete "
                    f"records): {reason}"
                ) from None
            number += 1
            yield f"record {number}", record
    if not found:
        raise FileFormatError(f"{name}: no array of records at {records_path!r}")


def _json_lines(path: Path, name: str, report: ReadReport) -> Iterator[tuple[str, Any]]:
    """('line N', record) for each non-blank line of a JSON Lines file."""
    with open(path, "rb") as raw:
        for number, line in enumerate(raw, 1):
            if number == 1:
                line = line.removeprefix(codecs.BOM_UTF8)
            if not line.strip():
                report.blank_rows_skipped += 1
                continue
            try:
                record = json.loads(line, parse_float=decimal.Decimal)
            except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError
                hint = ""
                if number == 1 and line.strip() in (b"{", b"["):
                    hint = " (is this one JSON document rather than JSON Lines? set records_path)"
                raise FileFormatError(f"{name}: invalid JSON on line {number}: {exc}{hint}") from None
            yield f"line {number}", record


def _exception_text(exc: Exception) -> str:
    """A parser's message on one line (yajl reports bytes, with a multi-line excerpt)."""
    message = exc.args[0] if len(exc.args) == 1 else str(exc)
    if isinstance(message, bytes):
        message = message.decode("utf-8", "replace")
    return " ".join(str(message).split())


def _json_field(record: dict, column: str) -> Any:
    """The field named `column` (exact after strip; 'a.b' reads nested objects), or _ABSENT."""
    key = column.strip()
    value = _json_key(record, key)
    if value is not _ABSENT or "." not in key:
        return value
    node: Any = record
    for part in key.split("."):
        if not isinstance(node, dict):
            return _ABSENT
        node = _json_key(node, part)
        if node is _ABSENT:
            return _ABSENT
    return node


def _json_key(obj: dict, key: str) -> Any:
    if key in obj:
        return obj[key]
    for name, value in obj.items():
        if isinstance(name, str) and name.strip() == key:
            return value
    return _ABSENT


def _json_text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, decimal.Decimal):
        return str(int(value)) if value == value.to_integral_value() else str(value)
    if isinstance(value, float):
        return _number_text(value)
    if isinstance(value, str):
        return _clean(value)
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=_json_default)


def _json_default(value: Any) -> Any:
    if isinstance(value, decimal.Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    raise TypeError(f"cannot serialise {type(value).__name__}")


def _json_has_content(value: Any) -> bool:
    if isinstance(value, (dict, list)):
        return bool(value)
    return _json_text(value) is not None


def _json_type(value: Any) -> str:
    if isinstance(value, list):
        return "an array"
    if value is None:
        return "null"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    return "a number"


def _json_event_type(event: str) -> str:
    return {"start_map": "an object", "string": "a string", "null": "null", "boolean": "a boolean"}.get(
        event, "a number"
    )


def record_row(record: dict, columns: Sequence[str]) -> Row:
    """One JSON record (a file's or an API page's) as a row of text values, as JSON files are read:
    one value per column in order, missing fields as None, `a.b` reading nested objects."""
    values = (_json_field(record, column) for column in columns)
    return tuple(None if value is _ABSENT else _json_text(value) for value in values)
