"""`kind: http`: a JSON web API read incrementally, page by page, by keyset or the API's cursor."""
from __future__ import annotations

from typing import Any, Iterator, Literal, NamedTuple

from pydantic import Field, model_validator

from aim.source_kinds.base import Chunk, ExtractRequest, SourceKind, Watermarked


class HttpExtract(Watermarked):
    """A JSON API read incrementally, page by page, by keyset (or the API's own cursor links).

    `keyset`: the first request asks for records whose watermark is at or after the lower bound
    (`since_param`); each next request asks for those after the last record read, by its
    watermark (`since_param`) and key (`after_param`), so an edit while paging moves a record
    behind the cursor instead of shifting unread ones past it. `next_link`: the API's own cursor
    (`next_link_field`), with the same inclusive lower bound on the first request.
    """

    kind: Literal["http"] = "http"
    path: str
    pagination: Literal["keyset", "next_link"] = "keyset"
    page_size: int = Field(500, ge=1, le=10_000)
    limit_param: str = "limit"
    records_field: str = "results"
    next_link_field: str = "next"
    since_param: str = Field("updated_from", description="inclusive lower bound on the watermark")
    after_param: str = Field("after", description="keyset: the key of the last record read")
    timeout_seconds: float = Field(30, gt=0, description="for the whole response, connection to last byte")
    max_retries: int = Field(5, ge=0, le=20)
    max_pages: int = Field(10_000, ge=1, description="a run that needs more pages fails (a looping or hostile API)")
    max_page_bytes: int = Field(50 << 20, ge=1024, description="a larger response body fails the run")

    @model_validator(mode="before")
    @classmethod
    def _no_offset_paging(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("pagination") == "offset":
            raise ValueError(
                "pagination 'offset' skips records edited while the run pages through them; "
                "use 'keyset' (by watermark and key) or 'next_link' (the API's cursor)"
            )
        return data


class HttpAccess(NamedTuple):
    """Base URL and request headers; its repr masks the header values (they carry credentials)."""

    base_url: str
    headers: dict[str, str]

    def __repr__(self) -> str:
        return f"HttpAccess(base_url={self.base_url!r}, headers={{{', '.join(f'{k!r}: ***' for k in self.headers)}}})"

    __str__ = __repr__


def http_base(conn: Any) -> HttpAccess:
    """Base URL and request headers for an `http` connection.

    The URL is `schema://host:port` (schema defaults to http; a host given with its scheme is
    kept as it is). Headers come from the `headers` extra; a password without one becomes a
    bearer token.
    """
    host = conn.host or ""
    if "://" in host:
        base = host.rstrip("/")
    else:
        scheme = conn.schema or "http"
        base = f"{scheme}://{host}" + (f":{conn.port}" if conn.port else "")
    extra = conn.extra_dejson or {}
    headers = dict(extra.get("headers") or {})
    if conn.password and "Authorization" not in headers:
        headers["Authorization"] = f"Bearer {conn.password}"
    return HttpAccess(base, headers)


class JsonApi(SourceKind):
    name = "http"
    extract_model = HttpExtract

    def validate(self, config) -> None:
        if config.extract.pagination == "keyset" and (len(config.key) != 1 or config.derived_key):
            raise ValueError("extract.pagination keyset pages by the watermark and the source's own one-column key; "
                             f"key is {config.key}" + (" (derived)" if config.derived_key else ""))

    def describe(self, config) -> str:
        extract = config.extract
        return (f"reads {extract.path} page by page ({extract.pagination}), records with {extract.watermark_column} "
                f"at or after the highest merged, less {extract.overlap_seconds} s of overlap")

    def connection_types(self, config) -> tuple[str, ...]:
        return ("http",)

    def access(self, config, conn: Any | None) -> Any:
        return http_base(conn)

    def chunks(self, config, access: tuple[str, dict], request: ExtractRequest) -> Iterator[Chunk]:
        from aim.extract.files import record_row
        from aim.extract.http import HttpExtraction, HttpSource

        base_url, headers = access
        extract = config.extract
        cursor = (config.column(extract.watermark_column).source_name, config.column(config.key[0]).source_name)
        source = HttpSource(
            base_url=base_url, path=extract.path, pagination=extract.pagination, page_size=extract.page_size,
            limit_param=extract.limit_param, records_field=extract.records_field,
            next_link_field=extract.next_link_field, since_param=extract.since_param,
            after_param=extract.after_param, cursor_fields=cursor if extract.pagination == "keyset" else None,
            headers=headers, timeout_seconds=extract.timeout_seconds, max_retries=extract.max_retries,
            max_pages=extract.max_pages, max_page_bytes=extract.max_page_bytes,
        )
        fields = [c.source_name for c in config.extracted_columns]
        for number, page in enumerate(HttpExtraction(source, request.since).pages(), start=1):
            yield Chunk([record_row(record, fields) for record in page], origin=f"page {number}")


KIND = JsonApi()
