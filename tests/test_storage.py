"""The export targets (aim.storage): a folder and an S3 prefix, as the open data portal reads them.

A published file is replaced atomically: a reader sees the whole old file or the whole new one,
never a mix or a truncated file (a concurrent reader, and faults injected mid-write), and a failed
write leaves no temporary file behind. `publish_if_changed` never rewrites a file whose bytes are
already published. The S3 target is tested against the real SeaweedFS server.
"""
from __future__ import annotations

import hashlib
import os
import threading
import uuid
from pathlib import Path

import pytest

from aim import storage
from aim.storage import LocalTarget, S3Target, target_from_url

MiB = 1 << 20


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def content(size: int, seed: str) -> bytes:
    """`size` bytes, different for every seed and at every offset (no repeated block)."""
    out = bytearray()
    counter = 0
    while len(out) < size:
        out += hashlib.sha256(f"{seed}:{counter}".encode()).digest() * 64
        counter += 1
    return bytes(out[:size])


def local_file(folder: Path, name: str, data: bytes) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(data)
    return path


# ------------------------------------------------------------------ folder target: atomic replacement


def test_folder_target_concurrent_reader_sees_only_the_whole_old_or_whole_new_file(tmp_path):
    root = tmp_path / "exports"
    target = LocalTarget(root)
    relpath = "latest/mfd-dispatch-incidents/mfd-dispatch-incidents.csv"
    versions = [content(16 * MiB, "old"), content(16 * MiB + 4321, "new")]
    files = [local_file(tmp_path / "work", f"v{i}.csv", data) for i, data in enumerate(versions)]
    whole = {sha256(data) for data in versions}
    target.publish(files[0], relpath, sha256(versions[0]), "text/csv")
    final = root / relpath
    seen: list[str] = []
    stop = threading.Event()

    def reader():
        while not stop.is_set():
            digest = hashlib.sha256()
            try:
                with open(final, "rb") as f:
                    for block in iter(lambda: f.read(MiB), b""):
                        digest.update(block)
            except FileNotFoundError:
                seen.append("missing")
                continue
            seen.append(digest.hexdigest())

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for n in range(1, 13):  # new, old, new, ... while the reader reads
            assert target.publish_if_changed(files[n % 2], relpath, "text/csv") is True
    finally:
        stop.set()
        thread.join(30)

    assert len(seen) >= 5, f"the reader read while files were published ({len(seen)} reads)"
    assert set(seen) <= whole, (
        "atomic replacement: a reader sees the whole old or the whole new file, never a missing, "
        f"truncated or mixed one ({sum(1 for s in seen if s not in whole)} of {len(seen)} reads were not whole)")
    assert final.read_bytes() == versions[0]
    assert sorted(p.name for p in final.parent.iterdir()) == [final.name], "no temporary file is left beside it"


def _half_then_fail(src, dst, *args, **kwargs):
    """A copy that dies half way (disk full): writes half of `src` to `dst`, then raises."""
    data = Path(src).read_bytes()
    with open(dst, "wb") as f:
        f.write(data[: len(data) // 2])
    raise OSError(28, "No space left on device (injected)")


def test_folder_target_fault_mid_copy_leaves_the_old_file_whole_and_no_temp_file(tmp_path, monkeypatch):
    root = tmp_path / "exports"
    target = LocalTarget(root)
    relpath = "latest/dpw-service-requests/dpw-service-requests.json"
    old, new = content(3 * MiB, "old"), content(3 * MiB, "new")
    target.publish(local_file(tmp_path / "work", "old.json", old), relpath, sha256(old), "application/json")
    monkeypatch.setattr(storage.shutil, "copyfile", _half_then_fail)

    with pytest.raises(OSError, match="injected"):
        target.publish_if_changed(local_file(tmp_path / "work", "new.json", new), relpath, "application/json")

    final = root / relpath
    assert final.read_bytes() == old, "a write that dies midway leaves the published file as it was"
    assert os.listdir(final.parent) == [final.name], "a write that dies midway leaves no temporary file behind"


def test_folder_target_fault_before_the_move_leaves_the_old_file_and_no_temp_file(tmp_path, monkeypatch):
    root = tmp_path / "exports"
    target = LocalTarget(root)
    relpath = "manifest.json"
    old = local_file(tmp_path / "work", "old.json", b'{"v": 1}')
    target.publish(old, relpath, sha256(b'{"v": 1}'), "application/json")

    def fail_replace(src, dst, *args, **kwargs):
        raise OSError("rename refused (injected)")

    monkeypatch.setattr(storage.os, "replace", fail_replace)
    with pytest.raises(OSError, match="injected"):
        target.publish_if_changed(local_file(tmp_path / "work", "new.json", b'{"v": 2}'), relpath, "application/json")
    monkeypatch.undo()

    assert (root / relpath).read_bytes() == b'{"v": 1}', "a failed move leaves the published file as it was"
    assert os.listdir(root) == ["manifest.json"], "a failed move leaves no temporary file behind"


def test_folder_target_fault_on_a_first_publication_leaves_nothing(tmp_path, monkeypatch):
    root = tmp_path / "exports"
    monkeypatch.setattr(storage.shutil, "copyfile", _half_then_fail)

    with pytest.raises(OSError, match="injected"):
        LocalTarget(root).publish_if_changed(local_file(tmp_path / "work", "a.csv", content(MiB, "a")),
                                             "latest/a/a.csv", "text/csv")

    assert not (root / "latest" / "a" / "a.csv").exists(), "a failed first write publishes no partial file"
    assert os.listdir(root / "latest" / "a") == [], "a failed first write leaves no temporary file"


# ------------------------------------------------------------------ folder target: unchanged files


def test_folder_target_publish_if_changed_does_not_rewrite_an_unchanged_file(tmp_path):
    root = tmp_path / "exports"
    target = LocalTarget(root)
    relpath = "latest/mhd-lead-tests/mhd-lead-tests.parquet"
    data = content(2 * MiB + 5, "lead")

    assert target.publish_if_changed(local_file(tmp_path / "a", "x.parquet", data), relpath,
                                     "application/vnd.apache.parquet") is True, "a new file is written"
    final = root / relpath
    assert final.read_bytes() == data
    past = 1_600_000_000_000_000_000  # 2020-09-13: any time the rewrite would not keep
    os.utime(final, ns=(past, past))
    before = final.stat()

    again = target.publish_if_changed(local_file(tmp_path / "b", "same.parquet", data), relpath,
                                      "application/vnd.apache.parquet")

    after = final.stat()
    assert again is False, "publish_if_changed returns False for an unchanged file"
    assert (after.st_mtime_ns, after.st_ino) == (before.st_mtime_ns, before.st_ino), (
        "an unchanged file is not rewritten: same inode, same modification time")
    assert final.read_bytes() == data

    changed = data[:-1] + b"!"
    assert target.publish_if_changed(local_file(tmp_path / "c", "x.parquet", changed), relpath,
                                     "application/vnd.apache.parquet") is True, "a changed file is written"
    assert final.read_bytes() == changed and final.stat().st_mtime_ns != past
    assert target.sha256(relpath) == sha256(changed)


def test_folder_target_reports_missing_files_and_its_locations(tmp_path):
    target = LocalTarget(tmp_path / "exports")

    assert target.sha256("catalog/data.json") is None, "no published file: no checksum"
    assert target.read_bytes("catalog/data.json") is None, "no published file: no content"
    assert Path(target.url("catalog/data.json")) == tmp_path / "exports" / "catalog" / "data.json"


# ------------------------------------------------------------------ S3 target (real SeaweedFS)


@pytest.fixture
def s3(s3_server):
    """A client of the real S3 server and a fresh bucket for this test."""
    client = s3_server.client()
    bucket = f"storage-{uuid.uuid4().hex[:10]}"
    client.create_bucket(Bucket=bucket)
    return client, bucket


def keys(client, bucket: str) -> list[str]:
    found = []
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        found += [o["Key"] for o in page.get("Contents", [])]
    return sorted(found)


@pytest.mark.parametrize("size", [64 * 1024, 9 * MiB], ids=["small", "multipart"])
def test_s3_target_publish_if_changed_does_not_rewrite_an_unchanged_object(s3, tmp_path, size):
    client, bucket = s3
    target = S3Target(bucket, "/open/", client=client)
    relpath = "latest/mpd-crime-incidents/mpd-crime-incidents.csv"
    key = f"open/{relpath}"
    data = content(size, "crime")

    assert target.publish_if_changed(local_file(tmp_path / "a", "x.csv", data), relpath, "text/csv") is True
    head = client.head_object(Bucket=bucket, Key=key)
    assert head["Metadata"].get("sha256") == sha256(data), "the object records its SHA-256"
    assert head["ContentType"] == "text/csv"
    assert client.get_object(Bucket=bucket, Key=key)["Body"].read() == data
    assert target.url(relpath) == f"s3://{bucket}/{key}"
    # Mark the object in place: a rewrite would lose the mark.
    client.copy_object(Bucket=bucket, Key=key, CopySource={"Bucket": bucket, "Key": key},
                       Metadata={"sha256": sha256(data), "mark": "first-write"}, MetadataDirective="REPLACE",
                       ContentType="text/csv")
    marked = client.head_object(Bucket=bucket, Key=key)

    again = target.publish_if_changed(local_file(tmp_path / "b", "same.csv", data), relpath, "text/csv")

    after = client.head_object(Bucket=bucket, Key=key)
    assert again is False, "publish_if_changed returns False for an unchanged object"
    assert after["Metadata"].get("mark") == "first-write" and after["LastModified"] == marked["LastModified"], (
        "an unchanged object is not rewritten")
    assert keys(client, bucket) == [key], "no temporary object is left under the prefix"

    changed = data[:-1] + b"!"
    assert target.publish_if_changed(local_file(tmp_path / "c", "x.csv", changed), relpath, "text/csv") is True
    rewritten = client.head_object(Bucket=bucket, Key=key)
    assert "mark" not in rewritten["Metadata"] and rewritten["Metadata"]["sha256"] == sha256(changed)
    assert client.get_object(Bucket=bucket, Key=key)["Body"].read() == changed, "a changed object is replaced whole"
    assert keys(client, bucket) == [key], "no temporary object is left under the prefix"


def test_s3_target_fault_before_the_copy_leaves_the_old_object_and_no_temp_object(s3, tmp_path, monkeypatch):
    client, bucket = s3
    target = S3Target(bucket, "open", client=client)
    relpath = "manifest.json"
    old, new = b'{"files": 1}', b'{"files": 2}'
    target.publish(local_file(tmp_path / "a", "m.json", old), relpath, sha256(old), "application/json")

    def copy_fails(*args, **kwargs):
        raise ConnectionError("connection reset during copy (injected)")

    monkeypatch.setattr(client, "copy", copy_fails)
    with pytest.raises(ConnectionError, match="injected"):
        target.publish_if_changed(local_file(tmp_path / "b", "m.json", new), relpath, "application/json")

    assert client.get_object(Bucket=bucket, Key="open/manifest.json")["Body"].read() == old, (
        "a publication that dies before the copy leaves the published object as it was")
    assert keys(client, bucket) == ["open/manifest.json"], "the temporary object is removed"
    assert target.sha256(relpath) == sha256(old)


def test_s3_target_reports_missing_objects(s3):
    client, bucket = s3
    target = S3Target(bucket, "open", client=client)

    assert target.sha256("catalog/data.json") is None, "no published object: no checksum"
    assert target.read_bytes("catalog/data.json") is None, "no published object: no content"


def test_s3_export_url_uses_boto3_environment(s3, s3_server, tmp_path, monkeypatch):
    client, bucket = s3
    for name, value in {"AWS_ENDPOINT_URL": s3_server.endpoint_url, "AWS_ACCESS_KEY_ID": s3_server.access_key,
                        "AWS_SECRET_ACCESS_KEY": s3_server.secret_key, "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(name, value)
    target = target_from_url(f"s3://{bucket}/portal/open")

    assert target.publish_if_changed(local_file(tmp_path, "c.json", b"{}"), "catalog/data.json", "application/json")

    assert client.get_object(Bucket=bucket, Key="portal/open/catalog/data.json")["Body"].read() == b"{}", (
        "AIM_EXPORT_URL s3://bucket/prefix: files go under the prefix, on the store boto3's variables name")
    assert target.read_bytes("catalog/data.json") == b"{}"


# ------------------------------------------------------------------ the export URL


def test_export_url_names_a_folder_or_an_s3_prefix(tmp_path):
    folder = target_from_url(str(tmp_path / "exports"))
    assert isinstance(folder, LocalTarget) and folder.root == tmp_path / "exports", "a path is a folder target"
    file_uri = target_from_url(f"file://{tmp_path}/exports")
    assert isinstance(file_uri, LocalTarget) and file_uri.root == tmp_path / "exports", "file:// is a folder target"
    s3 = target_from_url("s3://city-open-data/aim/")
    assert isinstance(s3, S3Target) and (s3.bucket, s3.prefix) == ("city-open-data", "aim")
    assert s3.url("manifest.json") == "s3://city-open-data/aim/manifest.json"
    assert target_from_url("s3://city-open-data").url("manifest.json") == "s3://city-open-data/manifest.json"


@pytest.mark.parametrize("url", ["s3:///no-bucket/prefix", "ftp://files.example/exports"])
def test_export_url_that_is_neither_is_refused_by_name(url):
    with pytest.raises(ValueError) as raised:
        target_from_url(url)
    assert url in str(raised.value), "an unusable AIM_EXPORT_URL: the error names it"

