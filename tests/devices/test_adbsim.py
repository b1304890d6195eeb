"""The adb device simulator, driven by the real adb client (Debian adb 29.0.6)."""

from __future__ import annotations

import random
import subprocess
from pathlib import Path

from tests.adbsim import Faults
from tests.fixtures.adb import AdbPhone, MakePhone


def _adb(phone: AdbPhone, *args: str, timeout_s: float = 60.0) -> tuple[int, str, str]:
    done = phone.server.run("-s", phone.serial, *args, timeout_s=timeout_s)
    return done.returncode, done.stdout, done.stderr


def test_connect_prints_connected(make_adb_phone: MakePhone) -> None:
    phone = make_adb_phone(connect=False)
    answer = phone.server.connect(phone.serial)
    assert answer.stdout.strip() == f"connected to {phone.serial}"


def test_devices_long_shows_model(adb_phone: AdbPhone) -> None:
    listing = adb_phone.server.run("devices", "-l").stdout
    line = next(x for x in listing.splitlines() if x.startswith(adb_phone.serial))
    assert " device " in line
    assert "product:simfish" in line
    assert "model:Pixel_Sim_8" in line
    assert "device:simfish" in line


def test_features_are_advertised(adb_phone: AdbPhone) -> None:
    rc, out, _ = _adb(adb_phone, "features")
    assert rc == 0
    assert {"shell_v2", "cmd", "stat_v2", "ls_v2"} <= set(out.split())


def test_getprop_all(adb_phone: AdbPhone) -> None:
    rc, out, _ = _adb(adb_phone, "shell", "getprop")
    assert rc == 0
    assert "[ro.product.model]: [Pixel Sim 8]" in out.splitlines()
    assert "[ro.product.cpu.abilist]: [arm64-v8a,armeabi-v7a,armeabi]" in out.splitlines()


def test_getprop_key(adb_phone: AdbPhone) -> None:
    assert _adb(adb_phone, "shell", "getprop", "ro.product.model") == (0, "Pixel Sim 8\n", "")
    assert _adb(adb_phone, "shell", "getprop", "no.such.key") == (0, "\n", "")
    assert _adb(adb_phone, "shell", "getprop", "no.such.key", "dflt") == (0, "dflt\n", "")


def test_exit_code_and_separate_stderr(adb_phone: AdbPhone) -> None:
    rc, out, err = _adb(adb_phone, "shell", "echo to-out; echo to-err >&2; exit 3")
    assert (rc, out, err) == (3, "to-out\n", "to-err\n")


def test_dumpsys_battery_and_fake_sys(adb_phone: AdbPhone) -> None:
    _, out, _ = _adb(adb_phone, "shell", "dumpsys battery")
    assert "  temperature: 312" in out.splitlines()
    _, out, _ = _adb(
        adb_phone, "shell", "cat /sys/devices/system/cpu/cpu7/cpufreq/cpuinfo_max_freq"
    )
    assert out == "2800000\n"
    _, out, _ = _adb(adb_phone, "shell", "cat /sys/class/thermal/thermal_zone0/type")
    assert out == "battery\n"


def test_command_longer_than_4k(adb_phone: AdbPhone) -> None:
    payload = "y" * 6000
    rc, out, _ = _adb(adb_phone, "shell", f"echo {payload} | wc -c")
    assert (rc, out.strip()) == (0, "6001")


def test_push_pull_20mb_identical(adb_phone: AdbPhone, tmp_path: Path) -> None:
    data = random.Random(1).randbytes(20 * 1024 * 1024)
    local = tmp_path / "big.bin"
    local.write_bytes(data)
    rc, out, err = _adb(adb_phone, "push", str(local), "/data/local/tmp/sim-big/big.bin")
    assert rc == 0, out + err
    assert (adb_phone.sim.data_dir / "sim-big" / "big.bin").read_bytes() == data
    back = tmp_path / "back.bin"
    rc, out, err = _adb(adb_phone, "pull", "/data/local/tmp/sim-big/big.bin", str(back))
    assert rc == 0, out + err
    assert back.read_bytes() == data


def test_push_small_into_nested_dirs_and_list(adb_phone: AdbPhone, tmp_path: Path) -> None:
    local = tmp_path / "m.onnx"
    local.write_bytes(b"\x00onnx" * 10)
    local.chmod(0o755)
    rc, _, _ = _adb(adb_phone, "push", str(local), "/data/local/tmp/n1/n2/n3/m.onnx")
    assert rc == 0
    pushed = adb_phone.sim.data_dir / "n1" / "n2" / "n3" / "m.onnx"
    assert pushed.read_bytes() == local.read_bytes()
    assert pushed.stat().st_mode & 0o777 == 0o777  # adbd copies user bits to group/other
    rc, out, _ = _adb(adb_phone, "ls", "/data/local/tmp/n1/n2/n3")
    assert rc == 0
    assert out.split()[-1] == "m.onnx"


def test_exec_out_is_binary_safe(adb_phone: AdbPhone) -> None:
    data = bytes(range(256)) * 4
    (adb_phone.sim.data_dir / "bytes.bin").write_bytes(data)
    raw = subprocess.run(
        [
            adb_phone.server.adb,
            "-P",
            str(adb_phone.server.port),
            "-s",
            adb_phone.serial,
            "exec-out",
            "cat /data/local/tmp/bytes.bin",
        ],
        capture_output=True,
        env=adb_phone.server.env,
        timeout=60,
        check=True,
    )
    assert raw.stdout == data


def test_path_escapes_are_refused(adb_phone: AdbPhone, tmp_path: Path) -> None:
    local = tmp_path / "x.txt"
    local.write_text("x")
    outside = tmp_path / "outside"
    outside.mkdir()
    (adb_phone.sim.data_dir / "link-out").symlink_to(outside)
    for target in (
        "/data/local/tmp/../../../etc/x.txt",
        "/data/local/tmp/link-out/x.txt",
        "/etc/x.txt",
    ):
        rc, out, err = _adb(adb_phone, "push", str(local), target)
        assert rc != 0
        assert "Permission denied" in out + err
    assert not (outside / "x.txt").exists()
    (outside / "secret").write_text("s")
    rc, out, err = _adb(adb_phone, "pull", "/data/local/tmp/link-out/secret", str(tmp_path / "s"))
    assert rc != 0
    assert not (tmp_path / "s").exists()


def test_without_shell_v2_the_client_loses_exit_codes(make_adb_phone: MakePhone) -> None:
    phone = make_adb_phone(features=("cmd",))
    rc, out, _ = _adb(phone, "shell", "echo a; echo b >&2; exit 4")
    assert (rc, out) == (0, "a\nb\n")


def test_auth_makes_device_unauthorized(make_adb_phone: MakePhone) -> None:
    phone = make_adb_phone(faults=Faults(auth=True), connect=False)
    answer = phone.server.connect(phone.serial)
    assert "failed to authenticate" in answer.stdout
    listing = phone.server.run("devices").stdout
    assert f"{phone.serial}\tunauthorized" in listing


def test_delayed_cnxn_still_connects(make_adb_phone: MakePhone) -> None:
    phone = make_adb_phone(faults=Faults(cnxn_delay_s=0.3), connect=False)
    assert phone.server.connect(phone.serial).stdout.strip() == f"connected to {phone.serial}"
    assert _adb(phone, "shell", "echo ok")[:2] == (0, "ok\n")


def test_failed_send_reports_the_device_error(make_adb_phone: MakePhone, tmp_path: Path) -> None:
    phone = make_adb_phone(faults=Faults(send_failure="No space left on device"))
    local = tmp_path / "f.bin"
    local.write_bytes(b"z" * 200_000)
    rc, out, err = _adb(phone, "push", str(local), "/data/local/tmp/f.bin")
    assert rc != 0
    assert "remote write failed: No space left on device" in out + err
    assert not (phone.sim.data_dir / "f.bin").exists()


def test_dropped_connection_mid_push(make_adb_phone: MakePhone, tmp_path: Path) -> None:
    phone = make_adb_phone(faults=Faults(drop_after_bytes=1_000_000))
    local = tmp_path / "f.bin"
    local.write_bytes(b"z" * 4_000_000)
    rc, out, err = _adb(phone, "push", str(local), "/data/local/tmp/f.bin")
    assert rc != 0
    assert "failed to copy" in out + err
    assert f"{phone.serial}\toffline" in phone.server.run("devices").stdout
