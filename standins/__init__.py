"""Local stand-ins that speak Google's and Workflows' protocols, for `make run`, tests and bench.

Never production code paths: the container leaves this package out (.dockerignore).
"""
