"""Examples to start from: ``tickwork worker --import examples.tasks``."""
