"""blurgen: motion-blur training data with flow labels, written as HDF5 shards (see DESIGN.md)."""

__version__ = "0.1.0"
