"""Camera URLs often carry a password (``rtsp://user:secret@cam/...``): what may be shown of them."""

from urllib.parse import urlsplit, urlunsplit


def redact_url(url: str) -> str:
    """The URL with any password replaced by ``***``, for API answers, the audit log and logs."""
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return "<unparseable URL>"
    if password is None:
        return url
    host_port = parts.netloc.rsplit("@", 1)[-1]
    netloc = f"{parts.username or ''}:***@{host_port}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
