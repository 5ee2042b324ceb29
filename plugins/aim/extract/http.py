"""Extraction from paginated JSON web APIs, one page at a time.

`HttpExtraction(source, updated_since).pages()` yields the records (dicts) of each page in turn,
so memory holds one page whatever the data set's size. Two pagination styles:

- offset: `?offset=0&limit=500`, then `offset += len(records)` until a page comes back short;
- next_link: the first request carries `limit` (and `updated_since`), then the page's next link
  (at `next_link_field`) is followed as given until it is null, absent or empty.

Transient failures (HTTP 5xx, 429, timeouts, dropped connections) are retried per page with
exponential backoff; `Retry-After` is honoured. Everything else (other 4xx, an HTML page, a
body that is not the expected JSON) fails at once with an `HttpExtractError` naming the URL,
the page and the reason. Headers, credentials in the URL and query parameters whose name
contains token/key/secret/password never appear in messages or logs.
"""
from __future__ import annotations

import email.utils
import json
import logging
import random
import re
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Literal, Mapping
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

import requests

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
    """Where a paginated JSON API is and how to page through it."""

    base_url: str
    path: str
    pagination: Literal["offset", "next_link"] = "offset"
    page_size: int = 500
    offset_param: str = "offset"
    limit_param: str = "limit"
    records_field: str = "results"
    next_link_field: str = "next"
    updated_since_param: str | None = "updated_since"
    params: Mapping[str, str] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)
    timeout_seconds: float = 30.0
    max_retries: int = 5
    backoff_seconds: float = 1.0
    max_backoff_seconds: float = 60.0
    max_retry_after_seconds: float = 300.0

    def __post_init__(self) -> None:
        if self.pagination not in ("offset", "next_link"):
            raise ValueError(f"pagination must be 'offset' or 'next_link', not {self.pagination!r}")
        if self.page_size < 1:
            raise ValueError(f"page_size must be at least 1, not {self.page_size}")
        if self.timeout_seconds <= 0:
            raise ValueError(f"timeout_seconds must be positive, not {self.timeout_seconds}")
        if self.max_retries < 0:
            raise ValueError(f"max_retries must not be negative, not {self.max_retries}")
        if urlsplit(self.base_url).scheme not in ("http", "https"):
            raise ValueError(f"base_url must be an http(s) URL, not {redact_url(self.base_url)!r}")

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


class HttpExtraction:
    """Iterate records (dicts) page by page; bounded memory (one page at a time).

    `updated_since` (ISO 8601 text, or None for everything) goes to the source as
    `source.updated_since_param`. `session` may be shared (it is not closed); `sleep` waits
    between retries (tests pass a fake). `pages_fetched` and `requests_made` count as it goes.
    """

    def __init__(
        self,
        source: HttpSource,
        updated_since: str | None,
        *,
        session: requests.Session | None = None,
        sleep: Callable[[float], Any] = time.sleep,
    ) -> None:
        self.source = source
        if updated_since is not None and hasattr(updated_since, "isoformat"):
            updated_since = updated_since.isoformat()  # tolerate a datetime
        self.updated_since = updated_since or None
        self.pages_fetched = 0
        self.requests_made = 0
        self._session = session
        self._sleep = sleep
        self._random = random.Random()
        self._secrets = self._secret_values(source)

    # -- public ------------------------------------------------------------------------------------
    def pages(self) -> Iterator[list[dict]]:
        """Yield each non-empty page's records, in source order; stop at an empty or last page."""
        own_session = self._session is None
        session = requests.Session() if own_session else self._session
        try:
            if self.source.pagination == "offset":
                yield from self._offset_pages(session)
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
    def _offset_pages(self, session: requests.Session) -> Iterator[list[dict]]:
        src = self.source
        offset, page = 0, 0
        while True:
            page += 1
            params = dict(src.params)
            if src.updated_since_param and self.updated_since is not None:
                params[src.updated_since_param] = self.updated_since
            params[src.limit_param] = str(src.page_size)
            params[src.offset_param] = str(offset)
            _, records = self._fetch(session, src.url, params, page)
            if records:
                yield records
            if len(records) < src.page_size:
                return
            offset += len(records)

    def _next_link_pages(self, session: requests.Session) -> Iterator[list[dict]]:
        src = self.source
        url: str = src.url
        params: dict[str, str] = dict(src.params)
        params[src.limit_param] = str(src.page_size)
        if src.updated_since_param and self.updated_since is not None:
            params[src.updated_since_param] = self.updated_since
        page = 0
        seen = {self._prepared_url(url, params)}
        while True:
            page += 1
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

    # -- one page, with retries -------------------------------------------------------------------
    def _fetch(self, session: requests.Session, url: str, params: Mapping[str, str], page: int) -> tuple[Any, list[dict]]:
        """GET one page (retrying transient failures); (JSON document, its records)."""
        src = self.source
        attempt = 0
        while True:
            self.requests_made += 1
            wait: float | None = None
            try:
                response = session.get(
                    url, params=params, headers=dict(src.headers),
                    timeout=(src.timeout_seconds, src.timeout_seconds),
                )
            except (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError) as exc:
                # Includes read timeouts and bodies cut off by a dropped connection.
                reason = self._describe_exception(exc)
            else:
                status = response.status_code
                if 200 <= status < 300:
                    document, records = self._parse(response, url, params, page)
                    self.pages_fetched += 1
                    log.debug("%s: page %d, %d records", self._safe(self._prepared_url(url, params)), page, len(records))
                    return document, records
                reason = f"HTTP {status} {response.reason or ''}".rstrip()
                body = response.content or b""
                media_type = _media_type(response.headers.get("Content-Type", ""))
                if _looks_like_html(media_type, body):
                    title = _html_title(body)
                    raise self._error(url, params, page, f"got an HTML page instead of JSON ({reason}"
                                                         + (f", title {title!r})" if title else ")"))
                if status == 429 or (status == 503 and "Retry-After" in response.headers):
                    wait = self._retry_after(response.headers.get("Retry-After"))
                    if wait is not None and wait > src.max_retry_after_seconds:
                        raise self._error(url, params, page, f"{reason} with Retry-After {wait:g} s, above "
                                                             f"max_retry_after_seconds ({src.max_retry_after_seconds:g} s)")
                elif status < 500:
                    snippet = body[:_BODY_SNIPPET].decode("utf-8", "replace")
                    raise self._error(url, params, page, f"{reason}: {snippet!r}")
            if attempt >= src.max_retries:
                raise self._error(url, params, page, f"{reason}; gave up after {attempt + 1} attempts")
            if wait is None:
                wait = self._backoff(attempt)
            attempt += 1
            log.warning("%s: page %d: %s; retry %d of %d in %.1f s", self._safe(self._prepared_url(url, params)),
                        page, self._scrub(reason), attempt, src.max_retries, wait)
            self._sleep(wait)

    def _parse(self, response: requests.Response, url: str, params: Mapping[str, str], page: int) -> tuple[Any, list[dict]]:
        """The page's JSON document and records, or HttpExtractError saying what is wrong."""
        src = self.source
        body = response.content or b""
        content_type = response.headers.get("Content-Type", "")
        media_type = _media_type(content_type)
        status = f"HTTP {response.status_code}"
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
        """A short, secret-free description of a requests exception (its text quotes the URL)."""
        kind = "read timed out" if isinstance(exc, requests.ReadTimeout) else \
            "connect timed out" if isinstance(exc, requests.ConnectTimeout) else \
            "connection broke off mid-body" if isinstance(exc, requests.exceptions.ChunkedEncodingError) else \
            "connection error"
        detail = re.sub(r"\s*Max retries exceeded with url: \S+", "", str(exc))  # the URL is in the message already
        detail = re.sub(r" object at 0x[0-9a-fA-F]+", "", detail)
        detail = self._scrub(detail)
        return f"{kind} ({type(exc).__name__}: {detail[:_BODY_SNIPPET]})"
