"""Dropp's desktop client: an HTTP client of the public API, sign-in, transfers, two-way sync
and the client commands of `dropp`.

Nothing here imports the server's packages: the client talks to a server only over HTTP, and
installs without the server's dependencies (tests/client/test_boundary.py holds it to that).
"""
