import pytest

from .servers import PG_BIN, Cluster


@pytest.fixture
def cluster():
    """A Postgres cluster of our own, which a test may stop and start."""
    if not (PG_BIN / "initdb").exists():
        pytest.skip(f"no Postgres server binaries in {PG_BIN} (set PG_BIN)")
    cluster = Cluster()
    try:
        cluster.create()
        yield cluster
    finally:
        cluster.destroy()
