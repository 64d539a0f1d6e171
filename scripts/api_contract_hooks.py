"""Schemathesis hooks for scripts/api-contract.sh.

Schemathesis's invalid-input cases may add headers that are not HTTP at all
(control characters in a value, a name that is not a token). The server's
HTTP parser (hyper) refuses such a request before any route sees it, with a
bare 400 and no body, as HTTP says it should; there is no JSON error to
check. Those cases are left out: everything that is valid HTTP is checked.
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


@schemathesis.hook
def before_generate_case(context, strategy):
    """`If-Match` and a body's `expected_version` must agree (400 otherwise,
    checked in tests/api). JSON Schema cannot relate a header to a body
    field, so cases with both are generated only when they agree."""

    def agree(case):
        header = (case.headers or {}).get("If-Match")
        body = case.body if isinstance(case.body, dict) else {}
        version = body.get("expected_version")
        if header is None or version is None:
            return True
        return _if_match(header) == version

    return strategy.filter(agree)
