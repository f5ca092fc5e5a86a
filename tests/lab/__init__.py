"""The lab's revocation world: a "public" PKI, its CRL/AIA web server, a real squid, and the models of
CryptoAPI (revocation retrieval through WinHTTP) and Schannel (TLS handshake with revocation checking) that
the Windows twin (``tests/twin``) calls. See ``tests/lab/README.md``.
"""
