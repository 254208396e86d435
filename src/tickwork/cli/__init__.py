"""The ``tickwork`` command line."""
