"""The ``flowai`` command line: options, data directory rules, what ``serve`` hands its
processes (no database, no subprocess)."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

from billing.wording import count, credits
from server.cli.data_dir import (
    DataDirError,
    Needs,
    check_can_create,
    has_embedded_database,
    locate,
    require,
)
from server.cli.main import build_parser, main, process_environment
from server.cli.options import TOKEN_TTL_S_MAX, token_ttl
from server.composition.ai import workers_in_process
from server.settings import Settings, default_data_dir


def _parsers(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    found = [parser]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                found += _parsers(child)
    return found


def _options() -> list[tuple[str, argparse.Action]]:
    return [
        (p.prog, a)
        for p in _parsers(build_parser())
        for a in p._actions
        if a.option_strings and not a.required and not isinstance(a, argparse._HelpAction)
    ]


def test_every_option_states_its_default() -> None:
    options = _options()
    assert len(options) >= 12  # serve, users, token, credits, worker
    missing = [f"{prog} {a.option_strings[0]}" for prog, a in options if "default:" not in a.help]
    assert missing == []


def test_settings_named_in_help_exist_and_options_that_override_one_name_it() -> None:
    named = {
        (prog, a.option_strings[0]): re.findall(r"FLOWAI_([A-Z_]+)", a.help or "")
        for prog, a in _options()
    }
    for names in named.values():
        for name in names:
            assert name.lower() in Settings.model_fields, name
    assert named[("flowai serve", "--host")] == ["HOST"]
    assert named[("flowai serve", "--port")] == ["PORT"]
    assert named[("flowai worker", "--concurrency")] == ["JOB_CONCURRENCY"]


def test_help_shows_the_builtin_default_of_the_setting(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["serve", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "FLOWAI_HOST if set, else 127.0.0.1" in text
    assert "FLOWAI_PORT if set, else 8000" in text


@pytest.mark.parametrize("ttl", ["0", "-5", str(TOKEN_TTL_S_MAX + 1), "1.5", "soon"])
def test_token_ttl_out_of_range_is_a_usage_error(
    ttl: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["token", "--user", "alice", "--ttl", ttl])
    assert exited.value.code == 2
    assert "argument --ttl" in capsys.readouterr().err


def test_token_ttl_bounds() -> None:
    assert token_ttl("1") == 1
    assert token_ttl(str(TOKEN_TTL_S_MAX)) == TOKEN_TTL_S_MAX


def test_default_data_dir_ignores_the_current_directory() -> None:
    home = Path("/home/u")
    assert default_data_dir({}, home) == home / ".local/share/flowai"
    assert default_data_dir({"XDG_DATA_HOME": "/data"}, home) == Path("/data/flowai")
    # The XDG spec: a relative XDG_DATA_HOME is invalid and ignored.
    assert default_data_dir({"XDG_DATA_HOME": "rel"}, home) == home / ".local/share/flowai"


def test_a_relative_data_dir_is_made_absolute(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    assert Settings(data_dir=Path("here")).data_dir == tmp_path / "here"


def test_read_only_commands_need_existing_data(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "missing")
    data = locate(settings, tmp_path)
    with pytest.raises(DataDirError) as error:
        require(data, settings, Needs(database=True, jwt_secret=True))
    message = str(error.value)
    assert str(tmp_path / "missing") in message and "FLOWAI_DATA_DIR" in message
    assert "FLOWAI_DATABASE_URL" in message and "FLOWAI_JWT_SECRET" in message
    assert not (tmp_path / "missing").exists()
    # Configured elsewhere: nothing is needed from the directory.
    configured = Settings(
        data_dir=tmp_path / "missing", database_url="postgresql://x/y", jwt_secret="s"
    )
    require(locate(configured, tmp_path), configured, Needs(database=True, jwt_secret=True))


def test_existing_data_satisfies_the_commands(tmp_path: Path) -> None:
    (tmp_path / "pg").mkdir()
    (tmp_path / "pg" / "PG_VERSION").write_text("16\n")
    (tmp_path / "jwt_secret").write_text("secret")
    settings = Settings(data_dir=tmp_path)
    assert has_embedded_database(tmp_path)
    require(locate(settings, tmp_path), settings, Needs(database=True, jwt_secret=True))


def test_an_old_dot_flowai_in_the_current_directory_is_not_silently_replaced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FLOWAI_DATA_DIR", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    (tmp_path / ".flowai").mkdir()
    data = locate(Settings(), tmp_path)
    assert data.legacy == tmp_path / ".flowai" and not data.configured
    with pytest.raises(DataDirError, match=f"FLOWAI_DATA_DIR={tmp_path / '.flowai'}"):
        check_can_create(data)
    (tmp_path / "xdg" / "flowai").mkdir(parents=True)  # the new default was chosen
    check_can_create(locate(Settings(), tmp_path))
    # Configured: the old directory is not looked at.
    configured = locate(Settings(data_dir=tmp_path / "d"), tmp_path)
    assert configured.legacy is None
    check_can_create(configured)


def test_serve_tells_its_processes_to_run_jobs_on_the_embedded_database(tmp_path: Path) -> None:
    embedded = Settings(data_dir=tmp_path, redis_url="redis://r")  # embedded, with Redis
    env = process_environment(embedded, "postgresql://embedded", "127.0.0.1", 9000)
    assert env["FLOWAI_DATABASE_URL"] == "postgresql://embedded"
    assert env["FLOWAI_JOBS_IN_PROCESS"] == "true"
    assert env["FLOWAI_DATA_DIR"] == str(tmp_path)
    # What a process then reads: a database URL, and still jobs in process.
    child = Settings(
        database_url=env["FLOWAI_DATABASE_URL"],
        jobs_in_process=env["FLOWAI_JOBS_IN_PROCESS"],  # type: ignore[arg-type]
        redis_url="redis://r",
    )
    assert workers_in_process(child)
    external = Settings(data_dir=tmp_path, database_url="postgresql://db", redis_url="redis://r")
    assert process_environment(external, "postgresql://db", "h", 1)["FLOWAI_JOBS_IN_PROCESS"] == (
        "false"
    )


def test_who_runs_jobs() -> None:
    assert workers_in_process(Settings())  # embedded
    assert workers_in_process(Settings(database_url="postgresql://db"))  # no Redis
    assert not workers_in_process(Settings(database_url="postgresql://db", redis_url="redis://r"))
    assert not workers_in_process(Settings(jobs_in_process=False))
    assert workers_in_process(
        Settings(database_url="postgresql://db", redis_url="redis://r", jobs_in_process=True)
    )


def test_counts_take_the_plural_they_need() -> None:
    assert credits(1) == "1 credit"
    assert credits(0) == "0 credits"
    assert credits(2) == "2 credits"
    assert count(-1, "hold") == "-1 hold"
    assert count(3, "entry", "entries") == "3 entries"
