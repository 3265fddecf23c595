"""The domain: the field schema, values people type, records, lookups and queries. Pure: no I/O."""
