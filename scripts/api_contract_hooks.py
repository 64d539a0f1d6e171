"""Schemathesis hooks for scripts/api-contract.sh.

Schemathesis's invalid-input cases may add headers that are not HTTP at all
(control characters in a value, a name that is not a token). The server's
HTTP parser (hyper) refuses such a request before any route sees it, with a
bare 400 and no body, as HTTP says it should; there is no JSON error to
check. Those cases are left out: everything that is valid HTTP is checked.

A negative case may also lose its negation on the way to the wire: a query
parameter of type integer mutated into the string "1", the list [1], the
object {"1": 2}, or a valid `limit` beside an optional parameter mutated into
null, [] or {} (which may not be sent at all), goes out as `limit=1`, a valid
request the server rightly accepts. Those cases are left out too
(`_negation_survives_the_wire`, which encodes the query as it may be sent).
"""

import re

import schemathesis

# RFC 9110: a field name is a token; a value is visible ASCII, space, tab or
# obs-text (0x80-0xFF).
TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")


def _is_http_field(name, value):
    return bool(TOKEN.match(str(name))) and all(
        c == "\t" or " " <= c <= "~" or "\x80" <= c <= "\xff" for c in str(value)
    )


@schemathesis.hook
def filter_headers(context, headers):
    return headers is None or all(_is_http_field(k, v) for k, v in headers.items())


VERSION = re.compile(r"^\+?[0-9]+$")


def _if_match(value):
    """The version in an `If-Match` header, as the server reads it, or None."""
    text = str(value).strip()
    text = text[2:] if text.startswith("W/") else text
    text = text.strip('"')
    return int(text) if VERSION.match(text) else None


def _uuid_key(value):
    """A UUID in any form the server reads, as one comparable string."""
    text = str(value).lower()
    text = text[len("urn:uuid:"):] if text.startswith("urn:uuid:") else text
    return "".join(c for c in text if c in "0123456789abcdef")


def _fields_agree(body):
    """The rules between fields of one body that JSON Schema cannot state
    (400 otherwise, checked in tests/api): a station's amber timer before its
    red one; a dine-in order has a table and a takeaway none; a recipe lists
    each item once; a broadcast names exactly one audience and
    has a title that is not blank."""
    warn, late = body.get("warn_after_secs"), body.get("late_after_secs")
    if isinstance(warn, int) and isinstance(late, int) and not warn < late:
        return False
    service = body.get("service")
    if isinstance(service, dict) and "kind" in service:
        has_table = service.get("table") is not None
        if has_table != (service["kind"] == "dine_in"):
            return False
    audience = body.get("audience")
    if isinstance(audience, dict):
        named = (audience.get("tenant") is True) + sum(
            audience.get(k) is not None for k in ("store", "role")
        )
        if named != 1:
            return False
        title = body.get("title")
        if isinstance(title, str) and not title.strip():
            return False
    recipe = body.get("recipe")
    if isinstance(recipe, list):
        ids = [_uuid_key(i.get("item_id")) for i in recipe if isinstance(i, dict)]
        if len(ids) != len(set(ids)):
            return False
    return True


@schemathesis.hook
def before_generate_case(context, strategy):
    """`If-Match` and a body's `expected_version` must agree (400 otherwise,
    checked in tests/api). JSON Schema cannot relate a header to a body
    field, so cases with both are generated only when they agree; the same
    for the rules between fields of one body (`_fields_agree`)."""

    def agree(case):
        header = (case.headers or {}).get("If-Match")
        body = case.body if isinstance(case.body, dict) else {}
        if not _fields_agree(body):
            return False
        if not _negation_survives_the_wire(case):
            return False
        version = body.get("expected_version")
        if header is None or version is None:
            return True
        return _if_match(header) == version

    return strategy.filter(agree)


INTEGER = re.compile(r"^[+-]?[0-9]+$")
NUMBER = re.compile(r"^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$")


def _on_the_wire(query, empty_object_sent):
    """The query as the server receives it, by name: one text, or a list of
    texts when the name repeats. Encoded by `requests`, as Schemathesis sends
    it: a None or an empty list is left out, a dict sends its keys, a bool
    its Python name, and an empty object an empty value if
    `empty_object_sent`, else nothing (Schemathesis has sent it both ways)."""
    import requests
    from urllib.parse import parse_qsl, urlsplit

    if empty_object_sent:
        query = {k: ("" if v == {} else v) for k, v in query.items()}
    else:
        query = {k: v for k, v in query.items() if v != {}}
    url = requests.Request("GET", "http://larder.invalid/", params=query).prepare().url
    read = {}
    for name, text in parse_qsl(urlsplit(url).query, keep_blank_values=True):
        read.setdefault(name, []).append(text)
    return {name: texts[0] if len(texts) == 1 else texts for name, texts in read.items()}


def _as_read(text, schema):
    """The wire text as a server typed by `schema` parses it; else the text."""
    if not isinstance(text, str):
        return text
    kind = schema.get("type")
    kinds = kind if isinstance(kind, list) else [kind]
    if "integer" in kinds and INTEGER.match(text):
        return int(text)
    if "number" in kinds and NUMBER.match(text):
        return float(text)
    if "boolean" in kinds and text in ("true", "false"):
        return text == "true"
    return text


def _negation_survives_the_wire(case):
    """False for a negative case whose query, once sent as text and read back
    as the document types it, is valid in either way it may be sent: the
    server may see a valid request."""
    method = getattr(case, "data_generation_method", None)
    if method is None or not method.is_negative or not case.query:
        return True
    meta = case.meta
    if meta is not None and any(
        part is not None and part.is_negative
        for part in (meta.body, meta.path_parameters, meta.headers, meta.cookies)
    ):
        return True
    from schemathesis.specs.openapi._hypothesis import get_schema_for_location

    operation = case.operation
    schema = get_schema_for_location(operation, "query", operation.query)
    properties = schema.get("properties", {})
    validator = operation.schema.validator_cls(schema)
    for empty_object_sent in (True, False):
        read = {
            name: _as_read(text, properties.get(name, {}))
            for name, text in _on_the_wire(case.query, empty_object_sent).items()
        }
        if validator.is_valid(read):
            return False
    return True
