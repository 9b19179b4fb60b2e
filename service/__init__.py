"""Mailmoat SMTP gateway: sockets, disk, clocks and the command line live here."""
