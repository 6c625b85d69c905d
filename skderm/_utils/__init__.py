"""Infrastructure shared by every layer: one helper of each kind (atomic writes,
file hashing, LRU caching, output-path checks). Imports nothing above it."""
