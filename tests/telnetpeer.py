"""
The far end of a telnet connection, for tests: the options a gateway's
telnet client offers (L{OFFER}) and the answer of a peer that agrees
(L{AGREE}).
"""

from __future__ import annotations

from serialgw.wire.rfc2217 import COM_PORT_OPTION
from serialgw.wire.telnet import BINARY, DO, ECHO, IAC, SGA, WILL, WONT

# What a telnet client of the gateway sends first: WILL ECHO, SGA, BINARY;
# DO SGA, BINARY, COM-PORT.
OFFER = bytes([IAC, WILL, ECHO, IAC, WILL, SGA, IAC, WILL, BINARY,
               IAC, DO, SGA, IAC, DO, BINARY, IAC, DO, COM_PORT_OPTION])
# A peer agreeing to all of it but COM-PORT, of which it says nothing.
AGREE = bytes([IAC, DO, ECHO, IAC, DO, SGA, IAC, DO, BINARY, IAC, WILL, SGA, IAC, WILL, BINARY])
# A plain telnet peer refusing COM-PORT (RFC 2217).
WONT_COM_PORT = bytes([IAC, WONT, COM_PORT_OPTION])

