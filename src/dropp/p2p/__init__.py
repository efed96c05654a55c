"""Peer-to-peer transfer: signaling between two peers, and the cloud fallback (docs/p2p.md)."""
