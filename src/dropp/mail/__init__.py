"""Outgoing email: SMTP when SMTP_HOST is set, otherwise the server log (development)."""
