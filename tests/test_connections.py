"""From an Airflow connection to what a source's extractor needs (aim.connections.source_access).

For each kind of source, a Task SDK `Connection` built the way an operator defines it:
- `sql`: a SQLAlchemy URL that reaches the real PostgreSQL (over TCP, and over a Unix socket when
  the host is a socket directory, which becomes a `?host=` query parameter);
- `file` in S3: a store on the real S3 server, signed with the connection's keys;
- `file` in a folder: a store rooted at the connection's `path` extra plus the source's location;
- `http`: the base URL and request headers, sent to a real loopback HTTP server.
Credentials never show in the repr or str of what is returned, nor in error messages; a
connection of the wrong type is refused with an error naming the connection and the source.
"""
from __future__ import annotations

import json
import threading
import urllib.request
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import psycopg2
import pytest
import sqlalchemy as sa
from airflow.sdk import Connection
from sqlalchemy.engine import make_url

from aim.connections import source_access
from aim.extract.filestore import LocalStore, RemoteFile, S3Store
from aim.sources import SourceConfig
from aim_demo.databases import libpq_dsn

SQL_PASSWORD = "Sql-pw-7f3a9c!e"
S3_KEY_ID = "AKIA-CONN-TEST-KEY-ID"
HTTP_TOKEN = "tok-5b1e0c9d2a7f"


def source(kind: str, extract: dict, name: str = "test_source",
           connection_id: str | None = "test_conn") -> SourceConfig:
    """A minimal valid source configuration of `kind`."""
    return SourceConfig.model_validate({
        "source": name, "department": "Testing", "system": "a test system", "kind": kind,
        "connection_id": connection_id, "schedule": None, "owner": "tests", "extract": extract,
        "key": ["id"], "columns": [{"name": "id", "privacy": "public"}, {"name": "updated_at", "type": "timestamp", "privacy": "public"}],
        "expectation_suite": f"{name}.json",
    })


def sql_source(name: str = "mpd_crime_incidents") -> SourceConfig:
    return source("sql", {"table": "rms.incidents", "watermark_column": "updated_at"}, name=name,
                  connection_id="mpd_rms")


def file_source(location: str, name: str = "mfd_dispatch_incidents") -> SourceConfig:
    return source("file", {"location": location, "pattern": "*.csv", "format": {"kind": "csv"}}, name=name,
                  connection_id="landing")


def http_source(name: str = "dpw_service_requests") -> SourceConfig:
    return source("http", {"path": "/api/requests", "watermark_column": "updated_at"}, name=name,
                  connection_id="call_center_api")


def rendered(obj) -> str:
    return f"{obj!r}\n{obj!s}"


# ------------------------------------------------------------------ sql


@pytest.fixture
def database(new_database) -> str:
    return new_database("conn")


def test_sql_source_gets_a_url_that_reaches_the_database_and_hides_the_password(database):
    server = make_url(database)
    conn = Connection(conn_id="mpd_rms", conn_type="postgres", host=server.host, port=server.port,
                      login=server.username, password=SQL_PASSWORD, schema=server.database)

    url = source_access(sql_source(), conn)

    assert (url.host, url.port, url.username, url.database) == (server.host, server.port, server.username,
                                                                 server.database), "sql: the URL is the connection's"
    assert url.password == SQL_PASSWORD, "sql: the password travels inside the URL object"
    assert SQL_PASSWORD not in rendered(url), "sql: the password never shows in the URL's repr or str"
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as connection:
            assert connection.execute(sa.text("SELECT current_database()")).scalar() == server.database, (
                "sql: the URL reaches the connection's database")
    finally:
        engine.dispose()


@pytest.mark.parametrize("conn_type, driver", [
    ("postgres", "postgresql+psycopg2"), ("postgresql", "postgresql+psycopg2"), ("Postgres", "postgresql+psycopg2"),
    ("mysql", "mysql+pymysql"), ("mariadb", "mysql+pymysql"),
])
def test_sql_connection_types_map_to_the_shipped_drivers(conn_type, driver):
    conn = Connection(conn_id="mpd_rms", conn_type=conn_type, host="rms.example", port=5432, login="reader",
                      password=SQL_PASSWORD, schema="rms")

    url = source_access(sql_source(), conn)

    assert url.drivername == driver, f"sql: connection type {conn_type!r} uses the pinned driver {driver}"
    assert SQL_PASSWORD not in rendered(url)


def test_sql_unix_socket_host_becomes_a_host_query_parameter():
    conn = Connection(conn_id="mpd_rms", conn_type="postgres", host="/some/dir", port=5433, login="reader",
                      password=SQL_PASSWORD, schema="rms")

    url = source_access(sql_source(), conn)

    assert url.host is None, "sql: a socket directory is not a TCP host"
    assert dict(url.query) == {"host": "/some/dir"}, "sql: a socket directory becomes ?host=<dir>"
    assert (url.port, url.database, url.username) == (5433, "rms", "reader")
    assert SQL_PASSWORD not in rendered(url)
    assert make_url(url.render_as_string(hide_password=False)).query["host"] == "/some/dir", (
        "sql: the socket directory survives rendering the URL")


def _socket_of(database: str) -> tuple[str, int]:
    """The test server's Unix-socket directory this process can reach, and its port (skips when none)."""
    with psycopg2.connect(libpq_dsn(database)) as admin, admin.cursor() as cur:
        cur.execute("SHOW unix_socket_directories")
        directories = [d.strip() for d in cur.fetchone()[0].split(",") if d.strip().startswith("/")]
        cur.execute("SHOW port")
        port = int(cur.fetchone()[0])
    admin.close()
    usable = [d for d in directories if (Path(d) / f".s.PGSQL.{port}").exists()]
    if not usable:
        pytest.skip("the test PostgreSQL server has no Unix socket this process can reach")
    return usable[0], port


def _database_and_whether_over_a_socket(url) -> tuple:
    """(current database, True when the connection came over a Unix socket) for a connection to `url`."""
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as connection:
            return tuple(connection.execute(sa.text("SELECT current_database(), inet_server_addr() IS NULL")).one())
    finally:
        engine.dispose()


def test_sql_unix_socket_connection_reaches_the_server(database):
    """The `?host=` URL really connects through the socket, when the test server has one."""
    server = make_url(database)
    directory, port = _socket_of(database)
    conn = Connection(conn_id="mpd_rms", conn_type="postgres", host=directory, port=port,
                      login=server.username, schema=server.database)

    row = _database_and_whether_over_a_socket(source_access(sql_source(), conn))
    assert row == (server.database, True), "sql: a socket-directory host connects over the Unix socket"


def test_a_socket_folder_warehouse_gives_the_demo_police_system_a_url_on_the_same_server(database):
    """AIM_WAREHOUSE_URL naming its server by socket folder (`...@/aim?host=/dir`): the demo's police
    connection (database mpd_rms beside it, as AIRFLOW_CONN_MPD_RMS carries it) reaches that server
    through the socket, not another one over TCP."""
    from aim_demo.local import rms_url

    server = make_url(database)
    directory, port = _socket_of(database)
    warehouse = server._replace(host=None, port=None, database="aim").update_query_dict(
        {"host": directory, "port": str(port)}).render_as_string(hide_password=False)
    # the police database of the demo is server.database here: the one the test owns
    police = rms_url(warehouse).replace("/mpd_rms?", f"/{server.database}?")
    conn = Connection.from_uri(police, conn_id="mpd_rms")
    assert not conn.host and conn.extra_dejson["host"] == directory  # libpq's URI form: the folder is an extra

    url = source_access(sql_source(), conn)
    assert dict(url.query).get("host") == directory and url.host is None
    assert _database_and_whether_over_a_socket(url) == (server.database, True)


def test_sql_wrong_connection_type_names_the_connection_and_hides_the_password():
    conn = Connection(conn_id="mpd_rms", conn_type="http", host="rms.example", login="reader",
                      password=SQL_PASSWORD)

    with pytest.raises(ValueError) as raised:
        source_access(sql_source(), conn)

    message = str(raised.value)
    assert "mpd_rms" in message and "http" in message, (
        "a wrong connection type: the error names the connection and its type")
    assert SQL_PASSWORD not in message, "a wrong connection type: the error never shows the password"


# ------------------------------------------------------------------ file in S3


@pytest.fixture
def bucket(s3_server) -> str:
    name = f"conn-{uuid.uuid4().hex[:10]}"
    s3_server.client().create_bucket(Bucket=name)
    return name


def aws_connection(s3_server, secret: str | None = None, key_id: str | None = None) -> Connection:
    return Connection(conn_id="mfd_cad_landing", conn_type="aws", login=key_id or s3_server.access_key,
                      password=secret or s3_server.secret_key,
                      extra=json.dumps({"endpoint_url": s3_server.endpoint_url, "region_name": "us-east-1"}))


def test_s3_file_source_gets_a_store_on_the_connections_server(s3_server, bucket, tmp_path):
    s3_server.client().put_object(Bucket=bucket, Key="mfd/cad/cad_2026-06-01.csv", Body=b"id\n1\n")
    s3_server.client().put_object(Bucket=bucket, Key="mfd/other/cad_2026-06-02.csv", Body=b"id\n2\n")

    store = source_access(file_source(f"s3://{bucket}/mfd/cad"), aws_connection(s3_server))

    assert isinstance(store, S3Store), "file in s3://: an S3 store"
    assert store.list("*.csv") == [RemoteFile("cad_2026-06-01.csv", 5)], (
        "file in s3://: the store lists the location's bucket and prefix on the connection's endpoint")
    assert store.fetch("cad_2026-06-01.csv", tmp_path / "x.csv") and (tmp_path / "x.csv").read_bytes() == b"id\n1\n"
    assert store.describe("cad_2026-06-01.csv") == f"s3://{bucket}/mfd/cad/cad_2026-06-01.csv"
    for text in (rendered(store), rendered(store.client), store.describe("cad_2026-06-01.csv")):
        assert s3_server.secret_key not in text and s3_server.access_key not in text, (
            "file in s3://: the keys never show in the store's repr, str or descriptions")


def test_s3_file_source_with_a_wrong_secret_fails_without_showing_it(s3_server, bucket):
    wrong_secret = "Wrong-Secret-" + uuid.uuid4().hex
    store = source_access(file_source(f"s3://{bucket}/mfd/cad"),
                          aws_connection(s3_server, secret=wrong_secret))

    with pytest.raises(Exception) as raised:
        store.list("*.csv")

    assert wrong_secret not in str(raised.value) and wrong_secret not in repr(raised.value), (
        "a refused S3 request: the error never shows the secret key")
    assert wrong_secret not in rendered(store)


# ------------------------------------------------------------------ file in a folder


def test_folder_file_source_is_rooted_at_the_connections_path(tmp_path):
    landing = tmp_path / "landing"
    (landing / "dns" / "orders").mkdir(parents=True)
    (landing / "dns" / "orders" / "orders_w01.csv").write_bytes(b"id\n1\n")
    (landing / "orders_w02.csv").write_bytes(b"id\n2\n")  # at the root, not in the location
    conn = Connection(conn_id="dns_orders_drop", conn_type="fs", extra=json.dumps({"path": str(landing)}))

    store = source_access(file_source("dns/orders", name="dns_code_enforcement_orders"), conn)

    assert isinstance(store, LocalStore)
    assert Path(store.describe("orders_w01.csv")) == landing / "dns" / "orders" / "orders_w01.csv", (
        "file in a folder: a relative location is under the connection's path")
    assert store.list("*.csv") == [RemoteFile("orders_w01.csv", 5)]


def test_folder_file_source_with_an_absolute_location_ignores_the_connections_path(tmp_path):
    elsewhere = tmp_path / "absolute" / "drop"
    elsewhere.mkdir(parents=True)
    (elsewhere / "a.csv").write_bytes(b"id\n")
    conn = Connection(conn_id="dns_orders_drop", conn_type="fs", extra=json.dumps({"path": str(tmp_path / "landing")}))

    store = source_access(file_source(str(elsewhere), name="dns_code_enforcement_orders"), conn)

    assert Path(store.describe("a.csv")) == elsewhere / "a.csv", "file in a folder: an absolute location is used as is"
    assert store.list("*.csv") == [RemoteFile("a.csv", 3)]


# ------------------------------------------------------------------ http


class _Recorder(BaseHTTPRequestHandler):
    """Answers every GET with an empty page of results and records the request (path, headers)."""

    seen: list  # set per server by the fixture

    def do_GET(self):  # http.server's name
        type(self).seen.append((self.path, dict(self.headers)))
        body = b'{"results": []}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def http_server():
    handler = type("Recorder", (_Recorder,), {"seen": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server, handler
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_http_source_gets_base_url_and_bearer_token_that_reach_the_api(http_server):
    server, handler = http_server
    host, port = server.server_address
    conn = Connection(conn_id="call_center_api", conn_type="http", host=host, port=port, schema="http",
                      password=HTTP_TOKEN, extra=json.dumps({"headers": {"X-Client": "aim"}}))

    base, headers = source_access(http_source(), conn)

    assert base == f"http://{host}:{port}", "http: the base URL is schema://host:port"
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(urllib.request.Request(base + "/api/requests?limit=1", headers=headers), timeout=10) as resp:
        assert json.load(resp) == {"results": []}
    (path, sent), = handler.seen
    assert path == "/api/requests?limit=1"
    assert sent.get("Authorization") == f"Bearer {HTTP_TOKEN}", "http: a password becomes a bearer token"
    assert sent.get("X-Client") == "aim", "http: the headers extra is sent"


@pytest.mark.parametrize("host, schema, port, expected", [
    ("api.example.org", "https", 8443, "https://api.example.org:8443"),
    ("api.example.org", None, None, "http://api.example.org"),
    ("https://api.example.org/v2/", None, 9999, "https://api.example.org/v2"),
])
def test_http_base_url_forms(host, schema, port, expected):
    conn = Connection(conn_id="call_center_api", conn_type="http", host=host, schema=schema, port=port)

    base, headers = source_access(http_source(), conn)

    assert base == expected, "http: schema defaults to http; a host given with its scheme is kept as it is"
    assert headers == {}, "http: no password and no headers extra: no headers"


def test_http_explicit_authorization_header_is_not_replaced():
    conn = Connection(conn_id="call_center_api", conn_type="http", host="api.example.org", password=HTTP_TOKEN,
                      extra=json.dumps({"headers": {"Authorization": "ApiKey abc"}}))

    _, headers = source_access(http_source(), conn)

    assert headers == {"Authorization": "ApiKey abc"}, "http: an Authorization header in the extras wins"


# ------------------------------------------------------------------ every kind: credentials and wrong types


def _access_for(kind: str, s3_server, tmp_path):
    """(source, connection, secrets) of `kind`, with a password set on the connection."""
    if kind == "sql":
        return sql_source(), Connection(conn_id="mpd_rms", conn_type="postgres", host="rms.example", port=5432,
                                        login="reader", password=SQL_PASSWORD, schema="rms"), [SQL_PASSWORD]
    if kind == "s3":
        return (file_source("s3://landing-bucket/mfd/cad"),
                Connection(conn_id="mfd_cad_landing", conn_type="aws", login=S3_KEY_ID, password=s3_server.secret_key,
                           extra=json.dumps({"endpoint_url": s3_server.endpoint_url, "region_name": "us-east-1"})),
                [S3_KEY_ID, s3_server.secret_key])
    if kind == "folder":
        return (file_source("dns/orders", name="dns_code_enforcement_orders"),
                Connection(conn_id="dns_orders_drop", conn_type="fs", login="dropper", password="Fs-pw-31ab",
                           extra=json.dumps({"path": str(tmp_path)})), ["Fs-pw-31ab"])
    return (http_source(), Connection(conn_id="call_center_api", conn_type="http", host="api.example.org",
                                      schema="https", password=HTTP_TOKEN), [HTTP_TOKEN])


@pytest.mark.parametrize("kind", [
    "sql", "s3", "folder",
    "http",
])
def test_credentials_never_show_in_what_source_access_returns(kind, s3_server, tmp_path):
    config, conn, secrets = _access_for(kind, s3_server, tmp_path)

    access = source_access(config, conn)

    text = rendered(access)
    for secret in secrets:
        assert secret not in text, f"{kind}: a credential shows in the repr/str of what source_access returns"


@pytest.mark.parametrize("kind, wrong_type", [("sql", "aws"), ("s3", "postgres"), ("folder", "aws"), ("http", "fs")])
def test_a_wrong_connection_type_is_refused_naming_the_connection_and_the_source(kind, wrong_type, s3_server, tmp_path):
    config, conn, secrets = _access_for(kind, s3_server, tmp_path)
    wrong = Connection(conn_id=conn.conn_id, conn_type=wrong_type, host=conn.host, port=conn.port, login=conn.login,
                       password=conn.password, schema=conn.schema, extra=conn.extra)

    with pytest.raises(ValueError) as raised:
        source_access(config, wrong)

    message = str(raised.value)
    assert conn.conn_id in message, f"{kind}: a wrong connection type names the connection"
    assert config.source in message, f"{kind}: a wrong connection type names the source"
    assert not any(secret in message for secret in secrets), f"{kind}: the error never shows a credential"
