"""Tests for aim_demo.s3_server against a real SeaweedFS (`weed`) process."""

from __future__ import annotations

import hashlib
import io
import os
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from aim_demo.s3_server import S3Server, S3ServerError, alive, find_weed_binary, start_s3_server

ROOT = Path(__file__).resolve().parents[1]

BUCKET = "aim-test"


def _accepts_connections(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(1.0)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_round_trip_put_copy_get_head_list(tmp_path: Path) -> None:
    small = b"hello aim\n" * 100
    big = os.urandom(20 * 1024 * 1024)  # > 8 MB boto3 threshold -> multipart
    with start_s3_server(tmp_path / "s3") as server:
        assert server.endpoint_url.startswith("http://127.0.0.1:")
        s3 = server.client()
        s3.create_bucket(Bucket=BUCKET)

        s3.put_object(
            Bucket=BUCKET, Key="_tmp/small.txt", Body=small,
            Metadata={"sha256": _sha256(small)},
        )
        s3.upload_fileobj(
            io.BytesIO(big), BUCKET, "_tmp/big.bin",
            ExtraArgs={"Metadata": {"sha256": _sha256(big)}},
        )
        assert "-" in s3.head_object(Bucket=BUCKET, Key="_tmp/big.bin")["ETag"]  # multipart

        for name, data in (("small.txt", small), ("big.bin", big)):
            s3.copy_object(
                Bucket=BUCKET, Key=f"final/{name}",
                CopySource={"Bucket": BUCKET, "Key": f"_tmp/{name}"},
                MetadataDirective="COPY",
            )
            s3.delete_object(Bucket=BUCKET, Key=f"_tmp/{name}")

            body = s3.get_object(Bucket=BUCKET, Key=f"final/{name}")["Body"].read()
            assert body == data
            head = s3.head_object(Bucket=BUCKET, Key=f"final/{name}")
            assert head["Metadata"] == {"sha256": _sha256(data)}
            assert head["ContentLength"] == len(data)

        s3.put_object(Bucket=BUCKET, Key="finalist.txt", Body=b"not under final/")
        listed = s3.list_objects_v2(Bucket=BUCKET, Prefix="final/")
        assert sorted(o["Key"] for o in listed["Contents"]) == ["final/big.bin", "final/small.txt"]
        assert s3.list_objects_v2(Bucket=BUCKET, Prefix="_tmp/")["KeyCount"] == 0


def test_stop_really_stops(tmp_path: Path) -> None:
    server = start_s3_server(tmp_path / "s3")
    try:
        assert server.is_running()
        assert _accepts_connections(server.ports["s3"])
        with pytest.raises(S3ServerError, match="in use"):
            start_s3_server(tmp_path / "s3")  # same data_dir is locked
        server.client().list_buckets()
    finally:
        server.stop()
    assert not server.is_running()
    for name, port in server.ports.items():
        assert not _accepts_connections(port), f"{name} port {port} still open"
    server.stop()  # idempotent


def test_restart_on_same_data_dir_keeps_objects(tmp_path: Path) -> None:
    with start_s3_server(tmp_path / "s3") as server:
        s3 = server.client()
        s3.create_bucket(Bucket=BUCKET)
        s3.put_object(Bucket=BUCKET, Key="k", Body=b"persist", Metadata={"sha256": "x"})
    with start_s3_server(tmp_path / "s3") as server:
        s3 = server.client()
        assert s3.get_object(Bucket=BUCKET, Key="k")["Body"].read() == b"persist"
        assert s3.head_object(Bucket=BUCKET, Key="k")["Metadata"] == {"sha256": "x"}
        s3.put_object(Bucket=BUCKET, Key="k2", Body=b"still writable")


ORPHANING_OWNER = """
import sys, time
sys.path[:0] = [{root!r}]
from aim_demo.s3_server import start_s3_server
server = start_s3_server({data!r})
server.client().create_bucket(Bucket="kept")
server.client().put_object(Bucket="kept", Key="k", Body=b"before the owner died")
print(server._proc.pid, flush=True)
time.sleep(600)
"""


def test_a_server_whose_owner_died_is_stopped_by_the_next_start(tmp_path: Path) -> None:
    """The demo killed before it could stop its S3 server (a second Ctrl-C, a kill -9) leaves weed
    running and holding the data folder's lock: the next start stops that orphan and starts."""
    data = tmp_path / "s3"
    owner = subprocess.Popen([sys.executable, "-c", ORPHANING_OWNER.format(root=str(ROOT), data=str(data))],
                             stdout=subprocess.PIPE, text=True)
    try:
        weed = int(owner.stdout.readline())
    finally:
        owner.kill()  # the owner dies without stopping its server
        owner.wait()
    assert alive(weed), "the orphaned weed still runs, holding the lock"
    with start_s3_server(data) as server:
        assert not alive(weed)
        assert server.client().get_object(Bucket="kept", Key="k")["Body"].read() == b"before the owner died"


def test_wrong_secret_is_rejected(tmp_path: Path) -> None:
    with start_s3_server(tmp_path / "s3", secret_key="right-secret") as server:
        server.client().list_buckets()
        server.secret_key = "wrong-secret"
        with pytest.raises(Exception, match="SignatureDoesNotMatch"):
            server.client().list_buckets()


def test_missing_weed_binary_gives_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sys.executable", str(tmp_path / "python"))
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(S3ServerError, match="'weed' not found"):
        find_weed_binary()


def test_startup_failure_reports_log_tail(tmp_path: Path) -> None:
    fake = tmp_path / "weed"
    fake.write_text("#!/bin/sh\necho 'fake weed: boom' >&2\nexit 3\n")
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    server = S3Server(tmp_path / "s3", weed_binary=fake, startup_timeout=10)
    with pytest.raises(S3ServerError, match="(?s)exited with code 3.*fake weed: boom"):
        server.start()
    assert not server.is_running()
