"""
Everything that reaches a line from outside: telnet and RFC 2217
sessions, raw, netconsole, files/pipes/stdio, client ptys, SSH, TLS,
the escape menu, console logs, the output guard and the listener factories.
"""
