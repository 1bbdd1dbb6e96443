"""Peak memory of b2f-predict's network pass per megapixel (CPU): each size in a fresh process, peak RSS
(ru_maxrss) after the forward pass minus the same process's RSS before it, for the paper-size B2F-net with
random weights. Usage: python bench/predict_memory.py [SIDE ...]"""

import subprocess
import sys

CHILD = """if True:
    import resource, sys, dataclasses
    import numpy as np, torch
    torch.set_num_threads(2)
    from b2f.model import ModelConfig, build_model
    from b2f.predict import predict_flow
    model = build_model(dataclasses.asdict(ModelConfig())).eval()
    side = int(sys.argv[1])
    rgb = np.random.default_rng(0).integers(0, 256, (side, side, 3), dtype=np.uint8)
    predict_flow(model, rgb[:64, :64], torch.device("cpu"))  # allocator and kernels warmed up
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    predict_flow(model, rgb, torch.device("cpu"))
    print(before, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def main(sides):
    print(f"{'image':>11} {'MP':>6} {'peak RSS MiB':>13} {'pass MiB':>9} {'MiB/MP':>7}")
    for side in sides:
        out = subprocess.run([sys.executable, "-c", CHILD, str(side)], capture_output=True, text=True, check=True)
        before, peak = (int(v) / 1024 for v in out.stdout.split())  # KiB -> MiB
        mp = side * side / 1e6
        print(f"{side:>5}x{side:<5} {mp:6.3f} {peak:13.0f} {peak - before:9.0f} {(peak - before) / mp:7.0f}")


if __name__ == "__main__":
    main([int(s) for s in sys.argv[1:]] or [512, 1024, 1536])
