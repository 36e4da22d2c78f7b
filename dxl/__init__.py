"""The ``dxl`` command line: the one package that knows every layer (verifier, node, api) and that none of
them imports. :mod:`dxl.main` is the entry point."""
