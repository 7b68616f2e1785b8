import shutil
import signal
import socket
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # tests/storekit.py is imported by every store test


# A shell starting the suite in the background (`cmd &` without job control) ignores SIGINT, and every process the
# tests start would inherit that: the tests that interrupt a sweep or a server with SIGINT could never pass. A
# handler here resets to the default in each child at exec, as when the suite runs in a terminal.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(autouse=True)
def _data_outside_the_checkout(monkeypatch, tmp_path_factory) -> None:
    """Prepared datasets, corpora and embedding caches go to a temp folder, never into the checkout's
    datasets/data (a test that needs its own folder sets VDBBENCH_DATA_DIR again)."""
    monkeypatch.setenv("VDBBENCH_DATA_DIR", str(tmp_path_factory.getbasetemp() / "shared-data"))


@pytest.fixture
def failing_store(monkeypatch) -> None:
    """The exact store made to fail at a chosen step (tests/storekit.FailingStore), registered as "failing"."""
    from vdbbench.stores import ADAPTERS

    monkeypatch.setitem(ADAPTERS, "failing", "storekit:FailingStore")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def milvus_server(tmp_path_factory) -> str:
    """A real Milvus standalone server (PyPI ``milvus`` 2.3.x) shared by the session; yields its URL.

    Data and logs live in a pytest temp dir; the SDK port is a free one; every component advertises
    127.0.0.1 (Milvus 2.3's gRPC servers still bind all interfaces, see docker/README.md). The server is
    stopped and its data dir removed at the end of the session, also when tests failed.
    """
    try:
        from milvus import MilvusServer, MilvusServerConfig
    except ImportError:
        pytest.fail("the Milvus server tests need PyPI milvus>=2.3.5,<2.4 (test extra): pip install 'milvus==2.3.5'")
    data = tmp_path_factory.mktemp("milvus-server")
    server = MilvusServer(MilvusServerConfig(data_dir=str(data)))
    server.set_base_dir(str(data))
    server.config.set("proxy_port", free_port())
    for component in ("rootCoord", "proxy", "queryCoord", "queryNode", "indexCoord", "indexNode", "dataCoord",
                      "dataNode"):  # fmt: skip
        server.config.set(f"{component}.ip", "127.0.0.1")
    try:
        server.start()
        yield f"http://127.0.0.1:{server.listen_port}"
    finally:
        server.stop()
        shutil.rmtree(data, ignore_errors=True)
