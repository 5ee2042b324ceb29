"""The generic paginated-JSON extractor (aim.extract.http) against the simulated 311 call center.

A real HTTP server on loopback (aim_demo.call_center.CallCenterServer) and real `requests`; the
extractor's `sleep` is a fake that records the waits, so retries cost no time, except where a
real client timeout must happen (timeout_seconds=0.5 against a server that stalls or trickles).
Records that change while a run pages through are changed on the server between two pages
(its `on_page` hook), so those tests are deterministic.
"""
from __future__ import annotations

import collections
import csv
import datetime as dt
import email.utils
import io
import json
import logging
import math
import re
import socket
import time
import traceback

import pytest
import requests

from aim.extract.http import HttpExtractError, HttpExtraction, HttpSource, redact_url
from aim_demo.call_center import (
    API_PATH,
    EXPORT_HEADER,
    REQUEST_TYPES,
    CallCenterServer,
    _local_to_utc,
    _utc_to_local,
    generate_requests,
    write_file_export,
)

NOW = dt.datetime(2026, 3, 15, 14, 30)  # Milwaukee local time (CDT, UTC-5)
RECENT = "2026-03-12T00:00:00Z"  # a few days of changes: one or two pages of 1000
LATER = "2026-03-15T23:00:00Z"  # after every generated updated_at (NOW is 19:30 UTC)
CURSOR = ("updated_at", "request_id")


@pytest.fixture(scope="module")
def generated() -> list[dict]:
    """The generator's output for NOW: what the server serves."""
    return list(generate_requests(NOW))


@pytest.fixture(scope="module")
def _server():
    with CallCenterServer(NOW) as server:
        yield server


@pytest.fixture
def server(_server) -> CallCenterServer:
    """The module's call center (its data never changed), with no queued faults and an empty log."""
    _server.reset()
    yield _server
    _server.reset()


@pytest.fixture
def small_server():
    """A call center of its own (four days of requests), for tests that change its data."""
    with CallCenterServer(NOW, days=4) as server:
        yield server


@pytest.fixture
def waits() -> list[float]:
    """The fake sleep's record of waits."""
    return []


def extraction(server: CallCenterServer, waits: list[float], since: str | None = None, **options) -> HttpExtraction:
    options.setdefault("page_size", 1000)
    if options.get("pagination", "keyset") == "keyset":
        options.setdefault("cursor_fields", CURSOR)
    source = HttpSource(base_url=server.base_url, path=API_PATH, **options)
    return HttpExtraction(source, since, sleep=waits.append)


def read_all(ex: HttpExtraction) -> list[dict]:
    return [record for page in ex.pages() for record in page]


def at_or_after(records: list[dict], since: str) -> set[str]:
    return {r["request_id"] for r in records if r["updated_at"] >= since}


def assert_backoff(waits: list[float], expected: list[float]) -> None:
    """Waits are the exponential values plus at most 10% jitter."""
    assert len(waits) == len(expected), waits
    for wait, base in zip(waits, expected):
        assert base <= wait <= base * 1.1 + 1e-9, (waits, expected)


def assert_keyset_queries(queries: list[dict], pages: list[list[dict]], since: str | None, page_size: int) -> None:
    """The first query asks from `since`; each next one for what comes after the page before's last record."""
    first = {"limit": str(page_size)} | ({"updated_from": since} if since else {})
    assert queries[0] == first
    assert len(queries) in (len(pages), len(pages) + 1)  # one more (empty) page when the last was full
    for query, page_before in zip(queries[1:], pages):
        last = page_before[-1]
        assert query == {"updated_from": last["updated_at"], "after": last["request_id"], "limit": str(page_size)}


# ---------------------------------------------------------------------------------------------
# Pagination


def test_keyset_pagination_reads_every_record_once(server, waits, generated):
    ex = extraction(server, waits, page_size=1000)
    pages = list(ex.pages())
    ids = [r["request_id"] for page in pages for r in page]
    assert len(ids) == len(set(ids)) == len(generated)
    assert set(ids) == {r["request_id"] for r in generated}
    assert all(len(p) == 1000 for p in pages[:-1]) and 0 < len(pages[-1]) <= 1000
    assert ex.pages_fetched == ex.requests_made == len(generated) // 1000 + 1
    assert_keyset_queries([q for _, q in server.requests_log], pages, None, 1000)
    assert waits == []
    # Records arrive as served: every field, in (updated_at, request_id) order.
    by_id = {r["request_id"]: r for r in generated}
    records = [r for page in pages for r in page]
    assert all(r == by_id[r["request_id"]] for r in records)
    assert [(r["updated_at"], r["request_id"]) for r in records] == sorted((r["updated_at"], r["request_id"]) for r in records)


def test_keyset_over_many_small_pages_reads_every_record_once(server, waits, generated):
    ex = extraction(server, waits, RECENT, page_size=7)
    pages = list(ex.pages())
    ids = [r["request_id"] for page in pages for r in page]
    assert len(pages) > 50
    assert len(ids) == len(set(ids)) and set(ids) == at_or_after(generated, RECENT)
    assert_keyset_queries([q for _, q in server.requests_log], pages, RECENT, 7)


def test_next_link_pagination_reads_every_record_once(server, waits, generated):
    ex = extraction(server, waits, pagination="next_link", page_size=1000)
    ids = [r["request_id"] for r in read_all(ex)]
    assert len(ids) == len(set(ids)) == len(generated)
    assert set(ids) == {r["request_id"] for r in generated}
    assert ex.pages_fetched == ex.requests_made == math.ceil(len(generated) / 1000)
    (_, first), *rest = server.requests_log
    assert first == {"limit": "1000"}
    assert rest and all(set(q) == {"page_token"} for _, q in rest)  # the link, exactly as given


def test_keyset_stops_on_an_exactly_full_last_page(server, waits, generated):
    """When the data ends on a page boundary, one more (empty) page says so; nothing is yielded for it."""
    since = sorted(r["updated_at"] for r in generated)[-200]
    count = len(at_or_after(generated, since))  # 200, or more on ties
    ex = extraction(server, waits, since, page_size=count)
    pages = list(ex.pages())
    assert [len(p) for p in pages] == [count]
    assert ex.pages_fetched == 2


@pytest.mark.parametrize("pagination", ["keyset", "next_link"])
def test_since_is_an_inclusive_lower_bound(server, waits, generated, pagination):
    """A record updated exactly at `since` is read: an update in the watermark's second is not lost."""
    since = sorted(r["updated_at"] for r in generated)[len(generated) * 3 // 5]
    ex = extraction(server, waits, since, pagination=pagination, page_size=1000)
    ids = [r["request_id"] for r in read_all(ex)]
    assert len(ids) == len(set(ids))
    assert set(ids) == at_or_after(generated, since)
    assert {r["request_id"] for r in generated if r["updated_at"] == since} <= set(ids)
    assert 0 < len(ids) < len(generated)
    queries = [q for _, q in server.requests_log]
    assert queries[0] == {"updated_from": since, "limit": "1000"}
    if pagination == "next_link":
        assert all(set(q) == {"page_token"} for q in queries[1:])  # the bound is carried by the page token


def test_since_may_be_an_aware_datetime(server, waits, generated):
    since = dt.datetime(2026, 3, 12, tzinfo=dt.timezone.utc)
    ex = extraction(server, waits, since)
    assert {r["request_id"] for r in read_all(ex)} == at_or_after(generated, RECENT)
    assert server.requests_log[0][1]["updated_from"] == "2026-03-12T00:00:00+00:00"


def test_incremental_run_after_time_passes_catches_new_and_closed_requests(generated):
    """A later `now`: since = the highest updated_at seen brings what changed (and what sat at the watermark)."""
    later = NOW + dt.timedelta(days=2)
    watermark = max(r["updated_at"] for r in generated)
    waits: list[float] = []
    with CallCenterServer(later, days=367) as server:
        ex = HttpExtraction(HttpSource(server.base_url, API_PATH, cursor_fields=CURSOR, page_size=500), watermark,
                            sleep=waits.append)
        changed = read_all(ex)
        expected_after = list(generate_requests(later, days=367))
    before = {r["request_id"]: r for r in generated}
    assert {r["request_id"] for r in changed} == at_or_after(expected_after, watermark)
    new = [r for r in changed if r["request_id"] not in before]
    read_again = [r for r in changed if before.get(r["request_id"]) == r]
    closed_since = [r for r in changed if r["request_id"] in before and before[r["request_id"]] != r]
    assert len(new) > 200  # two days of requests
    assert read_again and all(r["updated_at"] == watermark for r in read_again)  # inclusive: the bound itself
    assert closed_since and all(before[r["request_id"]]["status"] == "OPEN" and r["status"] == "CLOSED"
                                for r in closed_since)
    # Applying the increment to the first load gives the later state exactly.
    merged = {**before, **{r["request_id"]: r for r in changed}}
    assert merged == {r["request_id"]: r for r in expected_after}


# ---------------------------------------------------------------------------------------------
# Records that change while the run pages through


def test_records_edited_between_pages_are_not_skipped(small_server, waits):
    """Offset paging lost a record here: one already read moves to the end and the rest shift back.

    Between pages 2 and 3 the server moves three records to the end: one already read, one
    not yet read, and one from below the lower bound; a new one also arrives. Keyset paging
    reads every record at or after the bound as it finally is; only the one edited after it
    was read comes twice, its new version last.
    """
    server = small_server
    start = server.records
    since = start[100]["updated_at"]
    in_range = [r for r in start if r["updated_at"] >= since]
    read_before, not_yet_read, below = in_range[3]["request_id"], in_range[200]["request_id"], start[50]["request_id"]

    def churn(pages_served: int) -> None:
        if pages_served == 2:
            server.update(read_before, status="CLOSED", updated_at=LATER)
            server.update(not_yet_read, status="CLOSED", updated_at=LATER)
            server.update(below, status="CLOSED", updated_at=LATER)
            server.upsert({**start[0], "request_id": "SR-2026-9999999", "updated_at": LATER})

    server.on_page = churn
    ex = extraction(server, waits, since, page_size=25)
    pages = list(ex.pages())
    read = [r for page in pages for r in page]
    final = server.records
    ids = [r["request_id"] for r in read]
    assert set(ids) == at_or_after(final, since)
    assert collections.Counter(ids) - collections.Counter(set(ids)) == collections.Counter([read_before])
    assert {r["request_id"]: r for r in read} == {r["request_id"]: r for r in final if r["updated_at"] >= since}
    assert [r["status"] for r in read if r["request_id"] == read_before][-1] == "CLOSED"
    assert_keyset_queries([q for _, q in server.requests_log], pages, since, 25)


def test_same_second_updates_on_both_sides_of_a_page_boundary_are_read(small_server, waits):
    """Three records updated in one second, a page boundary between them: all three are read."""
    server = small_server
    same_second = "2026-03-15T23:00:07Z"
    ids = [r["request_id"] for r in server.records[10:13]]
    server.update(server.records[20]["request_id"], updated_at="2026-03-15T23:00:06Z")
    for request_id in ids:
        server.update(request_id, updated_at=same_second)
    ex = extraction(server, waits, "2026-03-15T23:00:06Z", page_size=2)
    pages = [[r["request_id"] for r in page] for page in ex.pages()]
    assert [len(p) for p in pages] == [2, 2]
    assert pages[0][1:] + pages[1] == sorted(ids)
    queries = [q for _, q in server.requests_log]
    assert queries[1] == {"updated_from": same_second, "after": min(ids), "limit": "2"}
    assert len(queries) == 3 and queries[2]["after"] == max(ids)  # the empty page after a full one


def test_a_page_whose_last_record_has_no_cursor_value_fails(server, waits):
    server.inject(("json", {"results": [{"updated_at": RECENT, "id": "SR-1"}]}))
    ex = extraction(server, waits, RECENT, page_size=1)
    with pytest.raises(HttpExtractError, match=r"page 1: the page's last record has no such field at 'request_id'"):
        read_all(ex)


def test_a_cursor_that_does_not_advance_fails(server, waits):
    page = {"results": [{"updated_at": RECENT, "request_id": "SR-1"}]}
    server.inject(("json", page), ("json", page))
    ex = extraction(server, waits, RECENT, page_size=1)
    with pytest.raises(HttpExtractError, match=r"page 2: the cursor did not advance.*would loop forever"):
        read_all(ex)
    assert ex.requests_made == 2


def test_http_source_checks_its_pagination():
    with pytest.raises(ValueError, match="keyset pagination needs cursor_fields"):
        HttpSource("http://127.0.0.1", API_PATH)
    with pytest.raises(ValueError, match="pagination must be 'keyset' or 'next_link', not 'offset'"):
        HttpSource("http://127.0.0.1", API_PATH, pagination="offset")
    assert HttpSource("http://127.0.0.1", API_PATH, cursor_fields=["updated_at", "request_id"]).cursor_fields == CURSOR
    assert HttpSource("http://127.0.0.1", API_PATH, pagination="next_link").cursor_fields is None
    with pytest.raises(ValueError, match="max_pages must be at least 1"):
        HttpSource("http://127.0.0.1", API_PATH, cursor_fields=CURSOR, max_pages=0)


# ---------------------------------------------------------------------------------------------
# Retries


def test_500_then_success_is_retried(server, waits, generated):
    server.inject(("status", 500))
    ex = extraction(server, waits, RECENT)
    ids = [r["request_id"] for r in read_all(ex)]
    assert sorted(ids) == sorted(at_or_after(generated, RECENT))
    assert ex.requests_made == ex.pages_fetched + 1
    assert_backoff(waits, [1.0])


def test_backoff_is_exponential_and_capped(server, waits, generated):
    server.inject(("status", 500), ("status", 502), ("status", 504), ("status", 500))
    ex = extraction(server, waits, RECENT, backoff_seconds=0.5, max_backoff_seconds=3.0)
    assert {r["request_id"] for r in read_all(ex)} == at_or_after(generated, RECENT)
    assert_backoff(waits, [0.5, 1.0, 2.0, 3.0])


def test_503_beyond_max_retries_fails_naming_page_and_status(server, waits):
    server.inject(("ok",), *[("status", 503)] * 6)
    ex = extraction(server, waits, RECENT, page_size=200, max_retries=5)
    with pytest.raises(HttpExtractError) as err:
        read_all(ex)
    message = str(err.value)
    assert "page 2" in message and "HTTP 503" in message and "6 attempts" in message
    assert "updated_from=" in message and "after=SR-" in message and server.base_url in message
    assert ex.requests_made == 1 + 6 and ex.pages_fetched == 1
    assert_backoff(waits, [1.0, 2.0, 4.0, 8.0, 16.0])
    assert server.pending_faults() == 0


def test_read_timeout_then_success_is_retried(server, waits, generated):
    server.inject(("timeout", 2))
    ex = extraction(server, waits, RECENT, timeout_seconds=0.5)
    started = time.monotonic()
    ids = [r["request_id"] for r in read_all(ex)]
    elapsed = time.monotonic() - started
    assert sorted(ids) == sorted(at_or_after(generated, RECENT))
    assert ex.requests_made == ex.pages_fetched + 1
    assert_backoff(waits, [1.0])
    assert 0.5 <= elapsed < 1.9  # the client gave up after 0.5 s; it did not wait for the server's 2 s


def test_read_timeouts_beyond_max_retries_fail(server, waits):
    server.inject(("timeout", 2), ("timeout", 2))
    ex = extraction(server, waits, RECENT, timeout_seconds=0.5, max_retries=1)
    with pytest.raises(HttpExtractError, match=r"page 1: read timed out .*gave up after 2 attempts"):
        read_all(ex)


def test_dropped_connection_then_success_is_retried(server, waits, generated):
    server.inject(("disconnect",))
    ex = extraction(server, waits, RECENT)
    assert {r["request_id"] for r in read_all(ex)} == at_or_after(generated, RECENT)
    assert ex.requests_made == ex.pages_fetched + 1
    assert_backoff(waits, [1.0])


def test_body_cut_off_by_a_dropped_connection_is_retried(server, waits, generated):
    """Content-Length promises more than arrives before the socket closes: a connection error."""
    server.inject(("partial",))
    ex = extraction(server, waits, RECENT)
    assert {r["request_id"] for r in read_all(ex)} == at_or_after(generated, RECENT)
    assert ex.requests_made == ex.pages_fetched + 1


def test_connection_refused_is_retried_then_fails(waits):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again when the block ends: nothing listens there
    ex = HttpExtraction(HttpSource(f"http://127.0.0.1:{port}", API_PATH, cursor_fields=CURSOR, max_retries=2), None,
                        sleep=waits.append)
    with pytest.raises(HttpExtractError, match=r"page 1: connection error .*gave up after 3 attempts"):
        read_all(ex)
    assert ex.requests_made == 3 and len(waits) == 2


def test_429_retry_after_seconds_is_honoured(server, waits, generated):
    server.inject(("retry_after", 7))
    ex = extraction(server, waits, RECENT)
    assert {r["request_id"] for r in read_all(ex)} == at_or_after(generated, RECENT)
    assert waits == [7.0]
    assert ex.requests_made == ex.pages_fetched + 1


def test_429_retry_after_http_date_is_honoured(server, waits):
    server.inject(("retry_after", email.utils.formatdate(time.time() + 30, usegmt=True)))
    read_all(extraction(server, waits, RECENT))
    assert len(waits) == 1 and 28 <= waits[0] <= 30


def test_429_without_retry_after_uses_the_backoff(server, waits):
    server.inject(("status", 429))
    read_all(extraction(server, waits, RECENT))
    assert_backoff(waits, [1.0])


def test_retry_after_above_the_maximum_fails_instead_of_sleeping(server, waits):
    server.inject(("retry_after", 600))
    ex = extraction(server, waits, RECENT, max_retry_after_seconds=300)
    with pytest.raises(HttpExtractError, match=r"page 1: HTTP 429 .*Retry-After 600 s, above max_retry_after_seconds \(300 s\)"):
        read_all(ex)
    assert waits == [] and ex.requests_made == 1


# ---------------------------------------------------------------------------------------------
# Pages that are not the expected JSON: no retry


@pytest.mark.parametrize("status", [502, 200])
def test_html_page_fails_at_once(server, waits, status):
    server.inject(("html", status))
    ex = extraction(server, waits, RECENT)
    with pytest.raises(HttpExtractError, match=rf"page 1: got an HTML page instead of JSON \(HTTP {status}"):
        read_all(ex)
    assert ex.requests_made == 1 and waits == [] and ex.pages_fetched == 0


def test_content_type_not_json_fails(server, waits):
    server.inject(("body", 200, "text/plain", "results: none today"))
    ex = extraction(server, waits, RECENT)
    with pytest.raises(HttpExtractError, match=r"expected JSON, got Content-Type 'text/plain'.*results: none today"):
        read_all(ex)
    assert ex.requests_made == 1


def test_truncated_page_fails_as_invalid_json(server, waits):
    server.inject(("ok",), ("truncated",))
    ex = extraction(server, waits, RECENT, page_size=200)
    with pytest.raises(HttpExtractError, match=r"page 2: invalid JSON in a \d+-byte body .*truncated\?"):
        read_all(ex)
    assert ex.requests_made == 2 and waits == []


def test_404_fails_at_once_with_status_and_body(server, waits):
    ex = HttpExtraction(HttpSource(server.base_url, "/api/v1/no-such-thing", cursor_fields=CURSOR), None,
                        sleep=waits.append)
    with pytest.raises(HttpExtractError, match=r"/api/v1/no-such-thing.* page 1: HTTP 404 Not Found: .*no such endpoint"):
        read_all(ex)
    assert ex.requests_made == 1 and waits == []


def test_400_body_is_cut_to_200_characters(server, waits):
    server.inject(("json", {"error": "x" * 1000}, 400))
    with pytest.raises(HttpExtractError) as err:
        read_all(extraction(server, waits, RECENT))
    assert "HTTP 400" in str(err.value) and "x" * 180 in str(err.value) and "x" * 201 not in str(err.value)


def test_missing_records_field_fails(server, waits):
    ex = extraction(server, waits, RECENT, records_field="data.items")
    with pytest.raises(HttpExtractError, match=r"no list at 'data\.items' \(page has keys 'results', 'total', 'next'\)"):
        read_all(ex)
    assert ex.requests_made == 1


def test_records_field_that_is_not_a_list_fails(server, waits):
    with pytest.raises(HttpExtractError, match=r"no list at 'total' \(found a int\)"):
        read_all(extraction(server, waits, RECENT, records_field="total"))


def test_records_that_are_not_objects_fail(server, waits):
    server.inject(("json", {"results": [{"request_id": "SR-1"}, "SR-2"], "next": None}))
    with pytest.raises(HttpExtractError, match=r"record 1 at 'results' is a str, not a JSON object"):
        read_all(extraction(server, waits, RECENT))


def test_nested_records_field_and_next_link(server, waits):
    server.inject(
        ("json", {"data": {"items": [{"id": 1}, {"id": 2}]}, "links": {"next": f"{API_PATH}?cursor=abc"}}),
        ("json", {"data": {"items": [{"id": 3}]}, "links": {"next": None}}),
    )
    ex = extraction(server, waits, None, pagination="next_link", records_field="data.items",
                    next_link_field="links.next", params={"format": "json"})
    assert [p for p in ex.pages()] == [[{"id": 1}, {"id": 2}], [{"id": 3}]]
    # The link is followed as given (no limit added); fixed params it lacks are added.
    assert server.requests_log[1] == (API_PATH, {"cursor": "abc", "format": "json"})


def test_next_link_back_to_a_page_already_read_is_refused(server, waits):
    server.inject(
        ("json", {"results": [{"id": 1}], "next": f"{API_PATH}?cursor=2"}),
        ("json", {"results": [{"id": 2}], "next": f"{API_PATH}?cursor=2"}),
    )
    ex = extraction(server, waits, None, pagination="next_link")
    with pytest.raises(HttpExtractError, match=r"page 2: next link points back at a page already read"):
        read_all(ex)
    assert ex.requests_made == 2


def test_next_link_to_another_host_is_refused(server, waits):
    server.inject(("json", {"results": [{"id": 1}], "next": "http://192.0.2.1/steal?page=2"}))
    ex = extraction(server, waits, None, pagination="next_link", headers={"Authorization": "Bearer abcdef123"})
    with pytest.raises(HttpExtractError, match="leaves"):
        read_all(ex)
    assert ex.requests_made == 1


# ---------------------------------------------------------------------------------------------
# Secrets never appear in messages or logs

SECRET_PARAM = "SECRET-API-KEY-123"
SECRET_HEADER = "TOPSECRET-TOKEN-456"


def assert_no_secrets(err: BaseException, caplog) -> None:
    text = "".join(traceback.format_exception(err)) + caplog.text
    for secret in (SECRET_PARAM, SECRET_HEADER, "pw-789"):
        assert secret not in text


@pytest.mark.parametrize("fault", [("status", 503), ("disconnect",), ("timeout", 2)])
def test_sensitive_params_are_masked_in_errors_and_logs(server, waits, caplog, fault):
    caplog.set_level(logging.DEBUG)
    server.inject(*[fault] * 2)
    ex = extraction(server, waits, RECENT, max_retries=1, timeout_seconds=0.5,
                    params={"api_key": SECRET_PARAM, "format": "json"},
                    headers={"X-App-Token": SECRET_HEADER, "Authorization": f"Bearer {SECRET_HEADER}"})
    with pytest.raises(HttpExtractError) as err:
        read_all(ex)
    assert "api_key=***" in str(err.value) and "format=json" in str(err.value)
    assert "retry 1 of 1" in caplog.text
    assert_no_secrets(err.value, caplog)


def test_header_token_works_and_a_wrong_one_fails_without_leaking(waits, caplog):
    with CallCenterServer(NOW, days=2, api_token=SECRET_HEADER) as server:
        good = extraction(server, waits, None, headers={"X-App-Token": SECRET_HEADER})
        assert len(read_all(good)) == len(list(generate_requests(NOW, days=2)))
        bad = HttpExtraction(HttpSource(f"http://user:pw-789@127.0.0.1:{server.base_url.rsplit(':', 1)[1]}", API_PATH,
                                        cursor_fields=CURSOR, headers={"X-App-Token": SECRET_HEADER[:-1]},
                                        params={"token": SECRET_PARAM}),
                             None, sleep=waits.append)
        with pytest.raises(HttpExtractError, match=r"HTTP 401 Unauthorized") as err:
            read_all(bad)
    assert "user" not in str(err.value) and "token=***" in str(err.value)
    assert SECRET_HEADER[:-1] not in str(err.value)
    assert_no_secrets(err.value, caplog)


def test_redact_url():
    assert redact_url("https://u:p@h.example/x?api_key=1&a=2&Password=3") == "https://h.example/x?api_key=***&a=2&Password=***"


# ---------------------------------------------------------------------------------------------
# Limits: pages a run, bytes a page, seconds a response


@pytest.mark.parametrize("pagination", ["keyset", "next_link"])
def test_a_run_needing_more_than_max_pages_fails(server, waits, pagination):
    ex = extraction(server, waits, RECENT, pagination=pagination, page_size=10, max_pages=3)
    pages = []
    with pytest.raises(HttpExtractError, match=r"page 4: the run needs more than max_pages \(3\) pages; "
                                               r"raise max_pages if the source really has that many"):
        for page in ex.pages():
            pages.append(page)
    assert [len(p) for p in pages] == [10, 10, 10]
    assert ex.requests_made == 3  # the fourth page is not asked for


def test_a_body_announced_above_max_page_bytes_fails_at_once(server, waits):
    big = json.dumps({"results": [{"request_id": "SR-1", "notes": "x" * 5000}]})
    server.inject(("body", 200, "application/json", big))
    ex = extraction(server, waits, RECENT, max_page_bytes=4096)
    with pytest.raises(HttpExtractError, match=rf"page 1: the response body is {len(big)} bytes \(Content-Length\), "
                                               r"above max_page_bytes \(4096\)"):
        read_all(ex)
    assert ex.requests_made == 1 and waits == []  # not retried


def test_a_streamed_body_above_max_page_bytes_stops_being_read(server, waits):
    """Without a Content-Length, reading stops at the first chunk past the limit, not at the end of 20 MB."""
    server.inject(("chunked", 200, "application/json", '{"results": [' + '{"n": 1},' * 2_000_000 + '{"n": 1}]}'))
    ex = extraction(server, waits, RECENT, max_page_bytes=4096)
    with pytest.raises(HttpExtractError) as err:
        read_all(ex)
    match = re.search(r"page 1: the response body is above max_page_bytes \(4096\); stopped reading at (\d+) bytes",
                      str(err.value))
    assert match, str(err.value)
    assert 4096 < int(match.group(1)) <= 4096 + 64 * 1024
    assert ex.requests_made == 1 and waits == []


def test_a_real_page_above_max_page_bytes_fails(server, waits):
    with pytest.raises(HttpExtractError, match=r"above max_page_bytes \(10000\)"):
        read_all(extraction(server, waits, RECENT, max_page_bytes=10_000))


def test_a_chunked_body_within_the_limit_is_read(server, waits):
    server.inject(("chunked", 200, "application/json", json.dumps({"results": [{"id": 1}], "next": None})))
    assert list(extraction(server, waits, None, pagination="next_link").pages()) == [[{"id": 1}]]


def test_a_trickling_response_times_out_as_a_whole(server, waits):
    """One byte every 50 ms keeps each read alive; the whole response still ends at timeout_seconds."""
    server.inject(("trickle", 0.05))
    ex = extraction(server, waits, RECENT, page_size=20, timeout_seconds=0.5, max_retries=0)
    started = time.monotonic()
    with pytest.raises(HttpExtractError, match=r"page 1: timed out: the response was not complete within "
                                               r"timeout_seconds \(0\.5 s\); gave up after 1 attempts"):
        read_all(ex)
    assert 0.5 <= time.monotonic() - started < 1.5


def test_a_trickling_response_is_retried(server, waits, generated):
    server.inject(("trickle", 0.05))
    ex = extraction(server, waits, RECENT, timeout_seconds=0.5)
    assert {r["request_id"] for r in read_all(ex)} == at_or_after(generated, RECENT)
    assert ex.requests_made == ex.pages_fetched + 1
    assert_backoff(waits, [1.0])


# ---------------------------------------------------------------------------------------------
# Redirects


@pytest.mark.parametrize("credentials", ["header", "param", "user_info"])
def test_a_redirect_is_not_followed_with_credentials(server, waits, caplog, credentials):
    caplog.set_level(logging.DEBUG)
    server.inject(("redirect", 302, f"{API_PATH}?{{query}}"))
    base_url = server.base_url
    options: dict = {}
    if credentials == "header":
        options["headers"] = {"Authorization": f"Bearer {SECRET_HEADER}"}
    elif credentials == "param":
        options["params"] = {"api_key": SECRET_PARAM}
    else:
        base_url = base_url.replace("http://", "http://user:pw-789@")
    source = HttpSource(base_url, API_PATH, cursor_fields=CURSOR, page_size=1000, **options)
    ex = HttpExtraction(source, RECENT, sleep=waits.append)
    with pytest.raises(HttpExtractError, match=rf"page 1: HTTP 302: redirect to {re.escape(server.base_url)}/api/v1/"
                                               r"requests\?\S+ not followed: the request carries credentials") as err:
        read_all(ex)
    assert ex.requests_made == 1 and len(server.requests_log) == 1 and waits == []
    assert_no_secrets(err.value, caplog)


def test_a_same_host_redirect_is_followed_without_credentials(server, waits, generated):
    server.inject(("redirect", 307, f"{API_PATH}?{{query}}"))
    ex = extraction(server, waits, RECENT, page_size=200)
    ids = [r["request_id"] for r in read_all(ex)]
    assert len(ids) == len(set(ids)) and set(ids) == at_or_after(generated, RECENT)
    assert ex.requests_made == ex.pages_fetched + 1
    assert server.requests_log[0] == server.requests_log[1] == (API_PATH, {"updated_from": RECENT, "limit": "200"})


def test_a_redirect_to_another_host_is_refused(server, waits):
    """localhost is this very server, but not the host configured: the redirect is not followed."""
    other = server.base_url.replace("127.0.0.1", "localhost")
    server.inject(("redirect", 302, f"{other}{API_PATH}?{{query}}"))
    ex = extraction(server, waits, RECENT)
    with pytest.raises(HttpExtractError, match=rf"HTTP 302: redirect to {re.escape(other)}\S+ not followed: "
                                               rf"it leaves {re.escape(server.base_url)}"):
        read_all(ex)
    assert ex.requests_made == 1 and len(server.requests_log) == 1


def test_endless_redirects_fail(server, waits):
    server.inject(*[("redirect", 302, f"{API_PATH}?{{query}}")] * 6)
    ex = extraction(server, waits, RECENT)
    with pytest.raises(HttpExtractError, match=r"page 1: more than 5 redirects"):
        read_all(ex)
    assert ex.requests_made == 6 and waits == []


# ---------------------------------------------------------------------------------------------
# The server itself


def test_server_clamps_limit_and_rejects_bad_parameters(server):
    with requests.Session() as s:
        page = s.get(f"{server.base_url}{API_PATH}", params={"limit": 5000}, timeout=5).json()
        assert len(page["results"]) == 1000 and "page_token=" in page["next"]
        for params in ({"limit": "x"}, {"limit": "-1"}, {"page_token": "garbage"}, {"updated_from": "yesterday"},
                       {"after": "SR-2026-0000001"}):
            response = s.get(f"{server.base_url}{API_PATH}", params=params, timeout=5)
            assert response.status_code == 400 and "error" in response.json()


def test_server_keyset_bound_is_inclusive_and_after_is_strict(server, generated):
    ordered = sorted(generated, key=lambda r: (r["updated_at"], r["request_id"]))
    pivot = ordered[len(ordered) // 2]
    with requests.Session() as s:
        def ids(**params) -> list[str]:
            answer = s.get(f"{server.base_url}{API_PATH}", params={"limit": 5, **params}, timeout=5).json()
            return [r["request_id"] for r in answer["results"]]

        at = ordered.index(pivot)
        first_at_second = next(i for i, r in enumerate(ordered) if r["updated_at"] == pivot["updated_at"])
        expected_from = [r["request_id"] for r in ordered[first_at_second:first_at_second + 5]]
        assert ids(updated_from=pivot["updated_at"]) == expected_from
        # A fraction of a second, or Milwaukee local time, is the same bound.
        utc = dt.datetime.fromisoformat(pivot["updated_at"].replace("Z", ""))
        assert ids(updated_from=(utc + dt.timedelta(microseconds=500_000)).isoformat() + "+00:00") == expected_from
        assert ids(updated_from=_utc_to_local(utc).isoformat()) == expected_from
        after = ids(updated_from=pivot["updated_at"], after=pivot["request_id"])
        assert after == [r["request_id"] for r in ordered[at + 1:at + 6]]


def test_server_live_data_stays_in_api_order(small_server):
    server = small_server
    before = server.records
    moved = server.update(before[0]["request_id"], status="CLOSED")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", moved["updated_at"])  # the current UTC time
    added = server.upsert({**before[1], "request_id": "SR-2026-9999999", "updated_at": None})
    replaced = server.upsert({**before[2], "address": "200 E WELLS ST"})  # same updated_at, new address
    after = server.records
    assert len(after) == len(before) + 1
    assert [(r["updated_at"], r["request_id"]) for r in after] == sorted((r["updated_at"], r["request_id"]) for r in after)
    by_id = {r["request_id"]: r for r in after}
    assert by_id[moved["request_id"]] == moved and moved["status"] == "CLOSED"
    assert by_id["SR-2026-9999999"] == added and by_id[replaced["request_id"]]["address"] == "200 E WELLS ST"
    with requests.Session() as s:  # what is served is what `records` says
        served = s.get(f"{server.base_url}{API_PATH}", params={"limit": 1000}, timeout=5).json()["results"]
    assert served == after[:1000]
    with pytest.raises(KeyError):
        server.update("SR-1900-0000001", status="CLOSED")


def test_server_calls_on_page_between_pages(small_server):
    server = small_server
    calls = []
    server.on_page = calls.append
    with requests.Session() as s:
        for _ in range(3):
            s.get(f"{server.base_url}{API_PATH}", params={"limit": 1}, timeout=5)
        s.get(f"{server.base_url}{API_PATH}", params={"after": "x"}, timeout=5)  # a 400 is no page
    assert calls == [1, 2, 3]
    server.reset()
    assert server.on_page is None


# ---------------------------------------------------------------------------------------------
# The generator


def test_generator_is_deterministic(generated):
    assert list(generate_requests(NOW)) == generated
    aware = NOW.replace(tzinfo=dt.timezone(dt.timedelta(hours=-5))).astimezone(dt.timezone.utc)
    assert list(generate_requests(aware)) == generated  # the same instant, given in UTC
    assert list(generate_requests(NOW, seed=312)) != generated


def test_later_now_keeps_earlier_requests_and_adds_new_ones(generated):
    later = list(generate_requests(NOW + dt.timedelta(days=3), days=368))  # same first day
    after = {r["request_id"]: r for r in later}
    stable = ("request_type", "created_at", "address", "aldermanic_district")
    for r in generated:
        assert all(after[r["request_id"]][f] == r[f] for f in stable)
        assert after[r["request_id"]]["updated_at"] >= r["updated_at"]
        if r["status"] == "CLOSED":
            assert after[r["request_id"]] == r
    before = {r["request_id"] for r in generated}
    new = [r for r in later if r["request_id"] not in before]
    assert 3 * 150 < len(new) < 3 * 250
    assert all(r["created_at"] > NOW.isoformat() for r in new)
    closed_since = [r for r in generated if r["status"] == "OPEN" and after[r["request_id"]]["status"] == "CLOSED"]
    assert len(closed_since) > 100
    assert all(after[r["request_id"]]["updated_at"] > r["updated_at"] for r in closed_since)
    # The 365-day window moved on: the same `days` drops the oldest days and keeps the rest.
    window = {r["request_id"] for r in generate_requests(NOW + dt.timedelta(days=3))}
    assert window < set(after) and min(window) > min(after)


def test_generated_requests_look_like_the_call_centers(generated):
    per_day = len(generated) / 365
    assert 150 <= per_day <= 250
    assert len({r["request_id"] for r in generated}) == len(generated)
    assert set(collections.Counter(r["request_type"] for r in generated)) == set(REQUEST_TYPES)
    for r in generated:
        assert re.fullmatch(r"SR-20\d\d-\d{7}", r["request_id"])
        assert re.fullmatch(r"\d+ [NSEW] [0-9A-Z ]+", r["address"])
        assert isinstance(r["aldermanic_district"], int) and 1 <= r["aldermanic_district"] <= 15
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", r["updated_at"])
        created_utc = _local_to_utc(dt.datetime.fromisoformat(r["created_at"])).isoformat() + "Z"
        assert r["updated_at"] >= created_utc
        if r["status"] == "OPEN":
            assert r["closed_at"] is None and r["closure_reason"] is None and r["updated_at"] == created_utc
        else:
            assert r["status"] == "CLOSED" and r["closure_reason"] and r["closed_at"] >= r["created_at"]
            closed_utc = _local_to_utc(dt.datetime.fromisoformat(r["closed_at"])).isoformat() + "Z"
            assert r["updated_at"] == closed_utc or r["closed_at"][11:13] == "01"  # fall-back hour repeats
        assert r["created_at"] <= NOW.isoformat()
    assert [r["created_at"] for r in generated] == sorted(r["created_at"] for r in generated)
    # Potholes peak in spring.
    potholes = collections.Counter(r["created_at"][5:7] for r in generated if r["request_type"] == "POTHOLE")
    assert potholes["04"] > 2 * potholes["08"]
    # Mostly closed; the open ones are mostly recent.
    open_requests = [r for r in generated if r["status"] == "OPEN"]
    assert 0 < len(open_requests) < 0.05 * len(generated)
    recent = [r for r in open_requests if r["created_at"] >= (NOW - dt.timedelta(days=14)).isoformat()]
    assert len(recent) > len(open_requests) / 2


def test_close_times_by_type(generated):
    def median_days(request_type: str) -> float:
        spans = sorted(
            (dt.datetime.fromisoformat(r["closed_at"]) - dt.datetime.fromisoformat(r["created_at"])).total_seconds() / 86400
            for r in generated if r["request_type"] == request_type and r["closure_reason"] not in (None, "DUPLICATE")
        )
        return spans[len(spans) // 2]

    assert 1 <= median_days("POTHOLE") <= 5
    assert 2 <= median_days("STREET LIGHT OUT") <= 10
    assert 1 <= median_days("MISSED GARBAGE PICKUP") <= 2
    assert 5 <= median_days("ABANDONED VEHICLE") <= 30


def test_generation_is_fast():
    started = time.perf_counter()
    count = sum(1 for _ in generate_requests(NOW + dt.timedelta(days=40)))
    elapsed = time.perf_counter() - started
    assert count > 50_000 and elapsed < 6  # about 0.6 s on a laptop


def test_milwaukee_time_matches_tzdata():
    import zoneinfo

    chicago = zoneinfo.ZoneInfo("America/Chicago")  # Python's tzdata package is in the pinned set
    utc = dt.datetime(2025, 1, 1)
    while utc < dt.datetime(2027, 1, 1):
        expected_local = utc.replace(tzinfo=dt.timezone.utc).astimezone(chicago).replace(tzinfo=None)
        assert _utc_to_local(utc) == expected_local
        if expected_local.fold == 0 and not (expected_local.month == 11 and expected_local.hour == 1):
            assert _local_to_utc(expected_local) == utc
        utc += dt.timedelta(minutes=30)


# ---------------------------------------------------------------------------------------------
# The file export


def test_file_export_has_no_request_id(tmp_path):
    path = tmp_path / "311.csv"
    rows = write_file_export(path, NOW, days=20)
    expected = list(generate_requests(NOW, days=20))
    assert rows == len(expected) > 20 * 100
    raw = path.read_bytes()
    text = raw.decode("utf-8")
    lines = text.split("\r\n")
    assert lines[-1] == "" and len(lines) == rows + 2  # CRLF after every row, header included
    assert "\n" not in text.replace("\r\n", "")
    assert lines[0] == '"Request Type","Created","Closed","Status","Closure Reason","Address","District"'
    assert all(re.fullmatch(r'"[^"]*"(,"[^"]*"){6}', line) for line in lines[:-1])  # every value quoted
    assert "SR-" not in text and "request_id" not in text.lower()
    parsed = list(csv.reader(io.StringIO(text, newline="")))
    assert tuple(parsed[0]) == EXPORT_HEADER
    assert parsed[1:] == [
        [r["request_type"], r["created_at"], r["closed_at"] or "", r["status"], r["closure_reason"] or "",
         r["address"], str(r["aldermanic_district"])]
        for r in expected
    ]
    assert any(row[3] == "OPEN" and row[2] == "" for row in parsed[1:])
