"""
The serial side: termios/ioctl helpers, tty and pty ports, the local
device (write queue, breaks, reopening), UUCP locks, and remote devices.
The only importers of pyserial; it never imports C{clients} or C{line}
(it knows its line as an L{serialgw.interfaces.IDeviceSink}).
"""
