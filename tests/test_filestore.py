"""The source-side file stores (aim.extract.filestore): a folder drop and an S3 prefix drop.

Each store lists the files directly under its root whose name matches a pattern (sorted, with
sizes), fetches one to a local path while hashing it (the SHA-256 is the file's version), and
names a file's full location for messages. The folder store never serves a file that lies
outside its root through a symlink. S3 tests run against the real SeaweedFS server.
"""
from __future__ import annotations

import hashlib
import os
import uuid
from pathlib import Path

import pytest

from aim.extract.filestore import LocalStore, RemoteFile, S3Store


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def big_content(size: int, seed: bytes) -> bytes:
    """`size` bytes that are not a repetition of one block (so a block lost or doubled changes the hash)."""
    out = bytearray()
    counter = 0
    while len(out) < size:
        out += hashlib.sha256(seed + counter.to_bytes(8, "big")).digest()
        counter += 1
    return bytes(out[:size])


# ------------------------------------------------------------------ the folder store


@pytest.fixture
def drop(tmp_path) -> Path:
    """A drop folder: matching files, others, a hidden one, a subfolder, and a file outside it."""
    root = tmp_path / "landing" / "dns" / "orders"
    root.mkdir(parents=True)
    (root / "dns_orders_2026-W02.xlsx").write_bytes(b"week two" * 10)
    (root / "dns_orders_2026-W01.xlsx").write_bytes(b"week one")
    (root / "readme.txt").write_bytes(b"not a workbook")
    (root / ".dns_orders_2026-W03.xlsx").write_bytes(b"hidden: an upload in progress")
    (root / "old").mkdir()
    (root / "old" / "dns_orders_2025-W52.xlsx").write_bytes(b"archived")
    (root / "dns_orders_folder.xlsx").mkdir()  # a folder whose name matches is not a file
    return root


def test_folder_store_lists_matching_files_directly_under_its_root_sorted_with_sizes(drop):
    store = LocalStore(drop)

    listed = store.list("dns_orders_*.xlsx")

    assert listed == [RemoteFile("dns_orders_2026-W01.xlsx", 8), RemoteFile("dns_orders_2026-W02.xlsx", 80)], (
        "listing: only visible files directly under the root whose name matches, sorted by key, with their size")
    assert store.list("*.txt") == [RemoteFile("readme.txt", 14)], "listing: the pattern decides which files"
    assert store.list("*.csv") == [], "listing: no match is an empty list, not an error"


def test_folder_store_listing_a_missing_folder_names_the_folder(tmp_path):
    missing = tmp_path / "no" / "such" / "drop"

    with pytest.raises(FileNotFoundError) as raised:
        LocalStore(missing).list("*")

    assert str(missing) in str(raised.value), "a missing drop folder: the error names the folder"


def test_folder_store_fetch_copies_the_file_and_returns_its_sha256(drop, tmp_path):
    content = big_content(3 * (1 << 20) + 12345, b"folder")  # several 1 MiB blocks and a partial one
    (drop / "dns_orders_2026-W05.xlsx").write_bytes(content)
    destination = tmp_path / "work" / "fetched.xlsx"
    destination.parent.mkdir()

    digest = LocalStore(drop).fetch("dns_orders_2026-W05.xlsx", destination)

    assert digest == sha256(content), "fetch returns the SHA-256 of the file's content (its version)"
    assert destination.read_bytes() == content, "fetch copies the whole file, byte for byte"


def test_folder_store_fetch_of_an_empty_file(drop, tmp_path):
    (drop / "empty.csv").write_bytes(b"")

    digest = LocalStore(drop).fetch("empty.csv", tmp_path / "empty.csv")

    assert digest == sha256(b""), "an empty file has the SHA-256 of no bytes"
    assert (tmp_path / "empty.csv").read_bytes() == b""


def test_folder_store_describe_names_the_file_in_its_folder(drop):
    described = LocalStore(drop).describe("dns_orders_2026-W01.xlsx")

    assert Path(described) == drop / "dns_orders_2026-W01.xlsx", "describe gives the file's full path"
    assert Path(described).read_bytes() == b"week one", "describe names the file that is fetched"


def test_folder_store_never_serves_a_file_through_a_symlink_leaving_its_root(drop, tmp_path):
    secret = tmp_path / "elsewhere" / "secrets.csv"
    secret.parent.mkdir()
    secret.write_bytes(b"user,password\nadmin,hunter2\n")
    (drop / "dns_orders_2026-W09.xlsx").symlink_to(secret)
    (drop / "dns_orders_2026-W10.xlsx").symlink_to(Path(os.path.relpath(secret, drop)))  # relative link
    store = LocalStore(drop)

    listed = [f.key for f in store.list("dns_orders_*.xlsx")]

    assert "dns_orders_2026-W09.xlsx" not in listed and "dns_orders_2026-W10.xlsx" not in listed, (
        "the folder store does not list a symlink that points outside its root")
    for key in ("dns_orders_2026-W09.xlsx", "dns_orders_2026-W10.xlsx"):
        destination = tmp_path / f"fetched-{key}"
        with pytest.raises((OSError, ValueError)):
            store.fetch(key, destination)
        assert not destination.exists() or destination.read_bytes() == b"", (
            "nothing from outside the root is copied through a symlink")


def test_folder_store_refusal_names_the_file_and_the_folder(drop, tmp_path, caplog):
    secret = tmp_path / "elsewhere" / "secrets.csv"
    secret.parent.mkdir()
    secret.write_bytes(b"user,password\nadmin,hunter2\n")
    (drop / "dns_orders_2026-W09.xlsx").symlink_to(secret)
    store = LocalStore(drop)

    with caplog.at_level("WARNING", logger="aim.extract.filestore"):
        store.list("dns_orders_*.xlsx")
    with pytest.raises(PermissionError) as refused:
        store.fetch("dns_orders_2026-W09.xlsx", tmp_path / "fetched.xlsx")

    for message in (caplog.text, str(refused.value)):
        assert str(drop / "dns_orders_2026-W09.xlsx") in message and "outside the drop folder" in message, (
            "a symlink out of the root is refused with a message naming the file")
    assert not (tmp_path / "fetched.xlsx").exists(), "nothing is copied"


def test_folder_store_never_serves_a_file_through_a_symlinked_folder_or_a_dotted_key(drop, tmp_path):
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "dns_orders_2026-W11.xlsx").write_bytes(b"from outside")
    (drop / "linked").symlink_to(outside, target_is_directory=True)
    store = LocalStore(drop)

    assert "linked" not in [f.key for f in store.list("*")], "a symlinked folder is not a file of the drop"
    for key in ("linked/dns_orders_2026-W11.xlsx", "../../../elsewhere/dns_orders_2026-W11.xlsx"):
        with pytest.raises(PermissionError):
            store.fetch(key, tmp_path / "fetched.xlsx")
    assert not (tmp_path / "fetched.xlsx").exists(), "nothing from outside the root is copied"


def test_folder_store_serves_a_symlink_that_stays_inside_its_root(drop, tmp_path):
    """The rule above is about leaving the root: a link to a file inside the drop is that file."""
    (drop / "latest.xlsx").symlink_to("dns_orders_2026-W01.xlsx")
    store = LocalStore(drop)

    assert RemoteFile("latest.xlsx", 8) in store.list("*.xlsx")
    assert store.fetch("latest.xlsx", tmp_path / "latest.xlsx") == sha256(b"week one")


# ------------------------------------------------------------------ the S3 store


@pytest.fixture
def s3(s3_server):
    """A client of the real S3 server and a fresh bucket for this test."""
    client = s3_server.client()
    bucket = f"filestore-{uuid.uuid4().hex[:10]}"
    client.create_bucket(Bucket=bucket)
    return client, bucket


def put(client, bucket: str, key: str, body: bytes) -> None:
    client.put_object(Bucket=bucket, Key=key, Body=body)


def test_s3_store_lists_matching_files_directly_under_its_prefix(s3):
    client, bucket = s3
    put(client, bucket, "mfd/cad/cad_incidents_2026-06-02.csv", b"b" * 20)
    put(client, bucket, "mfd/cad/cad_incidents_2026-06-01.csv", b"a" * 10)
    put(client, bucket, "mfd/cad/notes.txt", b"n")
    put(client, bucket, "mfd/cad/rejected/cad_incidents_2026-05-31.csv", b"r")  # deeper: not in this drop
    put(client, bucket, "mfd/cadx/cad_incidents_2026-06-03.csv", b"x")          # a sibling prefix
    put(client, bucket, "mhd/lab/cad_incidents_2026-06-04.csv", b"y")           # another drop
    put(client, bucket, "cad_incidents_2026-06-05.csv", b"z")                    # the bucket's root

    for prefix in ("mfd/cad", "/mfd/cad/"):
        listed = S3Store(client, bucket, prefix).list("cad_incidents_*.csv")
        assert listed == [RemoteFile("cad_incidents_2026-06-01.csv", 10),
                          RemoteFile("cad_incidents_2026-06-02.csv", 20)], (
            f"listing under prefix {prefix!r}: only the objects directly under it whose name matches, "
            "sorted, with sizes")
    assert S3Store(client, bucket, "mfd/cad").list("*.txt") == [RemoteFile("notes.txt", 1)]
    assert S3Store(client, bucket, "").list("cad_incidents_*.csv") == [RemoteFile("cad_incidents_2026-06-05.csv", 1)], (
        "an empty prefix is the bucket's root, without the objects under folders")
    assert S3Store(client, bucket, "nothing/here").list("*") == [], "an empty prefix lists nothing"


def test_s3_store_fetch_copies_the_object_and_returns_its_sha256(s3, tmp_path):
    client, bucket = s3
    content = big_content(2 * (1 << 20) + 777, b"s3")
    put(client, bucket, "mhd/lab/lead_2026-05.csv", content)
    destination = tmp_path / "lead.csv"

    digest = S3Store(client, bucket, "mhd/lab/").fetch("lead_2026-05.csv", destination)

    assert digest == sha256(content), "fetch returns the SHA-256 of the object's content"
    assert destination.read_bytes() == content, "fetch copies the whole object, byte for byte"


def test_s3_store_fetch_of_a_missing_key_fails(s3, tmp_path):
    client, bucket = s3

    with pytest.raises(client.exceptions.NoSuchKey):
        S3Store(client, bucket, "mhd/lab").fetch("missing.csv", tmp_path / "missing.csv")


def test_s3_store_describe_names_bucket_and_full_key(s3):
    client, bucket = s3
    put(client, bucket, "mfd/cad/cad_incidents_2026-06-01.csv", b"x")

    assert S3Store(client, bucket, "/mfd/cad/").describe("cad_incidents_2026-06-01.csv") == (
        f"s3://{bucket}/mfd/cad/cad_incidents_2026-06-01.csv"), "describe names the bucket and the object's full key"
    assert S3Store(client, bucket, "").describe("top.csv") == f"s3://{bucket}/top.csv"
    # what describe names is what fetch reads
    key = S3Store(client, bucket, "mfd/cad").describe("cad_incidents_2026-06-01.csv").split("/", 3)[3]
    assert client.get_object(Bucket=bucket, Key=key)["Body"].read() == b"x"
