"""The data path's fast parts: uint16 averaging with one rounding pass, and the shared-memory handoff."""

import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from blurgen.blur.average import _round_mean, average_frames
from blurgen.generate import Skipped
from blurgen.parallel import handoff, run_tasks


def exact_mean(frames):
    n = len(frames)
    return ((2 * np.sum(frames, axis=0, dtype=np.int64) + n) // (2 * n)).astype(np.uint8)


def test_rounding_pass_is_exact_for_every_sum_and_frame_count():
    for n in range(1, 258):
        sums = np.arange(255 * n + 1, dtype=np.uint16)
        want = (2 * sums.astype(np.int64) + n) // (2 * n)  # floor(t/n + 1/2)
        assert np.array_equal(_round_mean(sums.reshape(1, -1), n).ravel(), want), n


@pytest.mark.parametrize("n", [1, 2, 7, 8, 257, 258, 300])  # 258+: past what uint16 holds
def test_average_of_frames_matches_exact_integer_mean(n):
    rng = np.random.default_rng(n)
    frames = rng.integers(0, 256, (n, 5, 6, 3), dtype=np.uint8)
    frames[:, 0, 0] = 255  # the largest sum
    frames[:, 0, 1] = 0
    frames[: n // 2, 1, 0], frames[n // 2 :, 1, 0] = 0, 1  # a tie for even n: (n/2)/n = 0.5 -> 1
    want = exact_mean(frames)
    assert average_frames(frames).dtype == np.uint8
    assert np.array_equal(average_frames(frames), want)
    assert np.array_equal(average_frames(list(frames)), want)
    assert np.array_equal(average_frames(f for f in frames), want)  # a generator, consumed once


def test_average_of_nothing_is_an_error():
    with pytest.raises(ValueError, match="no frames"):
        average_frames(iter([]))


def render(task):
    """Arrays over 64 KB (go through /dev/shm), a small one (pickled), lists of samples and skips."""
    if task % 3 == 2:
        return Skipped(f"task {task}")
    rng = np.random.default_rng(task)
    sample = {
        "blurred": rng.integers(0, 256, (128, 192, 3), dtype=np.uint8),
        "flow_fwd": rng.normal(size=(128, 192, 2)).astype(np.float32),
        "valid": np.ones((4, 4), np.uint8),
        "meta": {"task": task},
    }
    return [sample, {**sample, "meta": {"task": -task}}] if task % 3 == 1 else sample


def test_parallel_results_come_back_through_shared_memory_unchanged(monkeypatch):
    mapped = []
    read = handoff._read
    monkeypatch.setattr(handoff, "_read", lambda m: mapped.append(m) or read(m))
    parallel = list(run_tasks(render, range(9), 2))
    assert len(mapped) == 3 + 3 * 2 and all(set(m.arrays) == {"blurred", "flow_fwd"} for m in mapped)
    assert_same_results(parallel, list(run_tasks(render, range(9), 1)))
    assert no_shared_folders_left()


def test_files_of_consumed_results_are_written_over_without_changing_any_result(monkeypatch):
    mapped = []
    read = handoff._read
    monkeypatch.setattr(handoff, "_read", lambda m: mapped.append(m.path) or read(m))
    # ahead=2 keeps ~3 tasks (6 samples) alive at a time; each result is dropped before the next
    for a, b in zip(run_tasks(render, list(range(30)), 2, ahead=2), run_tasks(render, range(30), 1)):
        assert_same_results([a], [b])
    assert len(mapped) == 30 and len(set(mapped)) <= 12  # 30 samples (10 tasks skip, 10 give 2) in <= 12 files


def assert_same_results(parallel, serial, mapped=True):
    assert [type(r) for r in parallel] == [type(r) for r in serial]
    for a, b in zip(parallel, serial):
        if isinstance(a, Skipped):
            assert a == b
            continue
        for x, y in zip(*(([a], [b]) if isinstance(a, dict) else (a, b))):
            assert x["meta"] == y["meta"] and x.keys() == y.keys()
            for k in ("blurred", "flow_fwd", "valid"):
                assert x[k].dtype == y[k].dtype and np.array_equal(x[k], y[k])
            if mapped:
                assert x["blurred"].flags.writeable
                x["blurred"][0, 0] = 7  # mapped memory is ours to change


def no_shared_folders_left():
    return not os.path.isdir(handoff.SHM) or not [p for p in os.listdir(handoff.SHM) if p.startswith("blurgen_")]


def fails_at_3(task):
    if task == 3:
        raise ValueError("task 3 broke")
    return render(task)


def test_bounded_run_keeps_task_order_and_raises_a_workers_error():
    serial = list(run_tasks(render, range(11), 1))
    assert_same_results(list(run_tasks(render, list(range(11)), 2, ahead=2)), serial)
    assert_same_results(list(run_tasks(render, list(range(11)), 1, ahead=2)), serial, mapped=False)
    assert_same_results(list(run_tasks(render, list(range(11)), 2, ahead=1)), serial)  # one at a time
    with pytest.raises(ValueError, match="task 3 broke"):
        list(run_tasks(fails_at_3, list(range(11)), 2, ahead=2))
    assert no_shared_folders_left()


def test_a_result_waits_until_the_main_process_is_fewer_than_ahead_behind():
    with handoff.shared_folder() as folder:
        taken = handoff.taken_count(folder, create=True)
        send = handoff.Sender(render, folder, ahead=2)
        done = []
        worker = threading.Thread(target=lambda: done.append(send(5, 0)))
        worker.start()
        for count in (0, 3):  # result 3 not taken yet: result 5 would be 2 ahead
            taken[0] = count
            worker.join(0.2)
            assert worker.is_alive() and not done
        taken[0] = 4
        worker.join(5)
        assert not worker.is_alive() and handoff.receive(done[0])["meta"] == {"task": 0}
        assert handoff.receive(send(1, 0))["meta"] == {"task": 0}  # within reach: no wait


def test_worker_without_the_folder_pickles_and_a_freed_file_takes_the_next_result(tmp_path):
    sample = render(0)
    assert handoff.Sender(render, str(tmp_path / "elsewhere"))(0, 0)["meta"] == sample["meta"]
    with handoff.shared_folder() as folder:
        folder = Path(folder)
        mapped = handoff.Sender(render, str(folder))(0, 0)
        assert isinstance(mapped, handoff._Mapped) and set(mapped.arrays) == {"blurred", "flow_fwd"}
        back = handoff.receive(mapped)
        assert np.array_equal(back["flow_fwd"], sample["flow_fwd"]) and np.array_equal(back["valid"], sample["valid"])
        [used] = list(folder.iterdir())
        inode = used.stat().st_ino
        del back
        [free] = list(folder.iterdir())  # the arrays are gone: the file is free for the next result
        assert free.name == handoff.FREE + used.name and free.stat().st_ino == inode

        small = {"blurred": np.full((128, 200, 3), 9, np.uint8), "meta": {"task": 6}}
        again = handoff.Sender(lambda t: small, str(folder))(1, 0)  # written over it, and the file cut to size
        assert list(folder.iterdir()) == [used] and used.stat().st_ino == inode
        assert used.stat().st_size == 128 * 200 * 3
        back = handoff.receive(again)
        assert np.array_equal(back["blurred"], small["blurred"]) and back["meta"] == {"task": 6}
    assert not folder.exists() and back["blurred"][5, 5, 0] == 9  # mapped memory outlives the run's folder
    del back  # its file is gone with the folder: nothing to free


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's")
def test_a_worker_reuses_freed_memory_instead_of_faulting_in_fresh_pages_per_frame(tmp_path):
    frame = tmp_path / "frame.png"
    cv2.imwrite(str(frame), np.random.default_rng(0).integers(0, 256, (720, 1280, 3), dtype=np.uint8))
    code = f"""if True:  # in a fresh interpreter: the tuning lasts for the life of the process
        import resource
        from blurgen.core.images import read_image
        from blurgen.parallel.handoff import _keep_freed_memory
        def faults_per_frame():
            read_image({str(frame)!r})
            before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            for _ in range(5):
                read_image({str(frame)!r})
            return (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 5
        print(faults_per_frame())
        _keep_freed_memory()
        print(faults_per_frame())
    """
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    untuned, tuned = map(float, out)
    assert untuned > 675 and tuned < 10  # a 720p frame is 675 pages: faulted in afresh, or reused


def test_workers_waiting_for_a_killed_main_process_exit_and_its_folder_goes(tmp_path):
    code = """if True:
        import time
        from blurgen.parallel import handoff
        from blurgen.parallel import run_tasks
        import test_fast_paths
        for result in run_tasks(test_fast_paths.render, list(range(40)), 2, ahead=2):
            print(handoff._taken[0], flush=True)  # the run's folder
            time.sleep(600)  # a consumer that never comes back: the workers wait at the gate
    """
    main = subprocess.Popen(
        [sys.executable, "-c", code],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": os.path.dirname(__file__)},
    )
    folder = Path(main.stdout.readline().strip())
    time.sleep(1)  # the workers reach the gate
    assert folder.is_dir() and len(list(folder.iterdir())) > 1
    main.kill()
    main.wait()
    for _ in range(100):  # the workers notice within ms; loky's tracker then removes the folder
        if not folder.exists():
            break
        time.sleep(0.1)
    assert not folder.exists()


def children(pid):
    """Pids whose parent is ``pid`` (loky's workers and resource tracker of a run)."""
    found = []
    for entry in os.listdir("/proc"):
        try:
            with open(f"/proc/{entry}/stat") as f:
                if entry.isdigit() and int(f.read().rsplit(")", 1)[1].split()[1]) == pid:
                    found.append(int(entry))
        except (OSError, ValueError, IndexError):
            continue
    return found


def test_idle_workers_and_the_tracker_of_a_killed_run_exit_and_its_folder_goes():
    code = """if True:
        import os, time
        from blurgen.parallel import handoff, run_tasks
        import test_fast_paths
        results = run_tasks(test_fast_paths.render, [0], 2)  # one task: a worker that never gets one
        next(results)
        time.sleep(0.5)  # the task done: both workers idle, waiting for more work
        print(handoff._taken[0], *test_fast_paths.children(os.getpid()), flush=True)
        time.sleep(600)
    """
    main = subprocess.Popen(
        [sys.executable, "-c", code],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": os.path.dirname(__file__)},
    )
    folder, *pids = main.stdout.readline().split()
    assert len(pids) >= 3 and Path(folder).is_dir()  # two workers and loky's resource tracker
    main.kill()  # kill -9: no cleanup in the main process
    main.wait()
    for _ in range(100):
        alive = [
            p for p in pids if os.path.exists(f"/proc/{p}") and "Z" not in open(f"/proc/{p}/stat").read().split()[2]
        ]
        if not alive and not Path(folder).exists():
            break
        time.sleep(0.1)
    assert alive == [] and not Path(folder).exists()


def test_a_rerun_removes_the_folders_of_dead_runs_only(tmp_path, monkeypatch):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    parent = handoff.SHM if os.access(handoff.SHM, os.W_OK) else None
    stale = Path(tempfile.mkdtemp(prefix=f"blurgen_{dead.stdout.strip()}_", dir=parent))
    (stale / "result").write_bytes(b"x" * 100)
    live = Path(tempfile.mkdtemp(prefix=f"blurgen_{os.getppid()}_", dir=parent))  # pytest's parent is alive
    other = Path(tempfile.mkdtemp(prefix="blurgen_notapid_", dir=parent))
    try:
        with handoff.shared_folder() as folder:
            assert Path(folder).name.startswith(f"blurgen_{os.getpid()}_")
        assert not stale.exists() and live.is_dir() and other.is_dir()
    finally:
        for p in (stale, live, other):
            shutil.rmtree(p, ignore_errors=True)
