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
