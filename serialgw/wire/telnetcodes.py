"""
Telnet's codes (RFC 854, 855, 856, 858, 1184's commands): commands, the options a serial
console speaks, and the byte strings the codec looks for.
"""

from __future__ import annotations

# Commands (RFC 1184, LINEMODE's, sent by a client with localchars too: telnet's "send eof", "send abort").
EOF = 236
SUSP = 237
ABORT = 238

# Commands (RFC 854).
SE = 240
NOP = 241
DM = 242
BRK = 243
IP = 244
AO = 245
AYT = 246
EC = 247
EL = 248
GA = 249
SB = 250
WILL = 251
WONT = 252
DO = 253
DONT = 254
IAC = 255

# Options.
BINARY = 0
ECHO = 1
SGA = 3
TTYPE = 24
NAWS = 31

IAC_B = b"\xff"
DM_B = b"\xf2"
IAC_IAC = b"\xff\xff"
CR = b"\r"
