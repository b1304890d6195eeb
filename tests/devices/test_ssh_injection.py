"""No command runs on this machine through a device URL, an inventory or a printed fix.

The allow-list of ``devices/ssh_options.py`` on its own, then every payload through the real
command line against the real sshd fixture with a canary file that must not appear. Each
payload is first shown to be live: passed straight to ``ssh`` it does create the canary.
"""

from __future__ import annotations

import shlex
import subprocess
from pathlib import Path
from urllib.parse import quote

import pytest

from devices.check import check_device, device_command
from devices.device import DeviceConfig
from devices.inventory import InventoryError, load_inventory, parse_device_url
from devices.ssh import SshTransport
from devices.ssh_options import UnsafeSshOption, check_ssh_option
from devices.transport import TransportError
from harness.cli import main
from tests.fixtures.sshd import SshServer

REFUSED = [
    "ProxyCommand=touch /tmp/x",
    "proxycommand touch /tmp/x",
    "KnownHostsCommand=/bin/touch /tmp/x",
    "LocalCommand=touch /tmp/x",
    "PermitLocalCommand=yes",
    "RemoteCommand=id",
    "Match=exec true",
    "Host=*",
    "Include=/tmp/evil.conf",
    "PKCS11Provider=/tmp/evil.so",
    "SecurityKeyProvider=/tmp/evil.so",
    "SmartcardDevice=/dev/x",
    "EnableSSHKeysign=yes",
    "HostbasedAuthentication=yes",
    "StrictHostKeyChecking=no",
    "StrictHostKeyChecking no",
    "UserKnownHostsFile=/dev/null",
    "GlobalKnownHostsFile=/dev/null",
    "NoHostAuthenticationForLocalhost=yes",
    "VerifyHostKeyDNS=yes",
    "ForwardAgent=yes",
    "ForwardX11=yes",
    "LocalForward=8080 localhost:80",
    "RemoteForward=8080 localhost:80",
    "DynamicForward=1080",
    "Tunnel=yes",
    "ControlPath=/tmp/other",
    "SetEnv=LD_PRELOAD=/tmp/x.so",
    "HostName=elsewhere",
    "User=root",
]
SMUGGLED = [
    "ConnectTimeout=5 ProxyCommand=touch",
    "ConnectTimeout=5\nProxyCommand=touch /tmp/x",
    "ConnectTimeout=5\rProxyCommand=touch",
    "Compression=yes=ProxyCommand=touch",
    'IdentityFile="/a b"',
    "IdentityFile=$(touch /tmp/x)",
    "IdentityFile=`touch`",
    "ConnectTimeout=",
    "-oProxyCommand=touch",
    "=yes",
    "ProxyJump=-oProxyCommand=touch",
    "ProxyJump=a;touch@b",
    "ProxyJump=u@h$(id)",
]


@pytest.mark.parametrize("option", REFUSED)
def test_dangerous_options_are_refused_by_name(option: str) -> None:
    keyword = option.replace("=", " ").split()[0]
    with pytest.raises(UnsafeSshOption, match=f"ssh option {keyword} is not allowed"):
        check_ssh_option(option)


@pytest.mark.parametrize("option", SMUGGLED)
def test_values_cannot_smuggle_a_second_option(option: str) -> None:
    with pytest.raises(UnsafeSshOption):
        check_ssh_option(option)


@pytest.mark.parametrize(
    ("given", "passed"),
    [
        ("Compression=yes", "Compression=yes"),
        ("compression yes", "Compression=yes"),
        ("ServerAliveCountMax = 3", "ServerAliveCountMax=3"),
        ("ProxyJump=pi@bastion:2222,[::1]:22", "ProxyJump=pi@bastion:2222,[::1]:22"),
        ("IdentityFile=~/.ssh/id_%h", "IdentityFile=~/.ssh/id_%h"),
        ("HostKeyAlias=board7", "HostKeyAlias=board7"),
    ],
)
def test_allowed_options_are_normalised(given: str, passed: str) -> None:
    assert check_ssh_option(given) == passed


@pytest.mark.parametrize(
    "url",
    [
        "ssh://-oProxyCommand=x@host",
        "ssh://a;b@host",
        "ssh://a$(id)@host",
        "ssh://host?ssh_option=ProxyCommand%3Dtouch%20x",
        "ssh://host?ssh_option=KnownHostsCommand%3Dtouch",
        "ssh://host?ssh_option=StrictHostKeyChecking%3Dno",
        "ssh://host?accept_new_host_key=1&known_hosts_file=/dev/null",
    ],
)
def test_urls_with_payloads_are_refused(url: str) -> None:
    with pytest.raises(InventoryError):
        parse_device_url(url)


def test_inventory_goes_through_the_same_allow_list(tmp_path: Path) -> None:
    inventory = tmp_path / "devices.toml"
    inventory.write_text('[devices.b]\nhost = "b"\nssh_options = ["LocalCommand=touch x"]\n')
    with pytest.raises(InventoryError, match="ssh option LocalCommand is not allowed"):
        load_inventory(inventory)
    inventory.write_text('[devices.b]\nhost = "-oProxyCommand=touch"\n')
    with pytest.raises(InventoryError, match="invalid host"):
        load_inventory(inventory)


def test_transport_refuses_what_bypasses_the_inventory() -> None:
    with pytest.raises(TransportError, match="ProxyCommand"):
        SshTransport("board", ssh_options=["ProxyCommand=touch x"])
    with pytest.raises(TransportError, match="invalid SSH host"):
        SshTransport("-oProxyCommand=touch")
    with pytest.raises(TransportError, match="invalid SSH user"):
        SshTransport("board", user="-oProxyCommand=touch")


# -- against the real sshd ------------------------------------------------------------------

PAYLOADS = {
    "ProxyCommand": ["ProxyCommand=touch {canary}"],
    "KnownHostsCommand": ["KnownHostsCommand=/usr/bin/touch {canary}"],
    "LocalCommand": ["PermitLocalCommand=yes", "LocalCommand=touch {canary}"],
}


def _url(server: SshServer, options: list[str]) -> str:
    query = [
        f"identity_file={quote(server.identity_file)}",
        f"known_hosts_file={quote(server.known_hosts_file)}",
        "connect_timeout_s=5",
        *(f"ssh_option={quote(o, safe='')}" for o in options),
    ]
    return f"ssh://{server.user}@{server.host}:{server.port}?{'&'.join(query)}"


@pytest.mark.parametrize("family", sorted(PAYLOADS))
def test_payload_is_live_when_given_to_ssh_itself(
    sshd_server: SshServer, tmp_path: Path, family: str
) -> None:
    canary = tmp_path / "canary"
    options = [o.format(canary=canary) for o in PAYLOADS[family]]
    argv = ["ssh", "-T", "-o", "BatchMode=yes", "-o", "ConnectTimeout=5"]
    argv += ["-o", f"UserKnownHostsFile={sshd_server.known_hosts_file}"]
    argv += ["-i", sshd_server.identity_file, "-p", str(sshd_server.port)]
    argv += ["-l", sshd_server.user]
    if family == "KnownHostsCommand":
        argv += ["-o", "UserKnownHostsFile=/dev/null"]  # so ssh asks the command
    for option in options:
        argv += ["-o", option]
    subprocess.run(
        [*argv, "--", sshd_server.host, "true"],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=30,
        check=False,
    )
    assert canary.exists(), f"{family} payload did not run: the refusal test below proves nothing"


@pytest.mark.parametrize("family", sorted(PAYLOADS))
@pytest.mark.parametrize("verb", ["check", "run"])
def test_payload_url_is_refused_before_ssh_runs(
    sshd_server: SshServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    family: str,
    verb: str,
) -> None:
    canary = tmp_path / "canary"
    url = _url(sshd_server, [o.format(canary=canary) for o in PAYLOADS[family]])
    before = sshd_server.accepted_connections()
    if verb == "check":
        argv = ["devices", "check", url]
    else:
        argv = ["run", "--device", url, "--db", str(tmp_path / "r.sqlite"), "--quiet"]
    rc = main(argv)
    err = capsys.readouterr().err
    assert rc == 2
    assert err.count("\n") == 1 and "Traceback" not in err
    first_keyword = PAYLOADS[family][0].split("=")[0]
    assert f"ssh option {first_keyword} is not allowed" in err
    assert not canary.exists()
    assert sshd_server.accepted_connections() == before


def test_host_key_checking_cannot_be_turned_off(
    sshd_server: SshServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for option in ("StrictHostKeyChecking=no", "UserKnownHostsFile=/dev/null"):
        rc = main(["devices", "check", _url(sshd_server, [option])])
        err = capsys.readouterr().err
        assert rc == 2 and f"ssh option {option.split('=')[0]} is not allowed" in err


def test_allowed_options_reach_the_real_sshd(sshd_server: SshServer) -> None:
    url = _url(sshd_server, ["ServerAliveCountMax=3", "compression yes", "IdentitiesOnly=yes"])
    config = parse_device_url(url)
    assert config.ssh_options == ("ServerAliveCountMax=3", "Compression=yes", "IdentitiesOnly=yes")
    from devices.device import open_transport

    transport = open_transport(config)
    try:
        assert transport.run(["echo", "ok"], timeout_s=30).stdout.strip() == "ok"
    finally:
        transport.close()


# -- the fix a failed check prints ----------------------------------------------------------


def test_printed_workdir_fix_quotes_a_payload(sshd_server: SshServer, tmp_path: Path) -> None:
    canary = tmp_path / "canary"
    workdir = f"/proc/mnbench-none/$(touch {canary})`touch {canary}`;touch {canary}"
    config = DeviceConfig(
        name="loopback",
        kind="ssh",
        host=sshd_server.host,
        port=sshd_server.port,
        user=sshd_server.user,
        identity_file=sshd_server.identity_file,
        known_hosts_file=sshd_server.known_hosts_file,
        workdir=workdir,
        python="python3",
    )
    items = {item.name: item for item in check_device(config)}
    assert not items["workdir"].ok and items["workdir"].fix is not None
    assert not canary.exists()
    line = items["workdir"].fix.split("  # ")[0]
    ssh_argv = shlex.split(line)
    assert ssh_argv[0] == "ssh" and ssh_argv[-2] == f"{sshd_server.user}@{sshd_server.host}"
    # What the board's login shell would run (the board is this machine here).
    subprocess.run(["sh", "-c", ssh_argv[-1]], capture_output=True, timeout=30, check=False)
    assert not canary.exists()
    # The same payload unquoted does run, so the check above can fail.
    subprocess.run(["sh", "-c", f"echo {workdir}"], capture_output=True, timeout=30, check=False)
    assert canary.exists()


def test_device_command_quotes_home_paths() -> None:
    config = DeviceConfig(name="b", kind="ssh", host="b", workdir="~/w x;id")
    from devices.check import venv_fix

    fix = venv_fix(config)
    remote = shlex.split(fix.split("  # ")[0])[-1]
    script = shlex.split(remote)[-1]
    assert '"$HOME"/' in script and "'w x;id/venv'" in script
    assert device_command(config, ["true"]) == "ssh b true"
