"""TensorBoard gets a picture of the validation predictions each epoch: blurred | truth | prediction."""

import cv2
import numpy as np
from helpers import tiny_model_config
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from b2f.lightning_module import PANEL_SAMPLES
from b2f.train import train
from blurgen.core.viz import flow_to_color
from blurgen.shards import ShardReader


def test_each_validation_epoch_logs_a_panel_of_the_first_samples(make_synthetic, tmp_path):
    shards = make_synthetic(4, size=(64, 96), test_count=3)
    module = train(
        shards, tmp_path / "run", tiny_model_config(), epochs=2, crop=(64, 64), val=shards, batch_size=4,
        lr=1e-3, workers=0, progress=False,
    )  # fmt: skip
    (version,) = (tmp_path / "run" / "tb").iterdir()
    events = EventAccumulator(str(version), size_guidance={"images": 0})
    events.Reload()
    panels = events.Images("val/predictions")
    # one a validation epoch, at the step it ended; 1 batch of 4 a training epoch
    assert [e.step for e in panels] == [1, 2] and module.trainer.global_step == 2
    rows = min(PANEL_SAMPLES, 3)  # the val split's first batch holds its 3 samples
    for event in panels:
        assert (event.height, event.width) == (rows * (64 + 2), 3 * 64)  # 2 px of white below each row
    png = np.frombuffer(panels[-1].encoded_image_string, np.uint8)
    picture = cv2.cvtColor(cv2.imdecode(png, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    assert picture.shape == (rows * 66, 192, 3)
    # row 1 (row 0 carries the labels): the sample's central 64×64 crop, as the val loader takes it, and its
    # true flow in colour on its own scale, in one of the two directions
    s = ShardReader(shards, "test").read(1)
    crop = (slice(None), slice(16, 80))
    assert np.array_equal(picture[66:130, :64], s["blurred"][crop])
    truths = []
    for key in ("flow_fwd", "flow_bwd"):
        flow = s[key][crop]
        truths.append(flow_to_color(flow, max(float(np.linalg.norm(flow, axis=2).max()), 1e-6)))
    assert any(np.array_equal(picture[66:130, 64:128], t) for t in truths)
    assert (picture[130:132] == 255).all()  # the gap below the row
