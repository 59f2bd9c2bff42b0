"""Typed page contexts -> HTML string -> PDF bytes; the report as an email."""
