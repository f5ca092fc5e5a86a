"""The fleet benchmark of crlfix.windows (issue 7): `make bench`, see bench/README.md."""
