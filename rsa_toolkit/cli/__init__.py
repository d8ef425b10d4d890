"""The ``rsa-toolkit`` command line: thin layers over the library's public functions."""
