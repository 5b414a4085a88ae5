from twisted.application.reactors import Reactor
from twisted.application.service import ServiceMaker

serialgw = ServiceMaker(
    "serialgw",
    "serialgw.app.tap",
    "Serial console gateway: serial lines to telnet and raw TCP clients",
    "serialgw",
)

serialgwReactor = Reactor(
    "serialgw",
    "serialgw.app.reactor",
    "epoll without a per-event logging context (what twistd serialgw runs by default)",
)
