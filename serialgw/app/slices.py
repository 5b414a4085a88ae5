"""
The status endpoint's pages rendered a slice of lines at a time: each
C{next()} of a page's parts covers at most SLICE_LINES lines (fewer when
they have many clients), and the status endpoint (L{ThrottledPage}) takes
one part a turn of the reactor.  A whole page of a 1024-line farm was one
block of the reactor: 90-150 ms for the JSON, 140 for /metrics, every line
waiting meanwhile.
"""

from __future__ import annotations

import json
from typing import Any, Callable, Iterable, Iterator, Optional

# The most lines, and clients of them, one part of a page covers.
SLICE_LINES = 16
SLICE_CLIENTS = 128


def slices(lines: Iterable[Any]) -> Iterator[list[Any]]:
    """The lines in slices of SLICE_LINES, a slice ending early once its lines have SLICE_CLIENTS clients."""
    part: list[Any] = []
    clients = 0
    for line in lines:
        part.append(line)
        clients += len(line.clients)
        if len(part) >= SLICE_LINES or clients >= SLICE_CLIENTS:
            yield part
            part, clients = [], 0
    if part:
        yield part


def jsonParts(version: str, lines: list[Any], describe: Callable[[Any], dict[str, Any]],
              after: Optional[dict[str, Any]] = None) -> Iterator[bytes]:
    """
    The JSON page, C{{"serialgw": version, "lines": [describe(line), ...]}}
    and the keys of C{after} (in the last part), as C{json.dumps(...,
    indent=2)} writes it, plus a newline: one part a slice of lines (a page
    of up to SLICE_LINES lines is one part).
    """
    text = b'{\n  "serialgw": ' + json.dumps(version).encode() + b',\n  "lines": ['
    first = True
    for part in slices(lines):
        if not first:
            yield text
            text = b","
        texts = ["    " + json.dumps(describe(line), indent=2).replace("\n", "\n    ") for line in part]
        text += b"\n" + ",\n".join(texts).encode()
        first = False
    rest = "".join(f',\n  {json.dumps(key)}: ' + json.dumps(value, indent=2).replace("\n", "\n  ")
                   for key, value in (after or {}).items())
    yield text + (b"]" if first else b"\n  ]") + rest.encode() + b"\n}\n"


class _Families:
    """A registry of given metric families (what generate_latest reads)."""

    def __init__(self, families: list[Any]) -> None:
        self.families = families

    def collect(self) -> list[Any]:
        return self.families


def metricsParts(families: Callable[[list[Any]], list[Any]], lines: list[Any], rest: Any,
                 openMetrics: bool = False) -> Iterator[bytes]:
    """
    Prometheus text as C{generate_latest} writes it for a registry whose
    first collector gives C{families(lines)} and whose others are C{rest}'s:
    C{families} of each slice of lines written family by family (the
    samples of one family together, under its HELP and TYPE once), then
    C{rest} whole (the process's metrics).  One part a slice of lines, then
    their text, then C{rest}'s.  With C{openMetrics}, OpenMetrics text as
    its C{generate_latest} writes it: one C{# EOF} line, at the end.
    """
    from prometheus_client import generate_latest as prometheusText
    from prometheus_client.openmetrics.exposition import generate_latest as openMetricsText

    generate_latest: Callable[[Any], bytes] = openMetricsText if openMetrics else prometheusText

    headers: list[bytes] = []
    samples: list[list[bytes]] = []
    parts = list(slices(lines)) or [[]]
    for number, part in enumerate(parts):
        for index, family in enumerate(families(part)):
            text = generate_latest(_Families([family]))
            # HELP and TYPE, then the samples.
            help_, type_, body = text.split(b"\n", 2)
            body = body.removesuffix(b"# EOF\n")  # (OpenMetrics: the whole page's end, written by rest's text)
            if index == len(headers):
                headers.append(help_ + b"\n" + type_ + b"\n")
                samples.append([])
            samples[index].append(body)
        if number < len(parts) - 1:
            yield b""
    yield b"".join(header + b"".join(body) for header, body in zip(headers, samples, strict=True))
    # (The process's metrics count its descriptors: 3000 on a 1024-line farm.)
    yield generate_latest(rest)
