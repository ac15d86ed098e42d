"""The `testenv` command line: what CI pipelines and people use to bring
environments up, follow their tests, and report results (see main.py)."""
