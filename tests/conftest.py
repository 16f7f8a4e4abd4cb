import pytest


@pytest.fixture
def one_torch_thread():
    """Tiny tensors run fastest on one thread, and several threads on a busy 2-core CPU are far slower still."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
