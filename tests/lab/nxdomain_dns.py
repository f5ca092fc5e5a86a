"""A DNS server that knows no name: every query is answered NXDOMAIN at once (RFC 1035 4.1.1, RCODE 3).

It is the resolver of the lab's proxy that cannot reach the CRL host (tests/lab/squid.py ``no_dns_squid``): a proxy
whose DNS server answers that the public CA's names do not exist (an internal DNS without forwarders to the internet,
lab's choice of the fault), so squid answers its ``ERR_DNS_FAIL`` page (503) straight away. A resolver that does not
answer at all would not do: squid 5.7 then answers only after its DNS timeout, with ``ERR_READ_ERROR`` (502; measured
here), which an audit's time box cuts before it arrives. Runs in the CRL server's process, UDP port 53 of the CRL host's
address.
"""

from __future__ import annotations

import socket
import struct
import threading

DNS_PORT = 53
RCODE_NXDOMAIN = 3


def nxdomain_answer(query: bytes) -> bytes | None:
    """The answer to one query: its ID and question, QR set, RD copied, RA set, RCODE 3; None for what is no query."""
    if len(query) < 12:
        return None
    ident, flags, qdcount = struct.unpack("!HHH", query[:6])
    if flags & 0x8000:  # QR: an answer, not a query
        return None
    answer_flags = 0x8000 | (flags & 0x7900) | 0x0080 | RCODE_NXDOMAIN  # QR, opcode, RD kept; RA; NXDOMAIN
    return struct.pack("!HHHHHH", ident, answer_flags, qdcount, 0, 0, 0) + query[12:]


class NxdomainResolver:
    """The UDP server on ``address:port``; ``start``/``stop`` (a daemon thread)."""

    def __init__(self, address: str, port: int = DNS_PORT) -> None:
        self.address, self.port = address, port
        self._sock: socket.socket | None = None
        self._stopping = threading.Event()

    def start(self) -> NxdomainResolver:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.address, self.port))
        sock.settimeout(0.2)
        self._sock = sock
        threading.Thread(target=self._serve, name="nxdomain-dns", daemon=True).start()
        return self

    def _serve(self) -> None:
        while not self._stopping.is_set() and self._sock is not None:
            try:
                query, peer = self._sock.recvfrom(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            answer = nxdomain_answer(query)
            if answer is not None:
                self._sock.sendto(answer, peer)

    def stop(self) -> None:
        self._stopping.set()
        if self._sock is not None:
            self._sock.close()
            self._sock = None


__all__ = ["DNS_PORT", "NxdomainResolver", "nxdomain_answer"]
