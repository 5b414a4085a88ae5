"""
The process: twistd options (C{tap}), the service that builds lines from
configurations, the reactor, the status endpoint, systemd notification,
logs and C{--check}.
"""
