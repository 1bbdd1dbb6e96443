"""Helpers the test modules import (pytest puts tests/ on the path, see setup.cfg)."""

from blurgen.cli import main


def invoke(command, capsys, *args):
    """Run a console script's function (``main(argv)``) in-process: (exit code, stdout, stderr)."""
    try:
        command([str(a) for a in args])
        code = 0
    except SystemExit as e:
        code = e.code
    out, err = capsys.readouterr()
    return code, out, err


def blurgen(capsys, *args):
    """Run `blurgen ARGS` in-process: (exit code, stdout, stderr)."""
    return invoke(main, capsys, *args)


def error_line(err):
    """The one `error:` line a failed run ends with (a progress bar may stand before it), no traceback."""
    lines = [line for line in err.splitlines() if line.strip()]
    assert "Traceback" not in err and [line for line in lines if "error" in line.lower()] == lines[-1:], err
    assert lines[-1].startswith("error: "), err
    return lines[-1]


def tiny_model_config():
    """A small B2F-net (every part present, few channels): a training step takes ~0.1 s on one core."""
    import dataclasses

    from b2f.model import ModelConfig

    return dataclasses.asdict(
        ModelConfig(
            enc_channels=(8, 8, 12, 12, 16, 16),
            rb_growth=(4,) * 6,
            stn_channels=8,
            flow_widths=((8,) * 5,) * 6,
            context_widths=(8,) * 6,
            corr_range=2,
        )
    )
