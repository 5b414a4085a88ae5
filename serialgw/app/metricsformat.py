"""
/metrics in the format the scraper asks for: Prometheus text (0.0.4) by
default, OpenMetrics 1.0 when the request's Accept header prefers it, as
Prometheus's does (C{application/openmetrics-text;version=1.0.0,...,
text/plain;version=0.0.4;q=0.5,...}).

Each with its exact Content-Type, whatever prometheus_client's version:
its C{CONTENT_TYPE_LATEST} was the label of what its own server sends
when asked for the text format 1.0.0 with an escaping scheme
(C{text/plain; version=1.0.0; charset=utf-8} since 0.22), and the page
said that of a body asked for by nobody, in the 0.0.4 form, with no
escaping named.  OpenMetrics ends with C{# EOF}, and a counter's family
is named without C{_total} (C{# TYPE serialgw_breaks counter}) where its
samples have it (C{serialgw_breaks_total{line="a"} 0.0}).
"""

from __future__ import annotations

from typing import Any, Optional

from twisted.web.resource import Resource

TEXT_TYPE = b"text/plain; version=0.0.4; charset=utf-8"
OPENMETRICS_TYPE = b"application/openmetrics-text; version=1.0.0; charset=utf-8"


def _ranges(accept: bytes) -> list[tuple[str, dict[str, str], float]]:
    """The media ranges of an Accept header: type, parameters, quality (1 unless given; 0 for one unreadable)."""
    found = []
    for item in accept.decode("latin-1").split(","):
        kind, *params = (p.strip() for p in item.split(";"))
        values = {}
        for param in params:
            key, _, value = param.partition("=")
            values[key.strip().lower()] = value.strip().strip('"')
        try:
            quality = float(values.pop("q", "1"))
        except ValueError:
            quality = 0.0
        found.append((kind.lower(), values, quality if 0 <= quality <= 1 else 0.0))
    return found


def wantsOpenMetrics(accept: Optional[bytes]) -> bool:
    """
    Whether a request's Accept header prefers OpenMetrics 1.x (no version,
    or a version 1.x) to the Prometheus text format (at least as high a
    quality, and above 0); no header, C{*/*} or C{text/plain}: the text.
    """
    if not accept:
        return False
    ranges = _ranges(accept[:4096])
    openMetrics = max((q for kind, params, q in ranges if kind == "application/openmetrics-text"
                       and params.get("version", "1").split(".")[0] == "1"), default=0.0)
    text = max((q for kind, _, q in ranges if kind == "text/plain"), default=0.0)
    return openMetrics > 0 and openMetrics >= text


class MetricsFormats(Resource):
    """/metrics: the page of the format the request asks for (each its own L{ThrottledPage} under the status site)."""

    isLeaf = True

    def __init__(self, text: Any, openMetrics: Any) -> None:
        Resource.__init__(self)
        self.text = text
        self.openMetrics = openMetrics

    def pages(self) -> tuple[Any, Any]:
        return self.text, self.openMetrics

    def render(self, request: Any) -> Any:
        return (self.openMetrics if wantsOpenMetrics(request.getHeader(b"accept")) else self.text).render(request)
