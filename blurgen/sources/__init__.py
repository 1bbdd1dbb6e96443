"""Where samples come from: the synthetic renderer, Monkaa pairs, high-speed video windows."""
