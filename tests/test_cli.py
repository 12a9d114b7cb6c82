"""The ``layer-explorer`` console script: defaults, plugins, and clear start-up errors."""

from __future__ import annotations

import pytest

from app import cli


def test_defaults_and_plugins(monkeypatch):
    seen = {}

    def fake_run(app, host, port, **options):
        seen.update(app=app, host=host, port=port, **options)

    monkeypatch.setattr("uvicorn.run", fake_run)
    monkeypatch.delenv("LAYER_EXPLORER_PLUGINS", raising=False)
    cli.main(["--plugin", "examples/my_layers.py"])
    assert seen["host"] == "127.0.0.1" and seen["port"] == 8000
    assert seen["app"].state.settings.device == "cpu"
    assert "ScaledTanh" in seen["app"].state.registry
    # the limits of app/serving.py reach uvicorn
    assert seen["timeout_keep_alive"] == 5 and seen["h11_max_incomplete_event_size"] == 16 * 1024
    assert seen["http"].header_timeout_s == 10.0 and seen["timeout_graceful_shutdown"] == 3


def test_plugins_from_environment(monkeypatch):
    seen = {}
    monkeypatch.setattr("uvicorn.run", lambda app, host, port, **options: seen.update(app=app))
    monkeypatch.setenv("LAYER_EXPLORER_PLUGINS", "examples/my_layers.py")
    cli.main(["--port", "9000"])
    assert "GatedLinear" in seen["app"].state.registry


@pytest.mark.parametrize("argv, words", [
    (["--device", "cuda"], "no CUDA device"),
    (["--plugin", "no_such_plugin_module"], "cannot import plugin"),
])
def test_start_up_errors_exit_cleanly(monkeypatch, capsys, argv, words):
    monkeypatch.setattr("uvicorn.run", lambda *a, **k: pytest.fail("must not start"))
    monkeypatch.delenv("LAYER_EXPLORER_PLUGINS", raising=False)
    with pytest.raises(SystemExit) as exc:
        cli.main(argv)
    assert exc.value.code == 2
    assert words in capsys.readouterr().err
