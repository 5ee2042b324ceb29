"""The publication manifest: every published file with its size, rows, SHA-256 and provenance.

`manifest` builds the document, `manifest_json` serializes it deterministically, so the same
files (and the same run and time) give the same bytes, and a reader can check each download
against its `sha256`.
"""
from __future__ import annotations

import json
import re
from datetime import datetime, timezone

REQUIRED_KEYS = ("path", "dataset", "format", "bytes", "rows", "sha256", "run_id", "modified")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


def _timestamp(value) -> str:
    if isinstance(value, datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value!r}: pass an aware datetime or an ISO 8601 string")
        return value.astimezone(timezone.utc).replace(tzinfo=None).isoformat(timespec="seconds") + "Z"
    if isinstance(value, str) and value:
        return value
    raise TypeError(f"expected an ISO 8601 string or an aware datetime, got {value!r}")


def _checked(entry: dict) -> dict:
    missing = [k for k in REQUIRED_KEYS if k not in entry]
    if missing:
        raise ValueError(f"manifest entry {entry.get('path')!r} lacks {missing}")
    path = entry["path"]
    if not isinstance(path, str) or not path or path.startswith("/") or "\\" in path or ".." in path.split("/"):
        raise ValueError(f"manifest path must be a relative '/'-separated path, got {path!r}")
    for key in ("bytes", "rows"):
        value = entry[key]
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise ValueError(f"{path}: {key} must be a non-negative integer, got {value!r}")
    if not isinstance(entry["sha256"], str) or not _SHA256.match(entry["sha256"]):
        raise ValueError(f"{path}: sha256 must be 64 lowercase hex digits, got {entry['sha256']!r}")
    out = dict(entry)
    out["modified"] = _timestamp(entry["modified"])
    return out


def manifest(files: list[dict], *, generated_by_run: str, generated_at) -> dict:
    """The manifest document: {"generated_at", "generated_by_run", "files"}, files sorted by path.

    Promises: each file entry keeps its keys (path, dataset, format, bytes, rows, sha256, run_id,
    modified are required; extra keys are kept); `generated_at` and each `modified` may be ISO 8601
    strings (kept as given) or aware datetimes (written in UTC with a Z). Raises ValueError for a
    missing key, a repeated path, an absolute or `..` path, a negative or non-integer size or row
    count, or a sha256 that is not 64 lowercase hex digits. The input is not modified.
    """
    entries = [_checked(f) for f in files]
    paths = [e["path"] for e in entries]
    repeated = sorted({p for p in paths if paths.count(p) > 1})
    if repeated:
        raise ValueError(f"paths listed more than once: {repeated}")
    if not isinstance(generated_by_run, str) or not generated_by_run:
        raise ValueError("generated_by_run must be a non-empty run id")
    return {
        "generated_at": _timestamp(generated_at),
        "generated_by_run": generated_by_run,
        "files": sorted(entries, key=lambda e: e["path"]),
    }


def manifest_json(doc: dict) -> bytes:
    """`doc` as UTF-8 JSON with sorted keys, 2-space indent and a final newline: equal documents
    give identical bytes. NaN and infinities are refused (they are not JSON)."""
    return (json.dumps(doc, sort_keys=True, indent=2, ensure_ascii=False, allow_nan=False) + "\n").encode("utf-8")
