"""
A reactor a test makes for itself (not the one trial runs), closed when
the test is done.

Twisted makes a reactor once a process and never closes it: each one a
test made and only its epoll descriptor closed left its waker's pipe (2
descriptors) open for good; tests.app left 146 descriptors so a run
(race27), and run again and again in one process (trial
--until-failure) it passed 1024 in its 8th round, where test_ptyreload's
select() failed ('filedescriptor out of range in select()').
"""

from __future__ import annotations

from typing import Any, TypeVar

R = TypeVar("R")


def closeReactor(reactor: Any) -> None:
    """
    Close what C{reactor} holds of its own: its internal readers (its
    waker's pipe, a child's exit watch not yet fired), as Twisted's
    ReactorBuilder does with the reactors of its tests, then its epoll
    descriptor. (A threaded one-shot reactor's helper is stopped first,
    by its test.)
    """
    for reader in list(reactor._internalReaders):
        reactor.removeReader(reader)
        reader.connectionLost(None)
    reactor._internalReaders.clear()
    reactor.waker = None
    reactor._poller.close()


def ownReactor(case: Any, reactor: R) -> R:
    """C{reactor}, closed (L{closeReactor}) when C{case}'s test is done."""
    case.addCleanup(closeReactor, reactor)
    return reactor
