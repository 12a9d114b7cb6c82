"""The ``layer-explorer`` console script: defaults, plugins, workers, environment, clear start-up errors."""

from __future__ import annotations

import os
import re
import socket
from pathlib import Path

import pytest
import torch
from uvicorn.importer import import_from_string

from app import cli
from app.core import config

#: the real check, for the test of a taken port (the others run with the port taken or not: another
#: server on this machine may hold the default port 8000)
REAL_PORT_PROBLEM = cli.port_problem


@pytest.fixture(autouse=True)
def _any_port(monkeypatch):
    monkeypatch.setattr(cli, "port_problem", lambda host, port: None)


@pytest.fixture(autouse=True)
def _isolate():
    # main() writes its options into os.environ and sets torch's threads, as it does in a real
    # server process; give the rest of the suite its own back
    env, threads = dict(os.environ), torch.get_num_threads()
    yield
    os.environ.clear()
    os.environ.update(env)
    torch.set_num_threads(threads)


def _plugins(app) -> list[str]:
    return [Path(p).name for p in app.state.settings.plugins]


def fake_uvicorn(seen: dict):
    """uvicorn.run as far as loading goes: one process calls the factory here, several only record it."""

    def run(app, **kw):
        seen.update(kw, target=app)
        if kw.get("workers", 1) == 1:
            seen["app"] = import_from_string(app)() if kw.get("factory") else app

    return run


def test_defaults_and_plugins(monkeypatch):
    seen = {}
    monkeypatch.setattr("uvicorn.run", fake_uvicorn(seen))
    monkeypatch.delenv("LAYER_EXPLORER_PLUGINS", raising=False)
    cli.main(["--plugin", "examples/my_layers.py"])
    assert seen["host"] == "127.0.0.1" and seen["port"] == 8000
    assert seen["target"] == "app.server:worker_app" and seen["factory"] is True
    assert seen["app"].state.settings.device == "cpu"
    # the plugin was checked in a short-lived process (it imports torch), and goes to the workers
    assert _plugins(seen["app"]) == ["my_layers.py"]
    pool = cli.Settings.from_env().worker_count()
    assert seen["app"].state.pool.threads == cli.threads_per_worker(cli.available_cpus(), pool)


def test_plugins_from_environment(monkeypatch):
    seen = {}
    monkeypatch.setattr("uvicorn.run", fake_uvicorn(seen))
    monkeypatch.setenv("LAYER_EXPLORER_PLUGINS", "examples/my_layers.py")
    cli.main(["--port", "9000"])
    assert _plugins(seen["app"]) == ["my_layers.py"]


@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize(
    "argv, words",
    [
        (["--device", "cuda"], "no CUDA device"),
        (["--plugin", "no_such_plugin_module"], "cannot import plugin"),
    ],
)
def test_start_up_errors_exit_cleanly(monkeypatch, capfd, argv, words, workers):
    seen = {}
    monkeypatch.setattr("uvicorn.run", fake_uvicorn(seen))
    monkeypatch.delenv("LAYER_EXPLORER_PLUGINS", raising=False)
    with pytest.raises(SystemExit) as exc:
        cli.main([*argv, "--http-workers", str(workers)])
    assert exc.value.code == 2
    err = capfd.readouterr().err
    assert words in err and "Traceback" not in err
    assert "app" not in seen  # no server was built
    if workers > 1:
        assert not seen  # checked in a child process before uvicorn started any worker


def test_host_and_port_from_environment(monkeypatch):
    seen = {}
    monkeypatch.setattr("uvicorn.run", lambda app, **kw: seen.update(host=kw["host"], port=kw["port"]))
    monkeypatch.delenv("LAYER_EXPLORER_PLUGINS", raising=False)
    monkeypatch.setenv("LAYER_EXPLORER_HOST", "0.0.0.0")
    monkeypatch.setenv("LAYER_EXPLORER_PORT", "9123")
    cli.main([])
    assert seen == {"host": "0.0.0.0", "port": 9123}
    cli.main(["--host", "127.0.0.1", "--port", "9124"])  # the command line wins over the environment
    assert seen == {"host": "127.0.0.1", "port": 9124}


def test_http_workers_get_the_options_through_the_environment(monkeypatch):
    seen = {}
    monkeypatch.setattr("uvicorn.run", lambda app, **kw: seen.update(app=app, **kw))
    monkeypatch.delenv("LAYER_EXPLORER_PLUGINS", raising=False)
    cli.main(["--http-workers", "2", "--memory-limit", "1234567", "--plugin", "examples/my_layers.py"])
    # uvicorn needs an import string and a factory to start several processes
    assert seen["app"] == cli.WORKER_FACTORY == "app.server:worker_app"
    assert seen["factory"] is True and seen["workers"] == 2
    # the CPUs are shared out over every torch worker of both HTTP processes
    pool = cli.Settings.from_env().worker_count()
    threads = cli.threads_per_worker(cli.available_cpus(), 2 * pool)
    assert os.environ["LAYER_EXPLORER_HTTP_WORKERS"] == "2"
    assert os.environ["LAYER_EXPLORER_TORCH_THREADS"] == str(threads)
    assert threads * 2 * pool <= max(cli.available_cpus(), 2 * pool)
    assert os.environ["LAYER_EXPLORER_MEMORY_LIMIT"] == "1234567"
    # what each worker process then does with that environment
    app = import_from_string(seen["app"])()
    assert app.state.settings.memory_limit_bytes == 1234567
    assert _plugins(app) == ["my_layers.py"]
    assert app.state.pool.threads == threads  # each of its torch workers


def test_http_workers_from_environment(monkeypatch):
    seen = {}
    monkeypatch.setattr("uvicorn.run", lambda app, **kw: seen.update(kw))
    monkeypatch.delenv("LAYER_EXPLORER_PLUGINS", raising=False)
    monkeypatch.setenv("LAYER_EXPLORER_HTTP_WORKERS", "3")
    monkeypatch.setenv("LAYER_EXPLORER_TORCH_THREADS", "1")
    cli.main([])
    assert seen["workers"] == 3 and os.environ["LAYER_EXPLORER_TORCH_THREADS"] == "1"


@pytest.mark.parametrize(
    "argv, env, words",
    [
        (["--http-workers", "0"], {}, "--http-workers must be at least 1"),
        ([], {"LAYER_EXPLORER_HTTP_WORKERS": "many"}, "LAYER_EXPLORER_HTTP_WORKERS='many' is not a whole number"),
        (["--port", "70000"], {}, "--port must be between 1 and 65535"),
    ],
)
def test_bad_worker_or_port_settings_exit_cleanly(monkeypatch, capsys, argv, env, words):
    monkeypatch.setattr("uvicorn.run", lambda *a, **k: pytest.fail("must not start"))
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(SystemExit) as exc:
        cli.main(argv)
    assert exc.value.code != 0
    assert words in capsys.readouterr().err + str(exc.value.code)


@pytest.mark.parametrize(
    "cpu_max, cap",
    [
        ("150000 100000\n", 2),  # docker run --cpus 1.5: two threads' worth, rounded up
        ("50000 100000\n", 1),
        ("400000 100000\n", 4),
        ("max 100000\n", None),  # no quota: the affinity mask decides
        (None, None),  # no cgroup v2 file at all
    ],
)
def test_available_cpus_honours_the_cgroup_quota(tmp_path, cpu_max, cap):
    if cpu_max is not None:
        (tmp_path / "cpu.max").write_text(cpu_max)
    affinity = len(os.sched_getaffinity(0))
    assert cli.available_cpus(tmp_path) == (affinity if cap is None else min(affinity, cap))


@pytest.mark.parametrize("cpus, workers, threads", [(8, 1, 8), (8, 2, 4), (8, 3, 2), (2, 4, 1), (1, 1, 1)])
def test_threads_per_worker_never_oversubscribes(cpus, workers, threads):
    assert cli.threads_per_worker(cpus, workers) == threads
    assert cli.threads_per_worker(cpus, workers) * workers <= max(cpus, workers)


def test_help_lists_every_setting_including_the_environment_only_ones(capsys):
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    text = capsys.readouterr().out
    # every variable the settings read, with or without a command-line option
    names = set(re.findall(r"LAYER_EXPLORER_[A-Z_]+[A-Z]", Path(config.__file__).read_text()))
    assert {"LAYER_EXPLORER_WORKERS", "LAYER_EXPLORER_MEMORY_BUDGET", "LAYER_EXPLORER_QUEUE"} <= names
    missing = sorted(name for name in names if name not in text)
    assert not missing, f"--help does not mention {missing}"


def test_a_taken_port_is_refused_before_anything_starts(monkeypatch, capfd):
    monkeypatch.setattr(cli, "port_problem", REAL_PORT_PROBLEM)
    seen: dict = {}
    monkeypatch.setattr("uvicorn.run", fake_uvicorn(seen))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(SystemExit) as exc:
            cli.main(["--port", str(port), "--http-workers", "2"])
    assert exc.value.code == 2
    err = capfd.readouterr().err
    assert f"cannot listen on 127.0.0.1:{port}" in err and "--port" in err and "Traceback" not in err
    assert not seen  # neither uvicorn nor the start-up check ran: no worker imported torch


@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize(
    "source, words",
    [
        (
            "from app.plugins import register_layer\n\n\n@register_layer\nclass Broken(torch.nn.Module):\n    pass\n",
            "NameError: name 'torch' is not defined (broken_plugin.py, line 5)",
        ),
        ("raise RuntimeError('no licence file')\n", "RuntimeError: no licence file (broken_plugin.py, line 1)"),
        ("def f(:\n", "SyntaxError"),
    ],
    ids=["NameError", "RuntimeError", "SyntaxError"],
)
def test_a_plugin_that_raises_on_import_is_one_clean_line(monkeypatch, capfd, tmp_path, source, words, workers):
    plugin = tmp_path / "broken_plugin.py"
    plugin.write_text(source)
    seen: dict = {}
    monkeypatch.setattr("uvicorn.run", fake_uvicorn(seen))
    monkeypatch.delenv("LAYER_EXPLORER_PLUGINS", raising=False)
    with pytest.raises(SystemExit) as exc:
        cli.main(["--plugin", str(plugin), "--http-workers", str(workers), "--port", str(_free_port())])
    assert exc.value.code == 2
    err = capfd.readouterr().err
    assert f"layer-explorer: plugin '{plugin}' failed while it was imported: " in err
    assert words in err and "Traceback" not in err
    assert "app" not in seen


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
