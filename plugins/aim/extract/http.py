"""Extraction from paginated JSON web APIs, one page at a time, within limits.

`HttpExtraction(source, since).pages()` yields the records (dicts) of each page in turn, so
memory holds one page whatever the data set's size. `since` is the INCLUSIVE lower bound on the
records' watermark (the API's `since_param`, e.g. `updated_from`): a record updated in the same
second as the last run's watermark is read again rather than missed. Two pagination styles:

- keyset (default): the first request asks for `since_param=<since>&limit=N`; each next one for
  the records after the last one read, by its watermark and key
  (`since_param=<its watermark>&after_param=<its key>&limit=N`, `cursor_fields` names the two
  fields), until a page comes back short. A record edited while the run pages through moves
  behind the cursor and is read again at the end; no unread record shifts past the cursor
  (offset paging skipped one that way, which is why it is gone).
- next_link: the API's own cursor. The first request carries `limit` (and `since_param`), then
  the page's next link (at `next_link_field`) is followed as given until it is null, absent or
  empty.

Limits, for broken or hostile APIs: at most `max_pages` pages a run; at most `max_page_bytes` a
response body (refused early by Content-Length, otherwise reading stops as soon as it is passed);
`timeout_seconds` for a whole response, connection to last byte, so an API trickling bytes fails
like a read timeout. A redirect is never followed for a request that carries credentials (a
sensitive header, query parameter, or user:password in the URL); without credentials only to the
same scheme, host and port.

Transient failures (HTTP 5xx, 429, timeouts, dropped connections) are retried per page with
exponential backoff; `Retry-After` is honoured. Everything else (other 4xx, a redirect not
followed, an HTML page, a body too large or not the expected JSON, a cursor that does not
advance) fails at once with an `HttpExtractError` naming the URL, the page and the reason.
Headers, credentials in the URL and query parameters whose name contains token/key/secret/
password never appear in messages or logs.
"""
from __future__ import annotations

import email.utils
import json
import logging
import random
import re
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Literal, Mapping, NamedTuple
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

import requests
import urllib3.exceptions

log = logging.getLogger(__name__)

_SENSITIVE_NAME = re.compile(r"token|key|secret|password|passwd|auth|signature|session", re.IGNORECASE)
_SENSITIVE_HEADER = re.compile(r"authorization|cookie|token|key|secret|password|auth|session", re.IGNORECASE)
# name=value pairs in free text (exception messages quoting a URL), when the name is sensitive.
_SENSITIVE_PAIR = re.compile(
    r"(?P<name>[A-Za-z0-9_.\-\[\]]*(?:token|key|secret|password|passwd|auth|signature|session)"
    r"[A-Za-z0-9_.\-\[\]]*)=(?P<value>[^&\s'\"<>)]*)",
    re.IGNORECASE,
)
_USERINFO = re.compile(r"(?P<scheme>[a-z][a-z0-9+.\-]*://)[^/@\s]*@", re.IGNORECASE)
MASK = "***"
_BODY_SNIPPET = 200
_CHUNK_BYTES = 64 * 1024
_ERROR_BODY_BYTES = 64 * 1024  # of an error page: enough for its title and a snippet
_MAX_REDIRECTS = 5
_DEFAULT_PORTS = {"http": 80, "https": 443}


class _RedactQueryFilter(logging.Filter):
    """Masks sensitive name=value pairs in urllib3's debug lines (they quote the request URL)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = _SENSITIVE_PAIR.sub(lambda m: f"{m.group('name')}={MASK}", message)
        if redacted != message:
            record.msg, record.args = redacted, ()
        return True


def _install_log_redaction() -> None:
    """Once per process: urllib3 logs each request line, query string included, at DEBUG."""
    logger = logging.getLogger("urllib3.connectionpool")
    if not any(isinstance(f, _RedactQueryFilter) for f in logger.filters):
        logger.addFilter(_RedactQueryFilter())


_install_log_redaction()


class HttpExtractError(RuntimeError):
    """A page could not be fetched or is not what the source promised (message is safe to log)."""


@dataclass(frozen=True)
class HttpSource:
    """Where a paginated JSON API is, how to page through it, and the limits a run keeps to.

    `cursor_fields` (keyset only, required there): the names (dotted paths allowed) of a
    record's watermark field and key field, e.g. ("updated_at", "request_id"). `since_param` is
    the API's inclusive lower bound on the watermark; `after_param` the key of the last record
    read. `page_size` must not exceed the most the API returns in one page: a page shorter than
    `page_size` ends a keyset run.
    """

    base_url: str
    path: str
    pagination: Literal["keyset", "next_link"] = "keyset"
    cursor_fields: tuple[str, str] | None = None
    page_size: int = 500
    limit_param: str = "limit"
    since_param: str | None = "updated_from"
    after_param: str = "after"
    records_field: str = "results"
    next_link_field: str = "next"
    params: Mapping[str, str] = field(default_factory=dict, repr=False)   # may carry an API key
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)  # may carry a token
    timeout_seconds: float = 30.0
    max_retries: int = 5
    max_pages: int = 10_000
    max_page_bytes: int = 50 * 1024 * 1024
    backoff_seconds: float = 1.0
    max_backoff_seconds: float = 60.0
    max_retry_after_seconds: float = 300.0

    def __post_init__(self) -> None:
        if self.pagination not in ("keyset", "next_link"):
            raise ValueError(f"pagination must be 'keyset' or 'next_link', not {self.pagination!r}")
        if self.pagination == "keyset":
            self._check_keyset()
        for name in ("page_size", "max_pages", "max_page_bytes"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, not {getattr(self, name)}")
        if self.timeout_seconds <= 0:
            raise ValueError(f"timeout_seconds must be positive, not {self.timeout_seconds}")
        if self.max_retries < 0:
            raise ValueError(f"max_retries must not be negative, not {self.max_retries}")
        if urlsplit(self.base_url).scheme not in ("http", "https"):
            raise ValueError(f"base_url must be an http(s) URL, not {redact_url(self.base_url)!r}")

    def _check_keyset(self) -> None:
        fields = self.cursor_fields
        if fields is None or isinstance(fields, str) or len(fields) != 2 \
                or not all(isinstance(f, str) and f for f in fields):
            raise ValueError("keyset pagination needs cursor_fields: (the record's watermark field, "
                             f"its key field), not {fields!r}")
        object.__setattr__(self, "cursor_fields", tuple(fields))  # a list from configuration
        if not self.since_param or not self.after_param:
            raise ValueError("keyset pagination needs since_param and after_param")

    @property
    def url(self) -> str:
        """The endpoint: base_url joined with path."""
        return self.base_url.rstrip("/") + "/" + self.path.lstrip("/")


def redact_url(url: str) -> str:
    """`url` without user:password@ and with sensitive query parameter values replaced by ***."""
    parts = urlsplit(url)
    netloc = parts.netloc.rpartition("@")[2]
    query = urlencode(
        [(k, MASK if _SENSITIVE_NAME.search(k) else v) for k, v in parse_qsl(parts.query, keep_blank_values=True)],
        safe="*:",
    )
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def _lookup(document: Any, dotted: str) -> tuple[bool, Any]:
    """(found, value) at a dotted path ("data.items"); "" is the document itself."""
    value = document
    for part in [p for p in dotted.split(".") if p]:
        if not isinstance(value, dict) or part not in value:
            return False, None
        value = value[part]
    return True, value


def _media_type(content_type: str) -> str:
    return content_type.split(";", 1)[0].strip().lower()


def _is_json_media_type(media_type: str) -> bool:
    return media_type in ("application/json", "text/json") or media_type.endswith("+json")


def _looks_like_html(media_type: str, body: bytes) -> bool:
    if "html" in media_type:
        return True
    head = body[:512].lstrip().lower()
    return head.startswith((b"<!doctype html", b"<html", b"<head", b"<body"))


def _html_title(body: bytes) -> str | None:
    match = re.search(rb"<title[^>]*>(.*?)</title>", body[:4096], re.IGNORECASE | re.DOTALL)
    if not match:
        return None
    return " ".join(match.group(1).decode("utf-8", "replace").split())[:100] or None


def _origin(url: str) -> tuple[str, str, int | None]:
    """(scheme, host, port) of `url`, the port made explicit."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port
    except ValueError:
        port = None
    return scheme, (parts.hostname or "").lower(), port or _DEFAULT_PORTS.get(scheme)


def _cursor_text(value: Any) -> str | None:
    """A watermark or key value as sent back to the API: text as given, a number as JSON writes it."""
    if isinstance(value, str):
        return value or None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return json.dumps(value)
    return None


class _Answer(NamedTuple):
    status: int
    reason: str
    headers: Mapping[str, str]
    body: bytes


class _Failure(Exception):
    """One attempt failed: `reason` (not yet scrubbed), and whether trying again may help."""

    def __init__(self, reason: str, *, retryable: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retryable = retryable


class HttpExtraction:
    """Iterate records (dicts) page by page; bounded memory (one page at a time).

    `since` (ISO 8601 text, a datetime, or None for everything) is the inclusive lower bound on
    the watermark, sent as `source.since_param` on the first request. `session` may be shared
    (it is not closed); `sleep` waits between retries (tests pass a fake). `pages_fetched` and
    `requests_made` (every GET sent, redirects and retries included) count as it goes.
    """

    def __init__(
        self,
        source: HttpSource,
        since: Any,
        *,
        session: requests.Session | None = None,
        sleep: Callable[[float], Any] = time.sleep,
    ) -> None:
        self.source = source
        if since is not None and hasattr(since, "isoformat"):
            since = since.isoformat()  # a datetime
        self.since: str | None = since or None
        self.pages_fetched = 0
        self.requests_made = 0
        self._session = session
        self._sleep = sleep
        self._random = random.Random()
        self._secrets = self._secret_values(source)

    # -- public ------------------------------------------------------------------------------------
    def pages(self) -> Iterator[list[dict]]:
        """Yield each non-empty page's records, in source order; stop at an empty or last page.

        Raises HttpExtractError when a page cannot be had (after retries for transient
        failures), when the run would need more than `max_pages` pages, or when the cursor
        stops advancing.
        """
        own_session = self._session is None
        session = requests.Session() if own_session else self._session
        try:
            if self.source.pagination == "keyset":
                yield from self._keyset_pages(session)
            else:
                yield from self._next_link_pages(session)
        finally:
            if own_session:
                session.close()
        log.info("%s: %d pages, %d requests", self._safe(self.source.url), self.pages_fetched, self.requests_made)

    def records(self) -> Iterator[dict]:
        """Yield the records one by one (still fetched a page at a time)."""
        for page in self.pages():
            yield from page

    # -- pagination ----------------------------------------------------------------------------------
    def _keyset_pages(self, session: requests.Session) -> Iterator[list[dict]]:
        src = self.source
        cursor: tuple[str, str] | None = None
        page = 0
        while True:
            page += 1
            params = self._keyset_params(cursor)
            self._check_page_limit(src.url, params, page)
            _, records = self._fetch(session, src.url, params, page)
            if len(records) < src.page_size:
                if records:
                    yield records
                return
            next_cursor = self._cursor_after(records[-1], params, page)
            if next_cursor == cursor:
                raise self._error(src.url, params, page, f"the cursor did not advance: this page ends at the same "
                                                         f"record as the one before, {next_cursor} (would loop forever)")
            cursor = next_cursor
            yield records

    def _keyset_params(self, cursor: tuple[str, str] | None) -> dict[str, str]:
        """The query for the page after `cursor` (watermark, key); the first page's when None."""
        src = self.source
        assert src.since_param  # checked by HttpSource for keyset
        params = dict(src.params)
        if cursor is None:
            if self.since is not None:
                params[src.since_param] = self.since
        else:
            params[src.since_param], params[src.after_param] = cursor
        params[src.limit_param] = str(src.page_size)
        return params

    def _cursor_after(self, record: dict, params: Mapping[str, str], page: int) -> tuple[str, str]:
        """(watermark, key) of a page's last record, as text for the next request."""
        assert self.source.cursor_fields is not None
        cursor = []
        for name in self.source.cursor_fields:
            found, value = _lookup(record, name)
            text = _cursor_text(value) if found else None
            if text is None:
                got = "has no such field" if not found else f"has {type(value).__name__} {str(value)[:40]!r} there"
                raise self._error(self.source.url, params, page, f"the page's last record {got} at {name!r}: "
                                                                 "no cursor to ask for the next page")
            cursor.append(text)
        return cursor[0], cursor[1]

    def _next_link_pages(self, session: requests.Session) -> Iterator[list[dict]]:
        src = self.source
        url: str = src.url
        params: dict[str, str] = dict(src.params)
        params[src.limit_param] = str(src.page_size)
        if src.since_param and self.since is not None:
            params[src.since_param] = self.since
        page = 0
        seen = {self._prepared_url(url, params)}
        while True:
            page += 1
            self._check_page_limit(url, params, page)
            document, records = self._fetch(session, url, params, page)
            if records:
                yield records
            found, link = _lookup(document, src.next_link_field)
            if not records or not found or link is None or link == "":
                return
            if not isinstance(link, str):
                raise self._error(url, params, page, f"next link at {src.next_link_field!r} is a "
                                                     f"{type(link).__name__}, not a URL")
            next_url = urljoin(self._prepared_url(url, params), link)
            if urlsplit(next_url)[:2] != urlsplit(src.url)[:2]:
                raise self._error(url, params, page, f"next link {self._safe(next_url)!r} leaves "
                                                     f"{self._safe(src.base_url)} (refusing to send credentials there)")
            if next_url in seen:
                raise self._error(url, params, page, "next link points back at a page already read (would loop forever)")
            seen.add(next_url)
            url = next_url
            # The link is followed as given; only the fixed params it lacks (e.g. an API key) are added.
            in_link = {k for k, _ in parse_qsl(urlsplit(url).query, keep_blank_values=True)}
            params = {k: v for k, v in src.params.items() if k not in in_link}

    def _check_page_limit(self, url: str, params: Mapping[str, str], page: int) -> None:
        """HttpExtractError before asking for a page beyond `max_pages`."""
        limit = self.source.max_pages
        if page > limit:
            raise self._error(url, params, page, f"the run needs more than max_pages ({limit}) pages; "
                                                 "raise max_pages if the source really has that many")

    # -- one page, with retries -------------------------------------------------------------------
    def _fetch(self, session: requests.Session, url: str, params: Mapping[str, str], page: int) -> tuple[Any, list[dict]]:
        """GET one page (retrying transient failures); (JSON document, its records)."""
        src = self.source
        attempt = 0
        while True:
            wait: float | None = None
            try:
                answer = self._exchange(session, url, params)
            except _Failure as failure:
                if not failure.retryable:
                    raise self._error(url, params, page, failure.reason) from None
                reason = failure.reason
            else:
                status = answer.status
                if 200 <= status < 300:
                    document, records = self._parse(answer, url, params, page)
                    self.pages_fetched += 1
                    log.debug("%s: page %d, %d records", self._safe(self._prepared_url(url, params)), page, len(records))
                    return document, records
                reason = f"HTTP {status} {answer.reason}".rstrip()
                media_type = _media_type(answer.headers.get("Content-Type", ""))
                if _looks_like_html(media_type, answer.body):
                    title = _html_title(answer.body)
                    raise self._error(url, params, page, f"got an HTML page instead of JSON ({reason}"
                                                         + (f", title {title!r})" if title else ")"))
                if status == 429 or (status == 503 and "Retry-After" in answer.headers):
                    wait = self._retry_after(answer.headers.get("Retry-After"))
                    if wait is not None and wait > src.max_retry_after_seconds:
                        raise self._error(url, params, page, f"{reason} with Retry-After {wait:g} s, above "
                                                             f"max_retry_after_seconds ({src.max_retry_after_seconds:g} s)")
                elif status < 500:
                    snippet = answer.body[:_BODY_SNIPPET].decode("utf-8", "replace")
                    raise self._error(url, params, page, f"{reason}: {snippet!r}")
            if attempt >= src.max_retries:
                raise self._error(url, params, page, f"{reason}; gave up after {attempt + 1} attempts")
            if wait is None:
                wait = self._backoff(attempt)
            attempt += 1
            log.warning("%s: page %d: %s; retry %d of %d in %.1f s", self._safe(self._prepared_url(url, params)),
                        page, self._scrub(reason), attempt, src.max_retries, wait)
            self._sleep(wait)

    def _exchange(self, session: requests.Session, url: str, params: Mapping[str, str]) -> _Answer:
        """One attempt: GET `url` and read the whole answer within timeout_seconds, following only
        the redirects that are safe to follow (raises _Failure)."""
        deadline = time.monotonic() + self.source.timeout_seconds
        credentials = self._carries_credentials(session, url, params)
        target, target_params = url, params
        for _ in range(_MAX_REDIRECTS + 1):
            response = self._send(session, target, target_params, deadline)
            try:
                if not response.is_redirect:
                    ok = 200 <= response.status_code < 300
                    body = self._read_body(response, deadline, strict=ok)
                    return _Answer(response.status_code, response.reason or "", response.headers, body)
                location = urljoin(self._prepared_url(target, target_params), response.headers["Location"])
            finally:
                response.close()
            self._check_redirect(target, location, response.status_code, credentials)
            target, target_params = location, {}  # the Location is followed as given
        raise _Failure(f"more than {_MAX_REDIRECTS} redirects", retryable=False)

    def _send(self, session: requests.Session, url: str, params: Mapping[str, str], deadline: float) -> requests.Response:
        """GET without following redirects; returns once the headers are in (raises _Failure)."""
        src = self.source
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise _Failure(self._deadline_reason(), retryable=True)
        self.requests_made += 1
        try:
            return session.get(url, params=params, headers=dict(src.headers), timeout=(remaining, remaining),
                               stream=True, allow_redirects=False)
        except (requests.ConnectionError, requests.Timeout) as exc:
            # Connect and read timeouts, refused and dropped connections.
            raise _Failure(self._describe_exception(exc), retryable=True) from None

    def _read_body(self, response: requests.Response, deadline: float, *, strict: bool) -> bytes:
        """The body, read in chunks until `deadline` (raises _Failure).

        strict (a page): above max_page_bytes is a failure, by Content-Length before reading or
        as soon as the bytes read pass it. Not strict (an error page): the first 64 KiB are enough.
        """
        limit = self.source.max_page_bytes if strict else min(self.source.max_page_bytes, _ERROR_BODY_BYTES)
        declared = response.headers.get("Content-Length", "").strip()
        if strict and declared.isdigit() and int(declared) > limit:
            raise _Failure(f"the response body is {int(declared)} bytes (Content-Length), above "
                           f"max_page_bytes ({limit})", retryable=False)
        chunks: list[bytes] = []
        size = 0
        try:
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise _Failure(self._deadline_reason(), retryable=True)
                self._wait_at_most(response, remaining)
                chunk = response.raw.read1(_CHUNK_BYTES, decode_content=True)
                if not chunk:
                    return b"".join(chunks)
                size += len(chunk)
                if size > limit:
                    if strict:
                        raise _Failure(f"the response body is above max_page_bytes ({limit}); stopped reading "
                                       f"at {size} bytes", retryable=False)
                    chunks.append(chunk[: len(chunk) - (size - limit)])
                    return b"".join(chunks)
                chunks.append(chunk)
        except urllib3.exceptions.ReadTimeoutError:
            raise _Failure(self._deadline_reason(), retryable=True) from None
        except urllib3.exceptions.DecodeError as exc:
            raise _Failure(f"the body does not decode as its Content-Encoding says ({exc})", retryable=False) from None
        except urllib3.exceptions.HTTPError as exc:
            raise _Failure(self._describe_exception(exc), retryable=True) from None

    @staticmethod
    def _wait_at_most(response: requests.Response, seconds: float) -> None:
        """Let the next socket read block for at most `seconds` (urllib3 resets it per request)."""
        sock = getattr(getattr(response.raw, "connection", None), "sock", None)
        if sock is not None:
            sock.settimeout(max(seconds, 0.001))

    def _deadline_reason(self) -> str:
        return f"timed out: the response was not complete within timeout_seconds ({self.source.timeout_seconds:g} s)"

    def _carries_credentials(self, session: requests.Session, url: str, params: Mapping[str, str]) -> bool:
        """Whether the request sends a secret: a sensitive header, query parameter or user:password."""
        headers = [*self.source.headers, *session.headers]
        if any(_SENSITIVE_HEADER.search(name) for name in headers) or session.auth is not None or session.cookies:
            return True
        parts = urlsplit(self._prepared_url(url, params))
        if "@" in parts.netloc or "@" in urlsplit(self.source.base_url).netloc:
            return True
        return any(_SENSITIVE_NAME.search(name) for name, _ in parse_qsl(parts.query, keep_blank_values=True))

    def _check_redirect(self, current: str, location: str, status: int, credentials: bool) -> None:
        """_Failure unless following a redirect from `current` to `location` is safe."""
        if credentials:
            raise _Failure(f"HTTP {status}: redirect to {self._safe(location)} not followed: "
                           "the request carries credentials", retryable=False)
        if _origin(location) != _origin(current):
            scheme, host, port = _origin(current)
            raise _Failure(f"HTTP {status}: redirect to {self._safe(location)} not followed: it leaves "
                           f"{scheme}://{host}:{port}", retryable=False)
        log.info("%s: HTTP %d, following the redirect to %s", self._safe(current), status, self._safe(location))

    def _parse(self, answer: _Answer, url: str, params: Mapping[str, str], page: int) -> tuple[Any, list[dict]]:
        """The page's JSON document and records, or HttpExtractError saying what is wrong."""
        src = self.source
        body = answer.body
        content_type = answer.headers.get("Content-Type", "")
        media_type = _media_type(content_type)
        status = f"HTTP {answer.status}"
        if _looks_like_html(media_type, body):
            title = _html_title(body)
            raise self._error(url, params, page, f"got an HTML page instead of JSON ({status}"
                                                 + (f", title {title!r})" if title else ")"))
        if media_type and not _is_json_media_type(media_type):
            raise self._error(url, params, page, f"expected JSON, got Content-Type {content_type!r} ({status}): "
                                                 f"{body[:_BODY_SNIPPET].decode('utf-8', 'replace')!r}")
        try:
            document = json.loads(body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise self._error(url, params, page, f"invalid JSON in a {len(body)}-byte body ({exc}); truncated?") from None
        found, records = _lookup(document, src.records_field)
        if not found or not isinstance(records, list):
            if not found:
                keys = ", ".join(repr(k) for k in list(document)[:10]) if isinstance(document, dict) else ""
                got = f"page has keys {keys}" if keys else f"page is a {type(document).__name__}"
            else:
                got = f"found a {type(records).__name__}"
            raise self._error(url, params, page, f"no list at {src.records_field!r} ({got})")
        for index, record in enumerate(records):
            if not isinstance(record, dict):
                raise self._error(url, params, page, f"record {index} at {src.records_field!r} is a "
                                                     f"{type(record).__name__}, not a JSON object")
        return document, records

    # -- waits -------------------------------------------------------------------------------------
    def _backoff(self, attempt: int) -> float:
        """backoff * 2**attempt, capped, plus up to 10% jitter."""
        delay = min(self.source.backoff_seconds * (2 ** attempt), self.source.max_backoff_seconds)
        return delay + delay * self._random.uniform(0, 0.1)

    @staticmethod
    def _retry_after(value: str | None) -> float | None:
        """Seconds to wait from a Retry-After header (delta-seconds or HTTP date); None if unusable."""
        if value is None:
            return None
        value = value.strip()
        try:
            return max(0.0, float(value))
        except ValueError:
            pass
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when is None:
            return None
        return max(0.0, when.timestamp() - time.time())

    # -- safe messages -----------------------------------------------------------------------------
    @staticmethod
    def _secret_values(source: HttpSource) -> list[str]:
        values = []
        for name, value in source.params.items():
            if _SENSITIVE_NAME.search(name) and value:
                values.append(str(value))
        for name, value in source.headers.items():
            if _SENSITIVE_HEADER.search(name) and value:
                values.append(str(value))
                values.extend(v for v in str(value).split() if len(v) >= 6)  # "Bearer <token>"
        user_info = urlsplit(source.base_url).netloc.rpartition("@")[0]
        values.extend(v for v in user_info.split(":") if v)
        return sorted({v for v in values if len(v) >= 3}, key=len, reverse=True)

    def _scrub(self, text: str) -> str:
        """`text` with known secret values, user:password@ and sensitive name=value pairs masked."""
        for secret in self._secrets:
            text = text.replace(secret, MASK)
        text = _USERINFO.sub(r"\g<scheme>", text)
        return _SENSITIVE_PAIR.sub(lambda m: f"{m.group('name')}={MASK}", text)

    def _safe(self, url: str) -> str:
        return self._scrub(redact_url(url))

    @staticmethod
    def _prepared_url(url: str, params: Mapping[str, str]) -> str:
        """`url` with `params` added to its query string (what requests will send)."""
        if not params:
            return url
        parts = urlsplit(url)
        query = "&".join(q for q in (parts.query, urlencode(list(params.items()), safe=":")) if q)
        return urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))

    def _error(self, url: str, params: Mapping[str, str], page: int, reason: str) -> HttpExtractError:
        message = f"GET {self._safe(self._prepared_url(url, params))} failed on page {page}: {self._scrub(reason)}"
        return HttpExtractError(message)

    def _describe_exception(self, exc: BaseException) -> str:
        """A short, secret-free description of a requests or urllib3 exception (its text quotes the URL)."""
        kind = "read timed out" if isinstance(exc, (requests.ReadTimeout, urllib3.exceptions.ReadTimeoutError)) else \
            "connect timed out" if isinstance(exc, requests.ConnectTimeout) else \
            "connection broke off mid-body" if isinstance(exc, urllib3.exceptions.ProtocolError) else \
            "connection error"
        detail = re.sub(r"\s*Max retries exceeded with url: \S+", "", str(exc))  # the URL is in the message already
        detail = re.sub(r" object at 0x[0-9a-fA-F]+", "", detail)
        detail = self._scrub(detail)
        return f"{kind} ({type(exc).__name__}: {detail[:_BODY_SNIPPET]})"
