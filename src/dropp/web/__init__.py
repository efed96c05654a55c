"""Dropp's own web pages for people: the landing page and the API docs UI, with their static
files."""
