from twisted.application.service import ServiceMaker

serialgw = ServiceMaker(
    "serialgw",
    "serialgw.tap",
    "Serial console gateway: serial lines to telnet and raw TCP clients",
    "serialgw",
)
