"""The open data catalog: DCAT-US 1.1 (Project Open Data, non-federal) `data.json`.

Builders (`dataset_entry`, `distribution`, `catalog`) make the dicts; `validate_catalog` checks a
whole document against the DCAT-US 1.1 non-federal JSON Schemas shipped in
`schemas/dcat-us-1.1-non-federal/` (GSA, public domain; see the README there), offline.

What `validate_catalog` checks:
- everything the two schema files say, with jsonschema's Draft4Validator: required fields
  (catalog: conformsTo, dataset; data set: title, description, publisher, contactPoint,
  identifier, accessLevel; publisher.name; contactPoint.fn; a distribution with a downloadURL
  needs a mediaType), enums (@type values, accessLevel, conformsTo), the regex patterns
  (modified, issued, temporal, accrualPeriodicity, contactPoint.hasEmail `mailto:…`, mediaType,
  describedByType), types, lengths (non-empty strings; keyword has at least one entry);
- format "uri" (@context, @id, describedBy, landingPage, license, downloadURL, accessURL,
  conformsTo, references) with the platform's own check, `is_uri`: jsonschema checks "uri" only
  when the `rfc3987` package is installed, and it is not. `is_uri` accepts an absolute URI
  (RFC 3986 scheme, then only characters RFC 3986 allows, `%` followed by two hex digits) and,
  for http, https and ftp, a host after `//`. It does not check the full RFC 3986 grammar
  (IPv6 literals, port digits, where each character may appear), nor IRIs (non-ASCII letters
  must be percent-encoded);
- jsonschema's installed draft-4 format checkers (email, ipv4, ipv6, regex) stay on, though the
  DCAT-US schemas use none of them (hasEmail is a pattern, not format "email");
- one rule beyond the schema: data set identifiers are unique in the catalog (DCAT-US says an
  identifier is unique within the publisher's catalog);
- the platform's two extension fields (`EXTENSION_FIELDS`), which the schema lets through
  unchecked: `dataAsOf` is an ISO 8601 date or month, `dataLate` a boolean.

Extension fields: DCAT-US 1.1 has no field for how fresh a data set's data is (`modified` is when
the published data last changed; `temporal` the range the rows cover). Its dataset schema does not
forbid other properties, so each entry whose data set projects a source carries `dataAsOf` (the
newest day the source delivered data for, `aim.freshness`) and, when the source promises
freshness, `dataLate`. Harvesters that do not know them ignore them.

What it does not check: that URLs resolve, that dates are real calendar dates beyond the
patterns, that temporal's start is before its end, that mediaType matches the file, that the
license is an open license, that `dataset` is non-empty (catalog.json puts minItems/uniqueItems
inside `items` beside a `$ref`, where draft 4 ignores them), or any of DCAT-US's federal-only
fields (bureauCode, programCode) that a city leaves out.
"""
from __future__ import annotations

import json
import re
from datetime import date, datetime, timezone
from functools import lru_cache
from pathlib import Path
from urllib.parse import urlsplit

from jsonschema import Draft4Validator, FormatChecker
from referencing import Registry
from referencing.exceptions import NoSuchResource
from referencing.jsonschema import DRAFT4

SCHEMA_DIR = Path(__file__).resolve().parent / "schemas" / "dcat-us-1.1-non-federal"
CATALOG_CONTEXT = "https://project-open-data.cio.gov/v1.1/schema/catalog.jsonld"
CONFORMS_TO = "https://project-open-data.cio.gov/v1.1/schema"
CATALOG_SCHEMA_URL = "https://project-open-data.cio.gov/v1.1/schema/catalog.json"
ACCESS_LEVELS = ("public", "restricted public", "non-public")
DICTIONARY_MEDIA_TYPE = "application/json"  # the data dictionaries are Table Schema JSON
# Fields of a data set entry beyond DCAT-US 1.1 (its dataset schema sets no additionalProperties, and
# Project Open Data allows extending it): how fresh the data is, which no DCAT-US field says.
EXTENSION_FIELDS = {
    "dataAsOf": "The newest day the data set's source delivered data for, as an ISO 8601 date (YYYY-MM-DD, "
                "Milwaukee's date), or month (YYYY-MM) for a monthly source. Not `modified` (when the "
                "published data last changed) nor the end of `temporal` (the range of the published rows' "
                "date column, for the data sets that name one).",
    "dataLate": "true when dataAsOf is older than the source promises (dags/sources/<source>.yaml, "
                "freshness.max_age_days), as of the publication; absent when the source makes no promise.",
}
_AS_OF = re.compile(r"^\d{4}-\d{2}(-\d{2})?$")


# --- builders ---------------------------------------------------------------------------------


def iso_time(value) -> str:
    """ISO 8601 text for a DCAT-US date field: a date as YYYY-MM-DD, an aware datetime in UTC as
    YYYY-MM-DDTHH:MM:SSZ, a string unchanged. A naive datetime is refused (its zone is unknown)."""
    if isinstance(value, datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value!r}: pass an aware datetime, a date or a string")
        return value.astimezone(timezone.utc).replace(tzinfo=None).isoformat(timespec="seconds") + "Z"
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, str):
        return value
    raise TypeError(f"expected a date, datetime or ISO 8601 string, got {type(value).__name__}")


def _interval(value) -> str:
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise ValueError(f"temporal needs (start, end), got {value!r}")
        return f"{iso_time(value[0])}/{iso_time(value[1])}"
    if isinstance(value, str):
        return value
    raise TypeError(f"temporal must be 'start/end' or a (start, end) pair, got {type(value).__name__}")


def _string_list(name: str, value) -> list[str]:
    if isinstance(value, str):
        raise TypeError(f"{name} must be a list of strings, not one string")
    return list(value)


def distribution(
    *,
    download_url: str,
    media_type: str,
    format: str,
    title: str,
    described_by: str | None = None,
    described_by_type: str | None = None,
) -> dict:
    """A DCAT-US `dcat:Distribution`: downloadURL, mediaType (no parameters, e.g. `text/csv`),
    format and title; describedBy (the data dictionary URL) with its describedByType, which
    defaults to application/json when describedBy is given."""
    entry = {
        "@type": "dcat:Distribution",
        "downloadURL": download_url,
        "mediaType": media_type,
        "format": format,
        "title": title,
    }
    if described_by is not None:
        entry["describedBy"] = described_by
        entry["describedByType"] = described_by_type or DICTIONARY_MEDIA_TYPE
    elif described_by_type is not None:
        entry["describedByType"] = described_by_type
    return entry


def dataset_entry(
    *,
    identifier: str,
    title: str,
    description: str,
    keywords,
    publisher_name: str,
    contact_name: str,
    contact_email: str,
    license_uri: str | None,
    access_level: str,
    modified,
    accrual_periodicity: str | None,
    temporal,
    described_by: str | None,
    distributions: list[dict],
    landing_page: str | None = None,
    theme=None,
    spatial: str | None = None,
    is_part_of: str | None = None,
    issued=None,
    data_as_of: str | None = None,
    data_late: bool | None = None,
) -> dict:
    """A DCAT-US `dcat:Dataset` entry.

    Promises: `contactPoint` is a vcard:Contact whose hasEmail starts with `mailto:` (added when
    missing); `publisher` an org:Organization; `modified`/`issued` are ISO 8601 (see `iso_time`;
    `modified` is when the DATA last changed); `temporal` is "start/end" (a string, or a
    (start, end) pair of dates/aware datetimes/strings); `describedBy` (the Table Schema URL)
    comes with describedByType application/json; `keyword` and `theme` are lists. The two
    extension fields (see EXTENSION_FIELDS): `dataAsOf` (`data_as_of`, an ISO 8601 date or month)
    and `dataLate` (`data_late`). Optional values passed as None are left out. It does not
    validate: run `validate_catalog` on the catalog.
    """
    email = contact_email if contact_email.startswith("mailto:") else f"mailto:{contact_email}"
    entry: dict = {
        "@type": "dcat:Dataset",
        "identifier": identifier,
        "title": title,
        "description": description,
        "keyword": _string_list("keywords", keywords),
        "publisher": {"@type": "org:Organization", "name": publisher_name},
        "contactPoint": {"@type": "vcard:Contact", "fn": contact_name, "hasEmail": email},
        "accessLevel": access_level,
    }
    if license_uri is not None:
        entry["license"] = license_uri
    if modified is not None:
        entry["modified"] = iso_time(modified)
    if issued is not None:
        entry["issued"] = iso_time(issued)
    if accrual_periodicity is not None:
        entry["accrualPeriodicity"] = accrual_periodicity
    if temporal is not None:
        entry["temporal"] = _interval(temporal)
    if described_by is not None:
        entry["describedBy"] = described_by
        entry["describedByType"] = DICTIONARY_MEDIA_TYPE
    if landing_page is not None:
        entry["landingPage"] = landing_page
    if theme is not None:
        entry["theme"] = [theme] if isinstance(theme, str) else list(theme)
    if spatial is not None:
        entry["spatial"] = spatial
    if is_part_of is not None:
        entry["isPartOf"] = is_part_of
    if data_as_of is not None:
        if not _AS_OF.match(data_as_of):
            raise ValueError(f"dataAsOf must be an ISO 8601 date or month (YYYY-MM-DD, YYYY-MM), got {data_as_of!r}")
        entry["dataAsOf"] = data_as_of
    if data_late is not None:
        entry["dataLate"] = bool(data_late)
    entry["distribution"] = list(distributions)
    return entry


def catalog(entries: list[dict], *, catalog_url: str | None = None) -> dict:
    """The `data.json` document: a dcat:Catalog conforming to DCAT-US 1.1 holding `entries` in the
    order given; `catalog_url` (the data.json's own URL) becomes its "@id"."""
    doc: dict = {"@context": CATALOG_CONTEXT}
    if catalog_url is not None:
        doc["@id"] = catalog_url
    doc.update(
        {
            "@type": "dcat:Catalog",
            "conformsTo": CONFORMS_TO,
            "describedBy": CATALOG_SCHEMA_URL,
            "dataset": list(entries),
        }
    )
    return doc


def catalog_json(doc: dict) -> bytes:
    """`doc` as deterministic UTF-8 JSON: sorted keys, 2-space indent, a final newline."""
    return (json.dumps(doc, sort_keys=True, indent=2, ensure_ascii=False, allow_nan=False) + "\n").encode("utf-8")


# --- validation -------------------------------------------------------------------------------

_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*:(?:[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=]|%[0-9A-Fa-f]{2})*$")
_NEEDS_HOST = {"http", "https", "ftp"}


def is_uri(value) -> bool:
    """True when `value` looks like an absolute URI (see the module docstring for how far it checks).
    Values that are not strings pass: a format applies to strings only."""
    if not isinstance(value, str):
        return True
    if not _URI.match(value):
        return False
    parts = urlsplit(value)
    if parts.scheme.lower() in _NEEDS_HOST:
        return value[len(parts.scheme) + 1 :].startswith("//") and bool(parts.hostname)
    return True


def _offline(uri: str):
    raise NoSuchResource(ref=uri)  # every schema is local; nothing is fetched


@lru_cache(maxsize=1)
def _validator() -> Draft4Validator:
    resources = []
    schemas = {}
    for name in ("catalog.json", "dataset-non-federal.json"):
        contents = json.loads((SCHEMA_DIR / name).read_text(encoding="utf-8"))
        schemas[name] = contents
        uri = contents["id"].rstrip("#")
        resources.append((uri, DRAFT4.create_resource(contents)))
    registry = Registry(retrieve=_offline).with_resources(resources).crawl()
    checker = FormatChecker(formats=())
    checker.checkers.update(Draft4Validator.FORMAT_CHECKER.checkers)
    checker.checkers["uri"] = (is_uri, ())
    schema = schemas["catalog.json"]
    Draft4Validator.check_schema(schema)
    Draft4Validator.check_schema(schemas["dataset-non-federal.json"])
    return Draft4Validator(schema, registry=registry, format_checker=checker)


def _path(parts) -> str:
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "(catalog)"


def _messages(error, base=()) -> list[tuple[str, str]]:
    """(path, message) pairs for one jsonschema error, looking inside anyOf/oneOf failures."""
    path = tuple(base) + tuple(error.path)
    if error.validator in ("anyOf", "oneOf") and error.context:
        # Errors deeper in the instance (inside the array/object branch) say what is wrong;
        # a branch that failed only on the value itself (e.g. "not null") says nothing useful.
        deeper = [e for e in error.context if len(e.path) > 0]
        if deeper:
            out = []
            for sub in deeper:
                out.extend(_messages(sub, path))
            return out
        # A branch that failed on something other than its type explains itself if it is the
        # only one (e.g. a string that is not a uri, where the other branch allows only null).
        explaining = [e for e in error.context if e.validator != "type"]
        if len(explaining) == 1:
            return _messages(explaining[0], path)
        title = error.schema.get("title") if isinstance(error.schema, dict) else None
        label = f" ({title})" if title else ""
        return [(_path(path), f"{error.instance!r} is not a valid value{label}")]
    if error.validator == "required":
        missing = [p for p in error.validator_value if isinstance(error.instance, dict) and p not in error.instance]
        return [(_path(path + (p,)), "required property is missing") for p in missing] or [
            (_path(path), error.message)
        ]
    if error.validator == "pattern":
        title = error.schema.get("title") if isinstance(error.schema, dict) else None
        what = f"the {title} pattern" if title else "the required pattern"
        return [(_path(path), f"{error.instance!r} does not match {what}")]
    if error.validator == "format":
        return [(_path(path), f"{error.instance!r} is not a valid {error.validator_value}")]
    return [(_path(path), error.message)]


def validate_catalog(doc: dict) -> list[str]:
    """Problems with a data.json document, as "path: message" strings sorted by path; [] when it
    is valid DCAT-US 1.1 (non-federal). Offline: the shipped schemas only; see the module
    docstring for what is and is not checked."""
    found: set[tuple[str, str]] = set()
    for error in _validator().iter_errors(doc):
        found.update(_messages(error))
    datasets = doc.get("dataset") if isinstance(doc, dict) else None
    if isinstance(datasets, list):
        seen: dict[str, int] = {}
        for i, entry in enumerate(datasets):
            ident = entry.get("identifier") if isinstance(entry, dict) else None
            if isinstance(ident, str):
                if ident in seen:
                    found.add((f"dataset[{i}].identifier", f"{ident!r} repeats dataset[{seen[ident]}].identifier"))
                else:
                    seen[ident] = i
            if isinstance(entry, dict):
                if "dataAsOf" in entry and not (isinstance(entry["dataAsOf"], str) and _AS_OF.match(entry["dataAsOf"])):
                    found.add((f"dataset[{i}].dataAsOf", f"{entry['dataAsOf']!r} is not an ISO 8601 date or month"))
                if "dataLate" in entry and not isinstance(entry["dataLate"], bool):
                    found.add((f"dataset[{i}].dataLate", f"{entry['dataLate']!r} is not a boolean"))
    return [f"{path}: {message}" for path, message in sorted(found)]
