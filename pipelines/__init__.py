"""End-to-end runs that call blurgen and b2f through their public functions (DESIGN.md)."""
