"""
The status endpoint's root: its paths taken exactly (L{StatusRoot}).
"""

from __future__ import annotations

from typing import Any

from twisted.web.resource import Resource

NOT_HERE = b"not found: the status endpoint serves / (JSON) and /metrics only\n"


class NotHere(Resource):
    """Any other path: 404, saying which there are (plain text, the same bytes under every Twisted)."""

    isLeaf = True

    def render_GET(self, request: Any) -> bytes:
        request.setResponseCode(404)
        request.setHeader(b"content-type", b"text/plain; charset=utf-8")
        return NOT_HERE

    def render_HEAD(self, request: Any) -> bytes:
        # Its GET's headers, no body: a body returned to a HEAD, Twisted logged a line a request
        # ('... is returning a message body. I think I'll eat it.'), a log without bound.
        self.render_GET(request)
        request.setHeader(b"content-length", b"%d" % len(NOT_HERE))
        return b""


class StatusRoot(Resource):
    """
    C{/} and C{/metrics}, exactly (a query string aside, as for any page):
    a further path segment is no page of ours (404).  Twisted's leaves take
    whatever follows them, so C{//metrics} (the empty segment, then
    C{metrics}) answered the JSON page, and C{/metrics/} or C{/metrics/x}
    the metrics.  A segment's percent-escapes are decoded before it is
    looked up: C{/metrics%2f} is the segment C{metrics/}, no page either.
    A request target not beginning with C{/} is none of ours: Twisted takes
    the segments from its second byte on, whatever its first, so
    C{GET xmetrics} was the metrics, C{GET x} the JSON page (an absolute
    URI, C{http://host/metrics}, is not taken either: a proxy's form).
    """

    def getChildWithDefault(self, path: bytes, request: Any) -> Any:
        if request.postpath or not request.path.startswith(b"/"):
            # (Twisted has taken this segment off postpath: what is left follows it.)
            return NotHere()
        return Resource.getChildWithDefault(self, path, request)

    def getChild(self, path: bytes, request: Any) -> Any:
        return NotHere()
