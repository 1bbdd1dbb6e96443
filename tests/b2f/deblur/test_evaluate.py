"""Table 2's evaluation on tiny Gong-style shards: scores against scikit-image directly, the table, the figure."""

import cv2
import skimage.data
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from b2f.deblur.evaluate import evaluate_deblur, format_table
from blurgen.core.images import read_image, write_image
from blurgen.shards import ShardReader
from blurgen.sources.gong import GongOptions, make_gong


def test_evaluate_deblur_scores_rows_and_writes_a_figure(tmp_path):
    for name in ("astronaut", "coffee"):
        write_image(tmp_path / "photos" / f"{name}.png", cv2.resize(getattr(skimage.data, name)(), (96, 64)))
    shards = tmp_path / "gong"
    make_gong(shards, GongOptions(root=str(tmp_path / "photos"), preset="bsd-m"))
    report = evaluate_deblur(shards, device="cpu", figure=tmp_path / "fig.png", progress=False)
    assert report["images"] == 2 and report["preset"] == "bsd-m"
    reader = ShardReader(shards, "test")
    for i, row in enumerate(report["per_image"]):
        s = reader.read(i, fields=("blurred", "sharp"))
        assert row["blurred"]["psnr"] == peak_signal_noise_ratio(s["sharp"], s["blurred"], data_range=255)
        assert row["blurred"]["ssim"] == structural_similarity(s["sharp"], s["blurred"], data_range=255, channel_axis=2)
        assert row["gt"]["psnr"] > row["blurred"]["psnr"]
    assert set(report["rows"]) == {"blurred", "gt", "uniform"}  # no checkpoint: no B2F-net row
    table = format_table(report)
    assert "| blurred input |" in table and "| B2F (paper) | 25.23 | 0.786 |" in table
    assert read_image(tmp_path / "fig.png").shape == (2 * 66, 4 * 96, 3)  # blurred | flow | deblurred | sharp
