"""Shared helpers for the demo source systems that drop files (CAD, DNS, Health, Budget).

* `write_if_changed` writes a file atomically (temp file + os.replace) and leaves an identical
  file alone, so a re-run changes no bytes and no mtimes.
* `upload_folder` sends a folder to an S3 bucket/prefix, skipping objects whose stored sha256
  (object metadata) already matches, the way a department's nightly transfer job would.
* `xlsx_bytes` saves an openpyxl workbook reproducibly (fixed document times, fixed zip entry
  times), so the same content always gives the same bytes.
* Milwaukee geography shared by the generators: street names, ZIP codes, aldermanic districts
  and `address(rng)`.

Generators seed one `random.Random` per file (or per day/week/month) from a string, so a file's
history never depends on `now`, on other files or on PYTHONHASHSEED.
"""
from __future__ import annotations

import hashlib
import io
import mimetypes
import os
import random
import tempfile
import zipfile
import zlib
from datetime import datetime
from pathlib import Path
from typing import Any

# ----------------------------------------------------------------------------- geography

STREETS: tuple[str, ...] = (
    "N 1ST ST", "N 2ND ST", "N 6TH ST", "N 12TH ST", "N 20TH ST", "N 27TH ST", "N 35TH ST",
    "N 43RD ST", "N 51ST ST", "N 60TH ST", "N 76TH ST", "N 91ST ST", "N 107TH ST",
    "S 1ST ST", "S 6TH ST", "S 13TH ST", "S 16TH ST", "S 20TH ST", "S 27TH ST", "S 35TH ST",
    "S 76TH ST", "W CAPITOL DR", "W NORTH AV", "W FOND DU LAC AV", "W GREENFIELD AV",
    "W LINCOLN AV", "W BURLEIGH ST", "W HAMPTON AV", "W WELLS ST", "W VLIET ST",
    "W MITCHELL ST", "W FOREST HOME AV", "W SILVER SPRING DR", "W GOOD HOPE RD",
    "W OKLAHOMA AV", "W LAYTON AV", "W CENTER ST", "W LOCUST ST", "W KEEFE AV",
    "W ATKINSON AV", "W LISBON AV", "W WALNUT ST", "W NATIONAL AV", "W BECHER ST",
    "W MORGAN AV", "W VILLARD AV", "W MILL RD", "W BROWN DEER RD", "W BLUEMOUND RD",
    "W STATE ST", "W HIGHLAND BLVD", "S KINNICKINNIC AV", "S LAYTON BLVD", "S HOWELL AV",
    "S CESAR E CHAVEZ DR", "N HOLTON ST", "N TEUTONIA AV", "N SHERMAN BLVD",
    "N MARTIN L KING JR DR", "N PORT WASHINGTON RD", "N GREEN BAY AV", "N HUMBOLDT BLVD",
    "N OAKLAND AV", "N FARWELL AV", "E BRADY ST", "E NORTH AV", "E LOCUST ST", "E KANE PL",
)

ZIP_CODES: tuple[str, ...] = (
    "53202", "53203", "53204", "53205", "53206", "53207", "53208", "53209", "53210", "53211",
    "53212", "53213", "53214", "53215", "53216", "53218", "53219", "53220", "53221", "53222",
    "53223", "53224", "53225", "53226", "53233", "53235",
)

ALDERMANIC_DISTRICTS: tuple[int, ...] = tuple(range(1, 16))


def address(rng: random.Random) -> str:
    """A plausible street address such as "2846 N 1ST ST" (house number 100-9999)."""
    rand = rng.random
    return f"{100 + int(rand() * 9900)} {STREETS[int(rand() * len(STREETS))]}"


def district_for(addr: str) -> int:
    """The aldermanic district (1-15) of an address: stable for a given street and block."""
    number, _, street = addr.strip().partition(" ")
    block = int(number) // 400 if number.isdigit() else 0
    return zlib.crc32(f"{street}|{block}".encode()) % 15 + 1


def seeded(*parts: object) -> random.Random:
    """A Random seeded from the given parts (str seeds are hashed with sha512: stable everywhere)."""
    return random.Random("|".join(str(p) for p in parts))


# ----------------------------------------------------------------------------- local files

def write_if_changed(path: Path, data: bytes) -> bool:
    """Write `data` to `path` atomically; True when written, False when the file already held it.

    An identical file is not touched (its mtime stays). Otherwise the data goes to a temporary
    file in the same folder, is flushed to disk and renamed over `path` (os.replace), so a
    reader never sees a half-written file.
    """
    path = Path(path)
    try:
        if path.stat().st_size == len(data) and path.read_bytes() == data:
            return False
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return True


def list_files(folder: Path) -> list[Path]:
    """The files under `folder` (recursively, sorted), skipping hidden and temporary files."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    return sorted(
        p for p in folder.rglob("*")
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    )


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# ----------------------------------------------------------------------------- S3

def _key(prefix: str, relative: str) -> str:
    prefix = prefix.strip("/")
    return f"{prefix}/{relative}" if prefix else relative


def ensure_bucket(s3_client: Any, bucket: str) -> None:
    """Create `bucket` unless it already exists."""
    from botocore.exceptions import ClientError

    try:
        s3_client.head_bucket(Bucket=bucket)
        return
    except ClientError as err:
        code = str(err.response.get("Error", {}).get("Code", ""))
        if code not in ("404", "NoSuchBucket", "NotFound"):
            raise
    try:
        s3_client.create_bucket(Bucket=bucket)
    except ClientError as err:
        if err.response.get("Error", {}).get("Code") not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
            raise


def remote_sha256(s3_client: Any, bucket: str, key: str) -> str | None:
    """The sha256 stored in the object's metadata; None when the object (or the hash) is missing."""
    from botocore.exceptions import ClientError

    try:
        head = s3_client.head_object(Bucket=bucket, Key=key)
    except ClientError as err:
        if str(err.response.get("Error", {}).get("Code", "")) in ("404", "NoSuchKey", "NotFound"):
            return None
        raise
    return {k.lower(): v for k, v in head.get("Metadata", {}).items()}.get("sha256")


def upload_folder(folder: Path, s3_client: Any, bucket: str, prefix: str) -> int:
    """Upload the files of `folder` to s3://bucket/prefix/<relative path>; return how many were sent.

    A file is sent only when its sha256 differs from the one stored in the existing object's
    metadata (or the object is missing). The bucket is created if missing.
    """
    folder = Path(folder)
    ensure_bucket(s3_client, bucket)
    uploaded = 0
    for path in list_files(folder):
        key = _key(prefix, path.relative_to(folder).as_posix())
        data = path.read_bytes()
        digest = sha256_bytes(data)
        if remote_sha256(s3_client, bucket, key) == digest:
            continue
        content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        s3_client.put_object(
            Bucket=bucket, Key=key, Body=data, ContentType=content_type, Metadata={"sha256": digest},
        )
        uploaded += 1
    return uploaded


def list_objects(s3_client: Any, bucket: str, prefix: str = "") -> list[str]:
    """Keys under `prefix` (all pages, sorted)."""
    keys: list[str] = []
    paginator = s3_client.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=bucket, Prefix=prefix.strip("/") + "/" if prefix.strip("/") else ""):
        keys.extend(obj["Key"] for obj in page.get("Contents", []))
    return sorted(keys)


# ----------------------------------------------------------------------------- workbooks

_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)


def xlsx_bytes(workbook: Any, modified: datetime, created: datetime | None = None) -> bytes:
    """Serialise an openpyxl workbook reproducibly: fixed document properties and zip entry times.

    (`Workbook.save` stamps the current time into docProps/core.xml and every zip entry.)
    """
    from openpyxl.writer.excel import ExcelWriter

    workbook.properties.created = created or modified
    workbook.properties.modified = modified
    raw = io.BytesIO()
    with zipfile.ZipFile(raw, "w", zipfile.ZIP_DEFLATED, allowZip64=True) as archive:
        ExcelWriter(workbook, archive).save()
    stamp = (max(modified.year, 1980), modified.month, modified.day, modified.hour, modified.minute, modified.second)
    out = io.BytesIO()
    with zipfile.ZipFile(raw) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            entry = zipfile.ZipInfo(info.filename, date_time=stamp if stamp > _ZIP_EPOCH else _ZIP_EPOCH)
            entry.compress_type = zipfile.ZIP_DEFLATED
            entry.external_attr = 0o644 << 16
            dst.writestr(entry, src.read(info.filename))
    return out.getvalue()
