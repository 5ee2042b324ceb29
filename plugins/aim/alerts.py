"""Alerts: a failed run, a quarantined batch or stale data, sent through Airflow's notifiers.

An `Alert` names the source, the DAG, the run, the batch, the task and the reason, and links to the
run in the Airflow UI. It goes to every configured channel, each an Airflow notifier
(`BaseNotifier`): as a task's `on_failure_callback` (`notifiers_for`), or from any code with
`send(alert)` (the quarantine path, the freshness watch). Both use the same delivery code.

Configuration (environment and Airflow connections only, nothing in code):

| setting                         | what it does                                                      |
| ------------------------------- | ----------------------------------------------------------------- |
| `AIM_ALERT_EMAIL_TO`            | e-mail recipients, comma-separated; e-mail is on when it is set   |
| `AIM_ALERT_EMAIL_FROM`          | the sender (default `aim-platform@localhost`)                     |
| connection `aim_alerts_smtp`    | the SMTP server (type smtp); another id: `AIM_ALERT_SMTP_CONN_ID` |
| connection `aim_alerts_webhook` | the webhook (type http); the webhook is on when it exists;        |
|                                 | another id: `AIM_ALERT_WEBHOOK_CONN_ID`                           |
| `AIRFLOW__API__BASE_URL`        | where links point ([api] base_url, default http://localhost:8080) |

Connections are usually given as `AIRFLOW_CONN_AIM_ALERTS_SMTP` and `AIRFLOW_CONN_AIM_ALERTS_WEBHOOK`.

E-mail goes through the SMTP provider's `SmtpNotifier` and `SmtpHook`, so the connection's extras
are the provider's: `disable_tls`, `disable_ssl`, `timeout` (default 30 s), `retry_limit` (default
5), `from_email`. Write them as JSON booleans (`{"conn_type": "smtp", "host": ..., "port": 25,
"extra": {"disable_tls": true, "disable_ssl": true}}`): in a URI every extra is a string, and the
provider reads any non-empty string, "false" included, as true.

The webhook gets a JSON POST (10 s timeout) with the keys kind, source, dag_id, run_id, batch_id,
task_id, reason, url and text (subject and body: what a chat webhook shows). Its URL is the
connection's host when that is a full URL (`{"conn_type": "http", "host": "https://hooks.example/T1/abc"}`),
otherwise `http://host:port/schema` (`https` when the connection type or schema says so), for
example `AIRFLOW_CONN_AIM_ALERTS_WEBHOOK=http://alerts.internal:8080/aim`. A login and password
become HTTP basic authentication; extra `headers` (a JSON object) are sent as request headers.
An answer other than 2xx is a failure.

Which channels are configured is decided when an alert is sent, not when a DAG file is parsed.
No credentials reach a message: the reason is scrubbed of `user:password@` in URLs, of
`password=...` pairs, and of every secret Airflow's masker knows in the process.

A broken channel never hides what it reports: `send` logs the failure and carries on; a notifier
raises, and Airflow logs it ("Failed to run task callback") and still runs the task's other
callbacks, so the task fails for its own reason either way.
"""
from __future__ import annotations

import base64
import html
import json
import logging
import os
import re
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from airflow.sdk import BaseNotifier

log = logging.getLogger(__name__)

KINDS = ("run failed", "batch quarantined", "data stale")
DEFAULT_BASE_URL = "http://localhost:8080"
DEFAULT_EMAIL_FROM = "aim-platform@localhost"
WEBHOOK_TIMEOUT_SECONDS = 10
MAX_REASON_CHARS = 2000

_URL_CREDENTIALS = re.compile(r"(\b[a-zA-Z][a-zA-Z0-9+.\-]*://)[^\s/]*@")
_PASSWORD_PAIR = re.compile(r"(\bpassword\s*=\s*)('[^']*'|\S+)", re.IGNORECASE)


def scrub(text: str) -> str:
    """`text` without credentials: no `user:password@` in URLs, no `password=...`, no masked secret."""
    text = _PASSWORD_PAIR.sub(r"\1***", _URL_CREDENTIALS.sub(r"\1", text))
    try:
        from airflow.sdk._shared.secrets_masker import redact  # every secret Airflow has seen here
    except ImportError:  # pragma: no cover - the masker moved: the patterns above still apply
        return text
    return str(redact(text))


@dataclass(frozen=True)
class Alert:
    """What went wrong, where: everything a channel needs to tell an operator."""

    kind: str
    source: str
    reason: str
    dag_id: str | None = None
    run_id: str | None = None
    batch_id: str | None = None
    task_id: str | None = None

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"alert kind {self.kind!r} is not one of {KINDS}")
        reason = scrub(str(self.reason))
        if len(reason) > MAX_REASON_CHARS:
            reason = reason[:MAX_REASON_CHARS] + " …"
        object.__setattr__(self, "reason", reason)

    def subject(self) -> str:
        """One line: "[AIM] run failed: mpd_crime_incidents"."""
        return f"[AIM] {self.kind}: {self.source}"

    def url(self) -> str | None:
        """The run in the Airflow UI (the DAG when there is no run); None without a DAG."""
        if not self.dag_id:
            return None
        from airflow.sdk.configuration import conf

        base = (conf.get("api", "base_url", fallback=None) or DEFAULT_BASE_URL).rstrip("/")
        link = f"{base}/dags/{quote(self.dag_id, safe='')}"
        return f"{link}/runs/{quote(self.run_id, safe='')}" if self.run_id else link

    def body(self) -> str:
        """Plain text naming the source, DAG, run, batch, task, reason and the link (when known)."""
        lines = [
            ("Source", self.source), ("DAG", self.dag_id), ("Run", self.run_id), ("Batch", self.batch_id),
            ("Task", self.task_id), ("Reason", self.reason), ("Link", self.url()),
        ]
        return f"AIM alert: {self.kind}\n\n" + "".join(f"{name}: {value}\n" for name, value in lines if value)

    def payload(self) -> dict[str, Any]:
        """The webhook's JSON document."""
        return {
            "kind": self.kind, "source": self.source, "dag_id": self.dag_id, "run_id": self.run_id,
            "batch_id": self.batch_id, "task_id": self.task_id, "reason": self.reason, "url": self.url(),
            "text": f"{self.subject()}\n\n{self.body()}",
        }


class AlertNotifier(BaseNotifier):
    """An Airflow notifier for one channel: builds the Alert from the context and delivers it.

    Raises when delivery fails (Airflow logs it and runs the other callbacks); does nothing when
    its channel is not configured.
    """

    channel = ""

    def __init__(self, alert_of: Callable[[Any], Alert]):
        super().__init__()
        self.alert_of = alert_of

    @classmethod
    def configured(cls) -> bool:
        raise NotImplementedError

    def deliver(self, alert: Alert, context) -> None:
        raise NotImplementedError

    def render_template_fields(self, context, jinja_env=None) -> None:
        """Nothing to render: an alert's text is never a template (and a DAG-level callback under
        dag.test() hands BaseNotifier a SerializedDAG, which has no template environment)."""

    def notify(self, context) -> None:
        if self.configured():
            self.deliver(self.alert_of(context), context)
        elif self.channel == CHANNELS[0].channel and not configured_channels():  # once, not per channel
            _log_undelivered(self.alert_of(context))


class EmailNotifier(AlertNotifier):
    """E-mail through the SMTP provider's SmtpNotifier and the connection aim_alerts_smtp."""

    channel = "email"

    @classmethod
    def configured(cls) -> bool:
        return bool(_recipients())

    def deliver(self, alert: Alert, context) -> None:
        from airflow.providers.smtp.notifications.smtp import SmtpNotifier

        notifier = SmtpNotifier(
            to=_recipients(),
            from_email=os.environ.get("AIM_ALERT_EMAIL_FROM") or DEFAULT_EMAIL_FROM,
            subject=alert.subject(),
            html_content=f"<pre>{html.escape(alert.body())}</pre>",
            smtp_conn_id=os.environ.get("AIM_ALERT_SMTP_CONN_ID") or "aim_alerts_smtp",
        )
        notifier.notify(context)  # notify, not __call__: the alert's text is never rendered as a template


class WebhookNotifier(AlertNotifier):
    """A JSON POST of the alert to the URL of the http connection aim_alerts_webhook."""

    channel = "webhook"

    @staticmethod
    def conn_id() -> str:
        return os.environ.get("AIM_ALERT_WEBHOOK_CONN_ID") or "aim_alerts_webhook"

    @classmethod
    def configured(cls) -> bool:
        from airflow.sdk import Connection
        from airflow.sdk.exceptions import AirflowNotFoundException

        try:
            Connection.get(cls.conn_id())
        except AirflowNotFoundException:
            return False
        return True

    def deliver(self, alert: Alert, context) -> None:
        from airflow.sdk import Connection

        conn = Connection.get(self.conn_id())
        headers = {"Content-Type": "application/json", **conn.extra_dejson.get("headers", {})}
        if conn.login or conn.password:
            token = base64.b64encode(f"{conn.login or ''}:{conn.password or ''}".encode()).decode()
            headers["Authorization"] = f"Basic {token}"
        request = urllib.request.Request(
            webhook_url(conn), data=json.dumps(alert.payload()).encode(), headers=headers, method="POST"
        )
        # urlopen raises HTTPError on 4xx/5xx; anything else but 2xx is a failure too
        with urllib.request.urlopen(request, timeout=WEBHOOK_TIMEOUT_SECONDS) as response:
            if not 200 <= response.status < 300:
                raise RuntimeError(f"webhook answered HTTP {response.status}")


def webhook_url(conn) -> str:
    """The webhook's URL: the host when it is a full URL, else http(s)://host[:port][/schema]."""
    if "://" in (conn.host or ""):
        return conn.host
    schema = conn.schema or ""
    scheme = "https" if "https" in (conn.conn_type, schema) else "http"
    url = f"{scheme}://{conn.host}" + (f":{conn.port}" if conn.port else "")
    return url if schema in ("", "http", "https") else f"{url}/{schema.lstrip('/')}"


CHANNELS: tuple[type[AlertNotifier], ...] = (EmailNotifier, WebhookNotifier)


def configured_channels() -> list[str]:
    """The names of the channels configured now."""
    return [channel.channel for channel in CHANNELS if channel.configured()]


def notifiers_for(alert_of: Callable[[Any], Alert]) -> list[BaseNotifier]:
    """Notifiers for on_failure_callback: each builds the Alert from the context and delivers it.

    One per channel; each checks at run time whether its channel is configured, so a DAG file
    never looks up a connection while it is parsed.
    """
    return [channel(alert_of) for channel in CHANNELS]


def send(alert: Alert) -> list[str]:
    """Deliver `alert` to every configured channel; return the channels that got it. Never raises.

    A broken channel is logged and skipped. With no channel configured, the alert is logged at WARNING.
    """
    attempted, delivered = [], []
    for notifier in notifiers_for(lambda _context: alert):
        try:
            if notifier.configured():
                attempted.append(notifier.channel)
                notifier.deliver(alert, {})
                delivered.append(notifier.channel)
        except Exception:
            log.exception("AIM alert not delivered by %s: %s", notifier.channel, alert.subject())
    if not attempted:
        _log_undelivered(alert)
    return delivered


def failed_run_alert(context, *, source: str) -> Alert:
    """The 'run failed' Alert for a failure context: DAG, run, task, the error, and the batch if known.

    The batch is the return value of the run's `start_run` task (ingest DAGs), or the `batch_id` param.
    """
    ti = context.get("ti")
    dag = context.get("dag")
    error = context.get("exception")
    if isinstance(error, BaseException):
        reason = f"{type(error).__name__}: {error}"
    else:  # a DAG-level callback has no exception, only a reason such as "task_failure"
        reason = str(error or context.get("reason") or "task failed")
    return Alert(
        kind="run failed",
        source=source,
        reason=reason,
        dag_id=dag.dag_id if dag is not None else getattr(ti, "dag_id", None),
        run_id=context.get("run_id") or getattr(ti, "run_id", None),
        batch_id=_batch_id(context),
        task_id=getattr(ti, "task_id", None),
    )


def _batch_id(context) -> str | None:
    try:
        batch = context["ti"].xcom_pull(task_ids="start_run")
    except Exception:  # no such task, or XCom unreachable: the alert goes out without it
        batch = None
    if batch is None:
        batch = (context.get("params") or {}).get("batch_id")
    return str(batch) if batch is not None else None


def _recipients() -> list[str]:
    addresses = os.environ.get("AIM_ALERT_EMAIL_TO", "").split(",")
    return [address.strip() for address in addresses if address.strip()]


def _log_undelivered(alert: Alert) -> None:
    log.warning("AIM alert with no channel configured (set AIM_ALERT_EMAIL_TO or the connection %s): %s\n%s",
                WebhookNotifier.conn_id(), alert.subject(), alert.body())
