"""
What the gateway is told: frozen value objects, the listener grammar,
the TOML file.  Imports nothing else of serialgw.
"""
