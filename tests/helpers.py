"""Helpers the test modules import (pytest puts tests/ on the path, see setup.cfg)."""

from blurgen.cli import main


def blurgen(capsys, *args):
    """Run `blurgen ARGS` in-process: (exit code, stdout, stderr)."""
    try:
        main([str(a) for a in args])
        code = 0
    except SystemExit as e:
        code = e.code
    out, err = capsys.readouterr()
    return code, out, err


def error_line(err):
    """The one `error:` line a failed run ends with (a progress bar may stand before it), no traceback."""
    lines = [line for line in err.splitlines() if line.strip()]
    assert "Traceback" not in err and [line for line in lines if "error" in line.lower()] == lines[-1:], err
    assert lines[-1].startswith("error: "), err
    return lines[-1]
