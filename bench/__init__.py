"""The fleet benchmark of crlfix.windows: `make bench`, see bench/README.md."""
