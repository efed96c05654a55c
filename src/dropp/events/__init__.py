"""Live events: one Server-Sent Events stream per signed-in client (docs/events.md)."""
