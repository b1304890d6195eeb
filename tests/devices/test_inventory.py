"""Device inventory (TOML) and device URLs."""

from __future__ import annotations

from pathlib import Path

import pytest

from devices.device import DeviceConfig
from devices.inventory import InventoryError, load_inventory, parse_device_url, resolve_device
from harness.cli import exit_code_of

INVENTORY = """
[devices.pi4]
kind = "ssh"
host = "pi4.local"
user = "pi"
port = 2222
identity_file = "keys/pi4"
accept_new_host_key = true
known_hosts_file = "/etc/mnbench/known_hosts"
ssh_options = ["ProxyJump=bastion", "Compression=yes"]
python = "/home/pi/venv/bin/python"
workdir = "~/bench"
cores = "big"
env = { OMP_NUM_THREADS = "1" }
connect_timeout_s = 5

[devices.rk3399]
host = "192.168.1.40"

[devices.pixel]
kind = "adb"
serial = "192.168.1.50:5555"
adb = "/opt/platform-tools/adb"
adb_server = "127.0.0.1:5037"
perf_test = "bin/onnxruntime_perf_test"
perf_test_libs = ["lib/libonnxruntime.so"]
cpus = "0xf0"

[devices.local]
kind = "local"
python = "/usr/bin/python3"
"""


@pytest.fixture
def inventory(tmp_path: Path) -> Path:
    path = tmp_path / "devices.toml"
    path.write_text(INVENTORY)
    return path


def test_load_inventory(inventory: Path) -> None:
    devices = load_inventory(inventory)
    assert set(devices) == {"pi4", "rk3399", "pixel", "local"}
    pi4 = devices["pi4"]
    assert pi4 == DeviceConfig(
        name="pi4",
        kind="ssh",
        host="pi4.local",
        user="pi",
        port=2222,
        identity_file=str(inventory.parent / "keys/pi4"),
        accept_new_host_key=True,
        known_hosts_file="/etc/mnbench/known_hosts",
        ssh_options=("ProxyJump=bastion", "Compression=yes"),
        python="/home/pi/venv/bin/python",
        workdir="~/bench",
        cpus="big",
        env={"OMP_NUM_THREADS": "1"},
        connect_timeout_s=5.0,
    )
    assert devices["rk3399"].kind == "ssh"
    assert devices["rk3399"].python_argv == ["python3"]
    pixel = devices["pixel"]
    assert pixel.kind == "adb"
    assert pixel.serial == "192.168.1.50:5555"
    assert (pixel.adb_server_host, pixel.adb_server_port) == ("127.0.0.1", 5037)
    assert pixel.perf_test == str(inventory.parent / "bin/onnxruntime_perf_test")
    assert pixel.perf_test_libs == (str(inventory.parent / "lib/libonnxruntime.so"),)
    assert pixel.cpus == "0xf0"


def test_resolve_by_name_and_local(inventory: Path, tmp_path: Path) -> None:
    assert resolve_device("pi4", inventory).host == "pi4.local"
    assert resolve_device("local", inventory).python == "/usr/bin/python3"  # overridden
    empty = tmp_path / "empty.toml"
    empty.write_text("")
    assert resolve_device("local", empty) == DeviceConfig(name="local")


def test_local_always_exists_without_inventory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # no ./devices.toml here
    assert resolve_device("local", None).kind == "local"


def test_default_inventory_is_in_the_current_directory(
    inventory: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(inventory.parent)
    assert resolve_device("rk3399", None).host == "192.168.1.40"


def test_unknown_name_lists_known_devices(inventory: Path) -> None:
    with pytest.raises(InventoryError) as info:
        resolve_device("jetson", inventory)
    message = info.value.message
    assert "local, pi4, pixel, rk3399" in message
    assert "ssh://user@host:port" in message and "adb://SERIAL" in message
    assert "\n" not in message
    assert exit_code_of(info.value) == 2


def test_missing_inventory_file(tmp_path: Path) -> None:
    with pytest.raises(InventoryError, match="does not exist"):
        resolve_device("pi4", tmp_path / "nope.toml")


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ('[devices.a]\nhost = "h"\ncolour = "red"', "device 'a': unknown key 'colour'"),
        ('[devices.a]\nhost = "h"\nport = "22"', "device 'a': port must be an integer"),
        ('[devices.a]\nhost = "h"\nport = 70000', "out of range"),
        ('[devices.a]\nhost = "h"\naccept_new_host_key = "yes"', "true or false"),
        ('[devices.a]\nhost = "h"\nssh_options = "X=1"', "list of strings"),
        ('[devices.a]\nhost = "h"\nenv = { A = 1 }', "table of string values"),
        ('[devices.a]\nhost = "bad host"', "invalid host"),
        ('[devices.a]\nhost = "-oProxyCommand=x"', "invalid host"),
        ('[devices.a]\nkind = "ssh"', "needs host"),
        ('[devices.a]\nkind = "usb"', "kind must be one of local, ssh, adb"),
        ('[devices.a]\npython = "p"', "say its kind"),
        ('[devices.a]\nhost = "h"\nserial = "s"', "'serial' does not apply to a ssh device"),
        ('[devices.a]\nserial = "s"\nadb_server = "nohost"', "host:port"),
        ('[devices.a]\nhost = "h"\ncpus = "big"\ncores = "big"', "not both"),
        ('[devices."a b"]\nhost = "h"', "invalid device name"),
        ('[devices.a]\nhost = "h"\nconnect_timeout_s = 0', "connect_timeout_s"),
        ("[other]\nx = 1", "unknown top-level key"),
        ("[devices.a\n", "not valid TOML"),
    ],
)
def test_inventory_errors_are_one_line(tmp_path: Path, body: str, expected: str) -> None:
    path = tmp_path / "devices.toml"
    path.write_text(body)
    with pytest.raises(InventoryError) as info:
        load_inventory(path)
    assert expected in info.value.message
    assert "\n" not in info.value.message


def test_ssh_url() -> None:
    config = resolve_device(
        "ssh://pi@board.local:2222?python=/opt/venv/bin/python&cpus=big"
        "&accept_new_host_key=1&identity_file=~/.ssh/pi&ssh_option=ProxyJump%3Dbastion",
        None,
    )
    assert config.name == "ssh://pi@board.local:2222"
    assert (config.kind, config.host, config.user, config.port) == (
        "ssh",
        "board.local",
        "pi",
        2222,
    )
    assert config.python == "/opt/venv/bin/python"
    assert config.cpus == "big"
    assert config.accept_new_host_key is True
    assert config.identity_file is not None and config.identity_file.endswith("/.ssh/pi")
    assert config.ssh_options == ("ProxyJump=bastion",)


def test_ssh_url_minimal_and_ipv6() -> None:
    assert parse_device_url("ssh://board").host == "board"
    assert parse_device_url("ssh://board").port is None
    assert parse_device_url("ssh://root@[::1]:22").host == "::1"


def test_adb_urls() -> None:
    usb = parse_device_url("adb://R58M123ABC?cores=big&python=/data/local/tmp/py/bin/python3")
    assert (usb.kind, usb.serial, usb.cpus) == ("adb", "R58M123ABC", "big")
    tcp = parse_device_url(
        "adb://192.168.1.50:5555?adb=/opt/adb&server=127.0.0.1:5038"
        "&perf_test=/tmp/onnxruntime_perf_test&libs=/tmp/a.so,/tmp/b.so"
    )
    assert tcp.serial == "192.168.1.50:5555"
    assert tcp.adb_path == "/opt/adb"
    assert (tcp.adb_server_host, tcp.adb_server_port) == ("127.0.0.1", 5038)
    assert tcp.perf_test == "/tmp/onnxruntime_perf_test"
    assert tcp.perf_test_libs == ("/tmp/a.so", "/tmp/b.so")


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("ssh://pi@board:99999", "port"),
        ("ssh://pi@board:abc", "port"),
        ("ssh://pi:secret@board", "password"),
        ("ssh://", "no host"),
        ("ssh://board/path", "no path"),
        ("ssh://board?colour=red", "unknown parameter 'colour'"),
        ("ssh://board?accept_new_host_key=maybe", "1 or 0"),
        ("ssh://board?python=a&python=b", "given twice"),
        ("ssh://bo ard", "whitespace"),
        ("adb://", "adb://SERIAL"),
        ("adb://X?server=nope", "host:port"),
        ("adb://X?identity_file=k", "unknown parameter"),
        ("telnet://board", "unknown device URL"),
    ],
)
def test_bad_urls(url: str, expected: str) -> None:
    with pytest.raises(InventoryError) as info:
        parse_device_url(url)
    assert expected in info.value.message
    assert "\n" not in info.value.message
