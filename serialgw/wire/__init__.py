"""
Byte codecs only: the telnet wire (parser, Q-method option negotiation)
and RFC 2217 com port codes.  Nothing here knows a line, a device or a
client session.
"""
