"""Use cases of model operations, one module per concern; exceptions live beside what raises them."""
