import pytest
import torch


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Two threads on a busy 2-core machine are ~10× slower than one (OpenMP spin-waits); module-wide,
    so the module's pipeline fixture runs under it too."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
