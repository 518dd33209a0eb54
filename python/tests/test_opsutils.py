"""The OpsUtils drop-ins: the seed notebook's flow against the fake Tapis."""

from __future__ import annotations

import inspect

import pytest

import tapis_agent
from tapis_agent import opsutils
from tapis_agent.opsutils import connect_tapis, establish_tms_credentials, revoke_tms_credentials

from harness import PASSWORD, USER, AgentProcess, Fake

SYSTEMS = ["stampede3", "ls6", "frontera"]


def test_signatures_are_the_originals() -> None:
    assert str(inspect.signature(connect_tapis)) == (
        "(token_filePath: 'str' = '~/.tapis_tokens.json', base_url: 'str' = 'https://designsafe.tapis.io', "
        "username: 'str' = '', password: 'str' = '', force_connect: 'bool' = False) -> 'Any'"
    )
    for f in (establish_tms_credentials, revoke_tms_credentials):
        assert list(inspect.signature(f).parameters) == ["tapis", "system_id", "username"]


def test_the_seed_notebook(logged_in: AgentProcess, fake: Fake, capsys: pytest.CaptureFixture[str]) -> None:
    fake.call("DELETE", "/_fake/stats")
    t = connect_tapis(base_url=fake.base_url)
    out = capsys.readouterr().out.splitlines()
    assert out[:2] == [" -- Checking Tapis token --", f" Token from tapis-agent for {USER}: still valid!"]
    assert out[2].startswith(" Token expires at: ") and out[3].startswith(" Token expires in: 3:59:")
    assert out[4:] == [" The agent refreshes it before it expires.", "-- LOG IN SUCCESSFUL! --"]
    # What the notebook goes on to do with the client works, with the agent's token.
    assert t.systems.getSystem(systemId="stampede3").defaultAuthnMethod == "TMS_KEYS"

    for system_id in SYSTEMS:
        establish_tms_credentials(t, system_id, USER)
    printed = capsys.readouterr().out
    expected = "".join(
        " -- TMS User Credentials --\n"
        f"username: {USER}\n"
        f"system_id: {s}\n"
        f"User {USER} is missing system credentials.\n"
        "Establishing new credentials\n"
        f"Established {USER}'s system credentials.\n"
        "-- CREDENTIALS ESTABLISHED SUCCESSFULLY!!! --\n"
        for s in SYSTEMS
    )
    assert printed == expected
    # Run again (the notebook re-run): answered by the agent's cache.
    establish_tms_credentials(t, "ls6", USER)
    assert capsys.readouterr().out.splitlines()[-1] == f"Found {USER}'s system credentials. (cached)"

    revoke_tms_credentials(t, "ls6", USER)
    assert capsys.readouterr().out == "-- CREDENTIALS REMOVED SUCCESSFULLY!!! --\n"

    calls = fake.stats()["calls"]
    assert calls.get("checkUserCredential") == 3
    assert calls.get("createUserCredential") == 3
    assert calls.get("removeUserCredential") == 1
    # One getSystem per missing system, plus the notebook's own.
    assert calls.get("getSystem") == 4
    stored = fake.call("GET", "/_fake/credentials")
    assert sorted(c["system"] for c in stored if c["user"] == USER) == ["frontera", "stampede3"], stored


def test_a_slow_establish_says_what_it_waits_for(
    logged_in: AgentProcess, fake: Fake, capsys: pytest.CaptureFixture[str]
) -> None:
    t = connect_tapis(base_url=fake.base_url)
    fake.call("POST", "/_fake/faults", {"operation": "checkUserCredential", "kind": {"delay_ms": 1500}, "times": 1})
    capsys.readouterr()
    establish_tms_credentials(t, "ls6", USER)
    out = capsys.readouterr().out.splitlines()
    assert out[3] == " establish ls6: waiting for the agent for 1 s", out
    assert out[-1] == "-- CREDENTIALS ESTABLISHED SUCCESSFULLY!!! --"


def test_a_pki_system_is_never_established(
    logged_in: AgentProcess, fake: Fake, capsys: pytest.CaptureFixture[str]
) -> None:
    t = connect_tapis(base_url=fake.base_url)
    capsys.readouterr()
    with pytest.raises(tapis_agent.NotTmsKeys) as caught:
        establish_tms_credentials(t, "corral.pki", USER)
    out = capsys.readouterr().out
    assert "Establish" not in out and "SUCCESSFULLY" not in out
    assert caught.value.exit_code == 6
    assert fake.calls("createUserCredential") == 0


def test_errors_are_raised_not_printed(logged_in: AgentProcess, fake: Fake, capsys: pytest.CaptureFixture[str]) -> None:
    t = connect_tapis(base_url=fake.base_url)
    with pytest.raises(tapis_agent.SystemNotFound):
        establish_tms_credentials(t, "no-such-system", USER)
    with pytest.raises(tapis_agent.SystemNotFound):
        revoke_tms_credentials(t, "no-such-system", USER)
    assert "SUCCESSFULLY" not in capsys.readouterr().out.split("LOG IN SUCCESSFUL! --")[1]


def test_another_tapis_than_the_agents(logged_in: AgentProcess, fake: Fake) -> None:
    # The default base_url is DesignSafe's; the agent talks to the fake.
    # The check comes first, so nothing is sent to DesignSafe.
    with pytest.raises(tapis_agent.TapisAgentError) as caught:
        connect_tapis()
    assert "https://designsafe.tapis.io" in caught.value.message and fake.base_url in caught.value.message


def test_prompts_like_the_original_when_not_logged_in(
    agent: AgentProcess, fake: Fake, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Blank password: asked for the username again; then a good login.
    answers = iter(["typo", USER])
    passwords = iter(["", PASSWORD])
    monkeypatch.setattr("builtins.input", lambda prompt: next(answers))
    monkeypatch.setattr("getpass.getpass", lambda prompt="": next(passwords))
    t = connect_tapis(base_url=fake.base_url)
    out = capsys.readouterr().out.splitlines()
    assert out[:5] == [
        " -- Checking Tapis token --",
        " Not logged in to the agent yet.",
        " Leave username blank to cancel.",
        " Blank password entered → restarting (you can correct the username).",
        f" Logged in as {USER} through tapis-agent.",
    ]
    assert out[-1] == "-- LOG IN SUCCESSFUL! --"
    assert t.systems.getSystem(systemId="ls6").id == "ls6"
    assert tapis_agent.status().login.username == USER


def test_blank_username_returns_none_as_the_original(
    agent: AgentProcess, fake: Fake, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("builtins.input", lambda prompt: "")
    assert connect_tapis(base_url=fake.base_url) is None
    assert capsys.readouterr().out.splitlines()[-1] == " Login aborted: Blank Username!"
    assert tapis_agent.status().login.state == "logged_out"
    assert fake.calls("create_token") == 0


def test_a_wrong_password_warns_and_asks_again(
    agent: AgentProcess, fake: Fake, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_username(*_: object) -> str:
        raise AssertionError("asked for the username")

    prompts: list[str] = []

    def second_try(prompt: str = "") -> str:
        prompts.append(prompt)
        return PASSWORD

    monkeypatch.setattr("builtins.input", no_username)
    monkeypatch.setattr("getpass.getpass", second_try)
    t = connect_tapis(base_url=fake.base_url, username=USER, password="wrong")
    out = capsys.readouterr().out
    # The original's warning, with what Tapis said, then the password again.
    warning = out.split(" ** Warning ** could NOT get token : ", 1)[1].splitlines()
    assert "username or password" in warning[0] and "wrong" not in warning[0]
    assert warning[1] == " TRY AGAIN!"
    assert prompts == [f"Password for {USER} (leave blank to re-enter username): "]
    assert f" Logged in as {USER} through tapis-agent." in out
    assert t is not None and t.systems.getSystem(systemId="ls6").id == "ls6"


def test_refused_three_times_returns_none(
    agent: AgentProcess, fake: Fake, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("builtins.input", lambda prompt: USER)
    monkeypatch.setattr("getpass.getpass", lambda prompt="": "wrong")
    fake.call("DELETE", "/_fake/stats")
    assert connect_tapis(base_url=fake.base_url) is None
    out = capsys.readouterr().out
    assert out.count("** Warning ** could NOT get token") == opsutils.MAX_LOGIN_ATTEMPTS == 3
    assert out.splitlines()[-1] == " Login aborted: 3 attempts refused."
    assert tapis_agent.status().login.state == "logged_out"


def test_a_refused_password_keeps_the_login_held_before(
    logged_in: AgentProcess, fake: Fake, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("builtins.input", lambda prompt: USER)
    monkeypatch.setattr("getpass.getpass", lambda prompt="": "wrong")
    assert connect_tapis(base_url=fake.base_url, force_connect=True) is None
    assert " Forcing a connection to Tapis (fresh login)." in capsys.readouterr().out
    # Without force_connect the agent's login is used, no prompt.
    monkeypatch.setattr("getpass.getpass", lambda prompt="": pytest.fail("prompted"))
    assert connect_tapis(base_url=fake.base_url) is not None


@pytest.mark.fake_args("--token-ttl", "30")
def test_tokens_shorter_than_a_minute(logged_in: AgentProcess, fake: Fake, capsys: pytest.CaptureFixture[str]) -> None:
    t = connect_tapis(base_url=fake.base_url)
    out = capsys.readouterr().out.splitlines()
    assert out[1] == f" Token from tapis-agent for {USER}: still valid!"
    assert out[3].startswith(" Token expires in: 0:00:")
    assert t.systems.getSystem(systemId="ls6").id == "ls6"


def test_username_and_password_given(agent: AgentProcess, fake: Fake, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_prompt(*_: object) -> str:
        raise AssertionError("prompted")

    monkeypatch.setattr("builtins.input", no_prompt)
    monkeypatch.setattr("getpass.getpass", no_prompt)
    assert connect_tapis(base_url=fake.base_url, username=USER, password=PASSWORD) is not None


def test_without_tapipy_the_message_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    import builtins

    real_import = builtins.__import__

    def no_tapipy(name: str, *args: object, **kwargs: object) -> object:
        if name.startswith("tapipy"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(builtins, "__import__", no_tapipy)
    with pytest.raises(ImportError, match=r"tapis-agent\[tapipy\]"):
        opsutils._tapis_class()
