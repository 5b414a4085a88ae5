"""
bench/run.py's parts, one idea a module: the machine looked at (machine),
the traffic driven and timed (traffic), the servers under test (servers),
the scenarios and their rounds (scenarios), what is printed and judged
(report).  bench/run.py is the command line.
"""
