"""The analysts' role and the server it logs in to.

On any test server (trust, or the suite's embedded one): the warehouse grants no TEMPORARY to PUBLIC,
so aim_analyst creates no temporary objects (sql/migrations/0019_analyst_no_temp_no_other_databases.sql).

On an embedded server set up as `make demo` sets up its own (aim_demo/embedded_pg.py, aim_demo/local.py),
started here for the module whatever AIM_TEST_POSTGRES_URL says: aim_analyst logs in with the password
of its pgpass file only, into the warehouse database only; the superuser alone is trusted.
"""
from __future__ import annotations

import os
import shutil
import stat
import subprocess
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import psycopg2
import pytest
from sqlalchemy.engine import make_url

from aim.migrations import migrate
from aim_demo import embedded_pg, local
from aim_demo.databases import ensure_database, libpq_dsn

ANALYST = local.ANALYST_ROLE


def as_analyst(url: str):
    """A connection as aim_analyst: logged in where the server trusts it, else the owner's SET ROLE."""
    try:
        conn = psycopg2.connect(libpq_dsn(make_url(url).set(username=ANALYST, password=None)
                                          .render_as_string(hide_password=False)))
    except psycopg2.OperationalError:  # a server that wants a password: same privileges through SET ROLE
        conn = psycopg2.connect(libpq_dsn(url))
        conn.autocommit = True
        conn.cursor().execute(f"SET ROLE {ANALYST}")
    conn.autocommit = True
    return conn


def one(url: str, statement: str):
    """The first column of the first row of `statement` on `url`, as the URL's user."""
    conn = psycopg2.connect(libpq_dsn(url))
    try:
        with conn, conn.cursor() as cur:
            cur.execute(statement)
            return cur.fetchone()[0]
    finally:
        conn.close()


# ------------------------------------------------------------------ no temporary objects (any server)


@pytest.fixture(scope="module")
def warehouse(new_database) -> str:
    url = new_database("aim_analyst_role")
    migrate(url)
    return url


def test_the_analyst_cannot_create_temporary_objects(warehouse):
    conn = as_analyst(warehouse)
    try:
        cur = conn.cursor()
        cur.execute("SELECT current_user")
        assert cur.fetchone() == (ANALYST,)
        for statement in ("CREATE TEMP TABLE mine (x int)", "CREATE TEMPORARY VIEW mine AS SELECT 1 AS x",
                          "CREATE TEMP SEQUENCE mine", "SELECT 1 AS x INTO TEMP mine"):
            with pytest.raises(psycopg2.errors.InsufficientPrivilege, match="permission denied to create temporary"):
                cur.execute(statement)
        cur.execute("SELECT count(*) FROM marts.scorecard")  # reading marts still works
        assert cur.fetchone()[0] >= 0
    finally:
        conn.close()


def test_public_has_no_temporary_privilege_and_the_owner_keeps_it(warehouse):
    granted = one(warehouse, """
        SELECT array_agg(CASE WHEN a.grantee = 0 THEN 'PUBLIC' WHEN a.grantee = d.datdba THEN 'owner'
                              ELSE a.grantee::regrole::text END || ' ' || a.privilege_type ORDER BY 1)
        FROM pg_database d, aclexplode(d.datacl) a WHERE d.datname = current_database()""")
    assert "PUBLIC TEMPORARY" not in granted
    assert "owner TEMPORARY" in granted
    assert f"{ANALYST} CONNECT" in granted
    assert one(warehouse, f"SELECT has_database_privilege('{ANALYST}', current_database(), 'TEMPORARY')") is False
    assert one(warehouse, "SELECT has_database_privilege('public', current_database(), 'TEMPORARY')") is False


def test_the_migrating_user_still_creates_temporary_tables(warehouse):
    conn = psycopg2.connect(libpq_dsn(warehouse))
    try:
        with conn, conn.cursor() as cur:  # what aim.measures does on every run
            cur.execute("CREATE TEMP TABLE measure_window (period_start date) ON COMMIT DROP")
            cur.execute("SELECT count(*) FROM measure_window")
            assert cur.fetchone() == (0,)
    finally:
        conn.close()


# ------------------------------------------------------------------ the embedded demo server


def test_the_pg_hba_rules_trust_the_superuser_only_and_confine_the_analyst():
    rules = [line.split() for line in embedded_pg.hba_rules({ANALYST: ["aim"]}).splitlines()
             if line and not line.startswith("#")]
    trusted = {tuple(rule[2:3]) for rule in rules if rule[-1] == "trust"}
    assert trusted == {(embedded_pg.SUPERUSER,)}
    analyst = [rule for rule in rules if rule[2] == f'"{ANALYST}"']
    assert [rule[1] for rule in analyst if rule[-1] == "scram-sha-256"] == ['"aim"'] * 3  # socket, IPv4, IPv6
    assert [rule[1] for rule in analyst if rule[-1] == "reject"] == ["all", "all"]
    last_analyst_rule = max(rules.index(rule) for rule in analyst)
    assert all(rule[-1] == "scram-sha-256" for rule in rules[last_analyst_rule + 1:])  # everyone else: a password
    assert {rule[-1] for rule in rules} == {"trust", "scram-sha-256", "reject"}


@pytest.fixture(scope="module")
def demo_server():
    """An embedded server as `make demo` sets it up: warehouse `aim` migrated, the analyst's password set."""
    folder = Path(tempfile.mkdtemp(prefix="aim-test-analyst-pg-"))  # not under basetemp (see conftest.pg_server)
    pgdata = folder / "pgdata"
    try:
        server = embedded_pg.ensure_running(pgdata, confined_roles=local.ANALYST_ONLY_INTO)
        for database in (local.WAREHOUSE_DB, "other"):
            ensure_database(server.url(), database)
        warehouse = server.url(local.WAREHOUSE_DB)
        migrate(warehouse)
        passfile = folder / "state" / "aim_analyst.pgpass"
        local.set_analyst_password(warehouse, passfile)
        yield SimpleNamespace(server=server, pgdata=pgdata, warehouse=warehouse, passfile=passfile,
                              password=local.analyst_password(passfile))
    finally:
        embedded_pg.stop(pgdata)
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def no_stored_password(monkeypatch, tmp_path):
    """libpq finds no password of its own (no PGPASSWORD, no ~/.pgpass)."""
    monkeypatch.delenv("PGPASSWORD", raising=False)
    monkeypatch.setenv("PGPASSFILE", str(tmp_path / "no.pgpass"))


def connect(server, database: str, user: str = ANALYST, password: str | None = None):
    """A connection to `database` on the embedded `server` as `user`, with `password` if given."""
    params = {"host": server.host, "port": server.port, "dbname": database, "user": user, "connect_timeout": 10}
    return psycopg2.connect(**params, **({"password": password} if password is not None else {}))


def refusal(server, database: str, user: str = ANALYST, password: str | None = None) -> str:
    """Why the server refuses `user` into `database` (the test fails when it lets them in)."""
    with pytest.raises(psycopg2.OperationalError) as refused:
        connect(server, database, user, password).close()
    return str(refused.value)


def test_the_analyst_logs_in_with_its_password_reads_marts_and_creates_nothing(demo_server, no_stored_password):
    conn = connect(demo_server.server, local.WAREHOUSE_DB, password=demo_server.password)
    conn.autocommit = True
    try:
        cur = conn.cursor()
        cur.execute("SELECT current_user, current_database()")
        assert cur.fetchone() == (ANALYST, local.WAREHOUSE_DB)
        for view in ("scorecard", "measure_history", "values_by_district", "measure_definitions"):
            cur.execute(f"SELECT count(*) FROM marts.{view}")
            assert cur.fetchone()[0] >= 0
        with pytest.raises(psycopg2.errors.InsufficientPrivilege, match="permission denied to create temporary"):
            cur.execute("CREATE TEMP TABLE mine (x int)")
        with pytest.raises(psycopg2.errors.InsufficientPrivilege):
            cur.execute("SELECT * FROM ops.run_log")
    finally:
        conn.close()


def test_the_analyst_without_its_password_is_refused(demo_server, no_stored_password):
    assert "no password supplied" in refusal(demo_server.server, local.WAREHOUSE_DB)
    assert "password authentication failed" in refusal(demo_server.server, local.WAREHOUSE_DB, password="wrong")


@pytest.mark.parametrize("database", ["postgres", "other", "template1"])
def test_the_analyst_is_refused_every_other_database(demo_server, no_stored_password, database):
    reason = refusal(demo_server.server, database, password=demo_server.password)
    assert "pg_hba.conf rejects connection" in reason and f'database "{database}"' in reason


def test_no_role_but_the_superuser_logs_in_without_a_password(demo_server, no_stored_password):
    with psycopg2.connect(libpq_dsn(demo_server.warehouse)) as conn, conn.cursor() as cur:
        cur.execute("SELECT current_user")  # the superuser: trusted on loopback
        assert cur.fetchone() == (embedded_pg.SUPERUSER,)
        cur.execute("CREATE ROLE aim_test_someone LOGIN")
    conn.close()
    for database in (local.WAREHOUSE_DB, "postgres"):
        assert "no password supplied" in refusal(demo_server.server, database, user="aim_test_someone")


def test_psql_logs_in_as_the_analyst_through_the_pgpass_file(demo_server, no_stored_password):
    command = local.psql_command(local.analyst_url(demo_server.warehouse))
    assert demo_server.password not in " ".join(command)  # the password is not on a command line
    result = subprocess.run([*command, "-X", "-At", "-w", "-c", "SELECT current_user, current_database()"],
                            env={**os.environ, **local.analyst_environment(demo_server.passfile)},
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"{ANALYST}|{local.WAREHOUSE_DB}"


def test_the_password_file_is_private_stable_and_kept_out_of_the_server_log(demo_server):
    assert stat.S_IMODE(demo_server.passfile.stat().st_mode) == 0o600
    assert local.analyst_password(demo_server.passfile) == demo_server.password  # generated once
    assert len(demo_server.password) >= 32
    local.set_analyst_password(demo_server.warehouse, demo_server.passfile)  # as every demo start does
    assert demo_server.password not in (demo_server.pgdata / "server.log").read_text()
    stored = one(demo_server.warehouse, f"SELECT rolpassword FROM pg_authid WHERE rolname = '{ANALYST}'")
    assert stored.startswith("SCRAM-SHA-256$") and demo_server.password not in stored


def eventually(check, seconds: float = 10) -> None:
    """Retry `check` (an assertion) until it holds or `seconds` pass: a reload reaches the server a moment later."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            check()
            return
        except AssertionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def test_a_running_server_reloads_the_rules_it_is_started_with(demo_server, no_stored_password):
    server, password = demo_server.server, demo_server.password

    def analyst_gets_into_postgres() -> None:
        try:
            connect(server, "postgres", password=password).close()
        except psycopg2.OperationalError as refused:
            raise AssertionError(str(refused)) from refused

    def analyst_is_refused_postgres() -> None:
        assert "pg_hba.conf rejects" in refusal(server, "postgres", password=password)

    try:  # a server started before the analyst was confined (an older checkout's) ...
        assert embedded_pg.ensure_running(demo_server.pgdata).port == server.port
        eventually(analyst_gets_into_postgres)
    finally:  # ... is confined by the next start of the demo, without a restart
        restarted = embedded_pg.ensure_running(demo_server.pgdata, confined_roles=local.ANALYST_ONLY_INTO)
        assert restarted.port == server.port
    eventually(analyst_is_refused_postgres)


def test_the_demo_summary_says_where_the_password_is_and_never_prints_it(demo_server, capsys):
    from aim_demo.summary import print_summary

    print_summary(demo_server.warehouse, ["no_such_source"], since_epoch=0, analyst_passfile=demo_server.passfile)
    printed = capsys.readouterr().out
    assert "make psql-analyst" in printed and str(demo_server.passfile) in printed
    assert demo_server.password not in printed
