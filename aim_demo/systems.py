"""Every demo departmental system, brought up to `now` and running, for `make demo` and the tests.

| source                      | system                      | how it is reached                          |
| --------------------------- | --------------------------- | ------------------------------------------ |
| mpd_crime_incidents         | police RMS (PostgreSQL)     | database `mpd_rms` beside the warehouse     |
| mfd_dispatch_incidents      | fire CAD daily CSV drops    | S3 bucket mfd-cad-landing, prefix cad/      |
| dpw_service_requests        | 311 web API                 | HTTP server on loopback                     |
| dns_code_enforcement_orders | DNS weekly workbooks        | folder <landing>/dns/orders                 |
| mhd_lead_tests              | health lab monthly CSVs     | S3 bucket mhd-lab-landing, prefix lead/     |
| bmo_aim_registry            | budget office workbook      | folder <landing>/budget                     |
| bmo_measure_commentary      | budget office workbook      | folder <landing>/budget                     |

`demo_systems()` yields the `AIRFLOW_CONN_*` variables that point each source's connection at
its demo system. Nothing in here is production code.
"""
from __future__ import annotations

import json
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Iterator

from aim_demo import aim_commentary, aim_registry, code_enforcement, fire_dispatch, lead_testing, mpd_rms
from aim_demo.call_center import CallCenterServer
from aim_demo.drops import upload_folder
from aim_demo.s3_server import start_s3_server

NEW_POLICE_INCIDENTS_PER_RUN = 5


def aws_connection(server) -> str:
    """An Airflow `aws` connection (JSON form) for the demo S3 server."""
    return json.dumps({
        "conn_type": "aws", "login": server.access_key, "password": server.secret_key,
        "extra": {"endpoint_url": server.endpoint_url, "region_name": "us-east-1"},
    })


def folder_connection(path: Path) -> str:
    """An Airflow `fs` connection (JSON form) whose root is `path`."""
    return json.dumps({"conn_type": "fs", "extra": {"path": str(path)}})


def http_connection(base_url: str) -> str:
    """An Airflow `http` connection (JSON form) for a loopback server."""
    host_port = base_url.split("://", 1)[1]
    host, port = host_port.rsplit(":", 1)
    return json.dumps({"conn_type": "http", "host": host, "port": int(port), "schema": "http"})


@contextmanager
def _s3(state_dir: Path, server):
    if server is not None:
        yield server
    else:
        with start_s3_server(state_dir / "s3") as started:
            yield started


@contextmanager
def demo_systems(state_dir: Path, rms_url: str, now: datetime, *, police_new: int = NEW_POLICE_INCIDENTS_PER_RUN,
                 s3_server=None) -> Iterator[dict[str, str]]:
    """Bring every demo system up to `now` (history since a year ago, plus what arrived since the last
    run), keep its servers running inside the block, and yield the connections' environment.

    `s3_server`: an S3 server already running to use for the landing buckets (default: start one
    with its data under `state_dir/s3`).
    """
    state_dir = Path(state_dir)
    landing = state_dir / "landing"
    drops = state_dir / "drops"

    mpd_rms.seed(rms_url)
    mpd_rms.synthesize_recent(rms_url, now)
    if police_new:
        mpd_rms.add_incidents(rms_url, police_new, now)

    code_enforcement.write_drops(landing / "dns" / "orders", now)
    aim_registry.write_drops(landing / "budget", now)
    aim_commentary.write_drops(landing / "budget", now)
    fire_dispatch.write_drops(drops / "mfd-cad", now)
    lead_testing.write_drops(drops / "mhd-lab", now)

    with _s3(state_dir, s3_server) as s3, CallCenterServer(now=now) as call_center:
        client = s3.client()
        upload_folder(drops / "mfd-cad", client, "mfd-cad-landing", "cad")
        upload_folder(drops / "mhd-lab", client, "mhd-lab-landing", "lead")
        yield {
            "AIRFLOW_CONN_MPD_RMS": rms_url,
            "AIRFLOW_CONN_MFD_CAD_LANDING": aws_connection(s3),
            "AIRFLOW_CONN_MHD_LAB_LANDING": aws_connection(s3),
            "AIRFLOW_CONN_DNS_ORDERS_DROP": folder_connection(landing),
            "AIRFLOW_CONN_BMO_REGISTRY_DROP": folder_connection(landing),
            "AIRFLOW_CONN_CALL_CENTER_API": http_connection(call_center.base_url),
        }
