"""
The hub: one serial line (L{serialgw.line.hub.Line}), the roles of its
clients, and the replay tail.  It knows its device and clients only through
L{serialgw.interfaces}; it imports none of C{clients}, C{devices}, C{wire}.
"""
