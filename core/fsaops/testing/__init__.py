"""The testing kit for plugin authors (fixtures, conformance suite, strategies)."""
