"""fsaops's pytest plugin, registered under ``pytest11``: inert until used."""
