"""The shared base of blurgen and b2f: errors, device, files, image/flow IO, colour coding, CLI helpers
and flow operations, one copy each. It imports nothing else of the project."""
