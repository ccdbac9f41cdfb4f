"""Connecting to Ray (no Ray is started here): an aborted Ray Client start is tried again, anything
else ends at once with a message that names the address."""

from __future__ import annotations

from pathlib import Path

import pytest
import ray

from bresa_control.app.cli import main
from bresa_control.app.sweep import CLIENT_CONNECT_ATTEMPTS, RaySession, RayUnavailable


class FakeInit:
    """``ray.init`` that fails with the given errors, one per call, then connects."""

    def __init__(self, *errors: Exception) -> None:
        self.errors = list(errors)
        self.addresses: list[str] = []

    def __call__(self, address: str, **options: object) -> None:
        self.addresses.append(address)
        if self.errors:
            raise self.errors.pop(0)


@pytest.fixture
def fake_ray(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ray, "shutdown", lambda: None)
    monkeypatch.setattr(RaySession, "cpus", lambda self: 2)


def test_an_aborted_ray_client_start_is_tried_again(monkeypatch: pytest.MonkeyPatch, fake_ray: None) -> None:
    init = FakeInit(ConnectionAbortedError("Starting Ray client server failed"))
    monkeypatch.setattr(ray, "init", init)
    with RaySession("ray://127.0.0.1:10001") as session:
        assert session.cpus() == 2
    assert init.addresses == ["ray://127.0.0.1:10001"] * 2


def test_ray_that_cannot_be_reached_ends_with_the_address_and_the_reason(
    monkeypatch: pytest.MonkeyPatch, fake_ray: None
) -> None:
    always = FakeInit(*[ConnectionAbortedError("Starting Ray client server failed")] * CLIENT_CONNECT_ATTEMPTS)
    monkeypatch.setattr(ray, "init", always)
    with pytest.raises(RayUnavailable, match=rf"'ray://h:1' \(attempt {CLIENT_CONNECT_ATTEMPTS}\).*client server"):
        RaySession("ray://h:1").__enter__()
    # Nothing listening is not tried again; neither is a cluster address (only Ray Client aborts).
    for address, error in (("ray://h:1", ConnectionError("ray client connection timeout")),
                           ("10.0.0.9:6379", ConnectionAbortedError("x"))):
        once = FakeInit(error)
        monkeypatch.setattr(ray, "init", once)
        with pytest.raises(RayUnavailable, match="attempt 1"):
            RaySession(address).__enter__()
        assert len(once.addresses) == 1


def test_the_cli_says_which_ray_it_could_not_reach(monkeypatch: pytest.MonkeyPatch, fake_ray: None,
                                                   capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
    monkeypatch.setattr(ray, "init", FakeInit(ConnectionError("Could not find any running Ray instance")))
    out = tmp_path / "e.json"
    assert main(["evaluate", "--controller", "scripted", "--episodes", "2", "--ray", "auto", "--json", str(out),
                 "--no-progress"]) == 2
    assert "could not connect to Ray at 'auto' (attempt 1): Could not find any running" in capsys.readouterr().err
    assert not out.exists()
