"""b2f: B2F-net, optical flow from a single motion-blurred image (model, loss, training, evaluation)."""
