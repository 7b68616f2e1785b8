"""What a store leaves behind: after drop() and close() (twice) no file in its workdir, no process or path it
started; and a handle for client processes never carries the credentials it was given."""

from __future__ import annotations

import os
import shutil
from urllib.parse import urlsplit

import psutil
import pytest
from attachkit import assert_no_secret
from storekit import build_and_search, files_left, small_data

from vdbbench.stores import BuildSpec, StoreError, get_store_class

from . import kit


def _alive(pid: int) -> bool:
    return psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE


@pytest.mark.parametrize("store,case", kit.params(lambda cls: [((kit.k_beyond_case(cls),), "")]))
def test_drop_and_close_leave_nothing(store, case):
    """A fresh instance, not the shared one: its servers, files and paths are gone once it is closed, and a second
    close() is harmless."""
    workdir = kit.new_workdir()
    try:
        s = kit.open_instance(store, workdir)
        try:
            out = build_and_search(s, case.family, "euclidean", case.build, case.search,
                                   data=small_data("euclidean", n=300, dim=8, queries=5))  # fmt: skip
            assert out.recall > 0.5
            pids, paths = s.owned_processes(), s.owned_paths()
            s.drop()
        finally:
            s.close()
        s.close()
        assert [pid for pid in pids if _alive(pid)] == [], "a server the store started still runs"
        assert [p for p in paths if os.path.exists(p)] == [], "a path the store's server wrote is left"
        assert files_left(workdir) == []
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def secret_words(cls) -> list[str]:
    """The user names, passwords and keys in a store's declared ``secrets`` options and ``secret_env``."""
    words = []
    for value in cls.conformance.secrets.values():
        parts = urlsplit(str(value))
        words += [w for w in (parts.username, parts.password) if w]
    for value in cls.conformance.secret_env.values():
        words += [w for w in value.split(":") if len(w) >= 4]
    return words


@pytest.mark.parametrize("store", kit.params(lambda cls: [((), "")] if cls.conformance.secrets else [], engine=False))
def test_client_handle_carries_no_credentials(store, tmp_path, monkeypatch):
    """The handle travels to client processes: it names the server, never a user, password or key."""
    cls = get_store_class(store)
    for name, value in cls.conformance.secret_env.items():
        monkeypatch.setenv(name, value)
    s = cls(tmp_path, dict(cls.conformance.secrets))
    family = kit.default_cases(cls)[0].family
    s.spec = BuildSpec(family, "ip", 8, {p.name: p.default for p in cls.families[family].build})
    handle = s.client_handle()
    assert handle is not None and secret_words(cls)
    assert_no_secret(handle, *secret_words(cls))


@pytest.mark.parametrize(
    "store", kit.params(lambda cls: [((), "")] if cls.conformance.server_env else [], engine=False)
)
def test_a_server_that_does_not_answer_is_a_clear_error(store, tmp_path, monkeypatch):
    """Nothing listens on the discard port: open() fails at once, naming the address and how to point at another."""
    cls = get_store_class(store)
    monkeypatch.setenv(cls.conformance.server_env, "http://127.0.0.1:9")
    s = cls(tmp_path, dict(cls.conformance.options))
    with pytest.raises(StoreError) as refused:
        s.open()
    assert "127.0.0.1:9" in str(refused.value) and cls.conformance.server_env in str(refused.value)
    s.close()
    assert files_left(tmp_path) == []
