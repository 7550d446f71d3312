"""The data layer: the only code that knows the table's keys and access patterns."""
