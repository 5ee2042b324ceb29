"""Alerts through Airflow's notifiers, against a real SMTP server (aiosmtpd) and a real HTTP server.

Channels are configured the way operations configures them: environment variables and Airflow
connections (`AIRFLOW_CONN_*`). A failing task run with `dag.test()` must alert through its
`on_failure_callback` notifiers.
"""
from __future__ import annotations

import email
import html
import json
import logging
import socket
from email import policy
from urllib.parse import quote

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

from aim.alerts import Alert, scrub, send
from alert_receivers import Webhook, webhook_server as receiving_webhook

pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")

SMTP_PASSWORD = "secretpw"
WEBHOOK_PASSWORD = "webhookpw"


def free_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Mailbox:
    """aiosmtpd handler and authenticator: keeps every message and every login."""

    def __init__(self):
        self.messages: list[email.message.EmailMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []
        self.logins: list[str] = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(email.message_from_bytes(envelope.content, policy=policy.default))
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        return "250 Message accepted for delivery"

    def __call__(self, server, session, envelope, mechanism, auth_data):
        ok = auth_data.login == b"aim" and auth_data.password == SMTP_PASSWORD.encode()
        if ok:
            self.logins.append(auth_data.login.decode())
        return AuthResult(success=ok)

    @staticmethod
    def text(message) -> str:
        """The message's body as the reader sees it (the HTML part, unescaped)."""
        return html.unescape(message.get_body(preferencelist=("html", "plain")).get_content())


@pytest.fixture(scope="module")
def smtp_server():
    mailbox = Mailbox()
    controller = Controller(mailbox, hostname="127.0.0.1", port=free_port(),
                            authenticator=mailbox, auth_required=True, auth_require_tls=False)
    controller.start()
    try:
        yield controller, mailbox
    finally:
        controller.stop()


@pytest.fixture(scope="module")
def webhook_server():
    with receiving_webhook() as server:
        yield server


@pytest.fixture
def channels(smtp_server, webhook_server, monkeypatch):
    """Both channels configured (e-mail and webhook); returns (mailbox, webhook posts), emptied."""
    controller, mailbox = smtp_server
    mailbox.messages.clear(), mailbox.envelopes.clear(), mailbox.logins.clear()
    Webhook.received.clear()
    monkeypatch.setenv("AIM_ALERT_EMAIL_TO", "ops@city.example, oncall@city.example")
    monkeypatch.setenv("AIM_ALERT_EMAIL_FROM", "aim@city.example")
    monkeypatch.setenv("AIRFLOW_CONN_AIM_ALERTS_SMTP", json.dumps({
        "conn_type": "smtp", "host": controller.hostname, "port": controller.port,
        "login": "aim", "password": SMTP_PASSWORD,
        "extra": {"disable_tls": True, "disable_ssl": True, "timeout": 5, "retry_limit": 0},
    }))
    host, port = webhook_server.server_address[:2]
    monkeypatch.setenv("AIRFLOW_CONN_AIM_ALERTS_WEBHOOK", f"http://hooks:{WEBHOOK_PASSWORD}@{host}:{port}/aim/alerts")
    monkeypatch.setenv("AIRFLOW__API__BASE_URL", "https://airflow.city.example/")
    return mailbox, Webhook.received


QUARANTINE = Alert(
    kind="batch quarantined", source="mpd_crime_incidents", dag_id="ingest_mpd_crime_incidents",
    run_id="scheduled__2026-06-17T15:00:00+00:00", batch_id="b-20260617-0001", task_id="validate",
    reason="3 of 6 expectations failed; batch held for review (warehouse postgresql://aim:secretpw@db:5432/aim)",
)
RUN_LINK = "https://airflow.city.example/dags/ingest_mpd_crime_incidents/runs/scheduled__2026-06-17T15%3A00%3A00%2B00%3A00"


def test_send_delivers_the_same_alert_by_email_and_webhook(channels):
    mailbox, posts = channels

    assert send(QUARANTINE) == ["email", "webhook"]

    assert mailbox.logins == ["aim"]  # the connection's credentials were used, to log in only
    (message,) = mailbox.messages
    assert mailbox.envelopes == [("aim@city.example", ["ops@city.example", "oncall@city.example"])]
    assert message["Subject"] == "[AIM] batch quarantined: mpd_crime_incidents"
    text = Mailbox.text(message)
    for fact in ("mpd_crime_incidents", "ingest_mpd_crime_incidents", "scheduled__2026-06-17T15:00:00+00:00",
                 "b-20260617-0001", "validate", "3 of 6 expectations failed", RUN_LINK):
        assert fact in text
    assert "postgresql://db:5432/aim" in text  # the URL stays, its credentials do not

    (post,) = posts
    assert post["path"] == "/aim/alerts"
    assert post["headers"]["Content-Type"] == "application/json"
    assert post["json"] == {
        "kind": "batch quarantined", "source": "mpd_crime_incidents", "dag_id": "ingest_mpd_crime_incidents",
        "run_id": "scheduled__2026-06-17T15:00:00+00:00", "batch_id": "b-20260617-0001", "task_id": "validate",
        "reason": QUARANTINE.reason, "url": RUN_LINK, "text": f"{QUARANTINE.subject()}\n\n{QUARANTINE.body()}",
    }
    assert post["json"]["text"].split("\n\n", 1)[1] in text  # both channels carry the same body

    for secret in (SMTP_PASSWORD, WEBHOOK_PASSWORD):
        assert secret not in message.as_string() and secret not in post["raw"]


FAILING_DAG = """
import datetime as dt

from airflow.sdk import DAG, task

from aim.alerts import failed_run_alert, notifiers_for

with DAG("alerts_failing_ingest", schedule=None, start_date=dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)):

    @task
    def start_run() -> str:
        return "b-test-0042"

    @task(retries=0, on_failure_callback=notifiers_for(lambda ctx: failed_run_alert(ctx, source="test_source")))
    def extract(batch_id: str) -> None:
        raise RuntimeError("extract failed: postgresql://aim:hunter2@db/aim unreachable")

    extract(start_run())
"""


def run_failing_dag(folder, monkeypatch):
    """The DAG above, from a file in `folder`, run with dag.test(); returns the DAG run."""
    from airflow.dag_processing.dagbag import DagBag

    (folder / "failing_ingest.py").write_text(FAILING_DAG)
    # dag.test() registers the DAG from its bundle: this folder is the only one
    monkeypatch.setenv("AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST", json.dumps([{
        "name": "alerts-test", "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle",
        "kwargs": {"path": str(folder)},
    }]))
    bag = DagBag(dag_folder=str(folder))
    assert bag.import_errors == {}
    return bag.dags["alerts_failing_ingest"].test()


def test_a_failed_task_alerts_through_its_notifiers_under_dag_test(channels, airflow_db, tmp_path, monkeypatch):
    mailbox, posts = channels

    run = run_failing_dag(tmp_path, monkeypatch)

    assert str(run.state) == "failed"
    (message,) = mailbox.messages
    (post,) = posts
    assert message["Subject"] == "[AIM] run failed: test_source"
    reason = "RuntimeError: extract failed: postgresql://db/aim unreachable"
    assert post["json"] | {"text": None} == {
        "kind": "run failed", "source": "test_source", "dag_id": "alerts_failing_ingest", "run_id": run.run_id,
        "batch_id": "b-test-0042", "task_id": "extract", "reason": reason,
        "url": f"https://airflow.city.example/dags/alerts_failing_ingest/runs/{quote(run.run_id, safe='')}",
        "text": None,
    }
    text = Mailbox.text(message)
    for fact in ("test_source", "alerts_failing_ingest", run.run_id, "b-test-0042", "Task: extract", reason,
                 post["json"]["url"]):
        assert fact in text
    assert "hunter2" not in message.as_string() and "hunter2" not in post["raw"]


def test_a_broken_channel_in_a_callback_does_not_stop_the_next_one(channels, airflow_db, tmp_path, monkeypatch):
    mailbox, posts = channels
    monkeypatch.setenv("AIRFLOW_CONN_AIM_ALERTS_SMTP", json.dumps({
        "conn_type": "smtp", "host": "127.0.0.1", "port": free_port(),
        "extra": {"disable_tls": True, "disable_ssl": True, "timeout": 5, "retry_limit": 0},
    }))

    run = run_failing_dag(tmp_path, monkeypatch)

    assert str(run.state) == "failed"  # for its own reason: the e-mail's failure is only logged
    assert mailbox.messages == []
    (post,) = posts  # the webhook, called after the e-mail notifier raised
    assert post["json"]["reason"] == "RuntimeError: extract failed: postgresql://db/aim unreachable"


def test_with_no_channel_configured_the_alert_is_logged(monkeypatch, caplog):
    for name in ("AIM_ALERT_EMAIL_TO", "AIRFLOW_CONN_AIM_ALERTS_WEBHOOK"):
        monkeypatch.delenv(name, raising=False)
    stale = Alert(kind="data stale", source="mfd_incidents", dag_id="ingest_mfd_incidents",
                  reason="no batch since 2026-06-15 (promised daily)")

    with caplog.at_level(logging.WARNING, logger="aim.alerts"):
        assert send(stale) == []

    (record,) = [r for r in caplog.records if r.name == "aim.alerts"]
    assert record.levelno == logging.WARNING
    assert "mfd_incidents" in record.getMessage() and "no batch since 2026-06-15" in record.getMessage()
    assert stale.url() == "http://localhost:8080/dags/ingest_mfd_incidents"  # no run: the DAG's page


def test_a_channel_that_is_down_is_logged_and_the_others_still_deliver(channels, monkeypatch, caplog):
    mailbox, posts = channels
    monkeypatch.setenv("AIRFLOW_CONN_AIM_ALERTS_WEBHOOK", f"http://127.0.0.1:{free_port()}/closed")

    with caplog.at_level(logging.ERROR, logger="aim.alerts"):
        assert send(QUARANTINE) == ["email"]

    assert len(mailbox.messages) == 1 and posts == []
    (record,) = [r for r in caplog.records if r.name == "aim.alerts"]
    assert "webhook" in record.getMessage() and record.exc_info is not None


def test_a_webhook_answering_an_error_is_a_failed_delivery(channels, webhook_server, monkeypatch, caplog):
    mailbox, posts = channels
    host, port = webhook_server.server_address[:2]
    monkeypatch.setenv("AIRFLOW_CONN_AIM_ALERTS_WEBHOOK",
                       json.dumps({"conn_type": "http", "host": f"http://{host}:{port}/broken"}))

    with caplog.at_level(logging.ERROR, logger="aim.alerts"):
        assert send(QUARANTINE) == ["email"]

    assert [p["path"] for p in posts] == ["/broken"]
    assert "HTTP Error 500" in caplog.text


@pytest.mark.parametrize(("raw", "clean"), [
    ('could not connect to "postgresql+psycopg2://aim:hunter2@db.internal:5432/aim"',
     'could not connect to "postgresql+psycopg2://db.internal:5432/aim"'),
    ("s3://key:pa@ss@bucket/key fails", "s3://bucket/key fails"),
    ("dsn: host=db user=aim password=hunter2 dbname=aim", "dsn: host=db user=aim password=*** dbname=aim"),
    ("dsn: password='two words' host=db", "dsn: password=*** host=db"),
    ("mail me@city.example at https://example.org/a@b", "mail me@city.example at https://example.org/a@b"),
])
def test_the_reason_is_scrubbed_of_credentials(raw, clean):
    assert scrub(raw) == clean
    assert Alert(kind="run failed", source="s", reason=raw).reason == clean


def test_an_unknown_kind_is_refused():
    with pytest.raises(ValueError, match="not one of"):
        Alert(kind="oops", source="s", reason="r")
