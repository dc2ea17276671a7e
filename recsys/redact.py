"""The one redaction of secrets in URLs: every URL the service prints or logs goes through `redact_url`.

A store URL may carry a password (`redis://:s3cret@host:6379/0`, or `?password=` in the query);
banners, logs and error messages show the URL with the password replaced by `***`.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

MASK = "***"
_SECRET_PARAMS = {"password", "passwd", "pwd", "pass", "token", "secret"}
_USERINFO = re.compile(r"(?<=://)([^@/?#]*)@")


def redact_url(url: str) -> str:
    """`url` without its password (the user name is kept) and without secret query parameters."""
    try:
        parts = urlsplit(url)
        netloc = parts.netloc
        if parts.password is not None:
            host = parts.hostname or ""
            if ":" in host:  # IPv6 literal
                host = f"[{host}]"
            netloc = f"{parts.username or ''}:{MASK}@{host}" + (f":{parts.port}" if parts.port else "")
        query = parts.query
        if query:
            pairs = parse_qsl(query, keep_blank_values=True)
            if any(k.lower() in _SECRET_PARAMS for k, _ in pairs):
                query = urlencode([(k, MASK if k.lower() in _SECRET_PARAMS else v) for k, v in pairs], safe="*")
        out = urlunsplit(parts._replace(netloc=netloc, query=query))
        return out.replace(":", "://", 1) if "://" in url and "://" not in out else out  # unix:///path
    except ValueError:  # unparsable (a bad port...): mask whatever stands before an @
        return _USERINFO.sub(lambda m: (m.group(1).split(":", 1)[0] + f":{MASK}@") if ":" in m.group(1)
                             else f"{MASK}@", url)
