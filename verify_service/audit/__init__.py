"""The append-only, hash-chained audit log, anchored outside the database by signed checkpoints."""
