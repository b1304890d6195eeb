"""The device inventory (a TOML file, default ``./devices.toml``) and device URLs.

A device is named in the inventory or given as a URL (docs/devices.md, "Naming a device"):

- ``local`` -- this machine (always exists; an inventory entry named ``local`` overrides it);
- ``ssh://[user@]host[:port][?python=...&cpus=big&accept_new_host_key=1&identity_file=...]``;
- ``adb://SERIAL[?adb=PATH&server=HOST:PORT&python=...&perf_test=PATH&libs=A,B&cores=big]``
  where SERIAL may be ``host:port`` for a device on TCP.

Inventory shape (TOML v1.0, read with ``tomllib``, ``tomli`` on Python 3.10)::

    [devices.pi4]
    kind = "ssh"              # inferred from host / serial when left out
    host = "pi4.local"
    user = "pi"
    python = "/home/pi/venv/bin/python"
    cpus = "big"              # or cores = ...
    env = { OMP_NUM_THREADS = "1" }

Every key is checked: an unknown key or a wrong type is a one-line ``DeviceError`` naming the
device, the key and what is allowed. Local paths (identity_file, known_hosts_file, perf_test,
perf_test_libs) are relative to the inventory file's directory.
"""

from __future__ import annotations

import math
import os
import re
import stat
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, cast
from urllib.parse import parse_qsl, unquote, urlsplit

from devices.device import DEVICE_KINDS, DeviceConfig, DeviceKind
from devices.errors import DeviceError
from devices.ssh_options import UnsafeSshOption, check_ssh_options, valid_host, valid_user
from mobilenet.files import UnreadableFile, read_bounded

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib  # type: ignore[import-not-found,unused-ignore]

DEFAULT_INVENTORY = Path("devices.toml")
URL_FORMS = "local, ssh://user@host:port, adb://SERIAL"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*\Z")
_BAD_CHARS = re.compile(r"[\s\x00-\x1f\x7f]")
_ENV_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
MAX_CONNECT_TIMEOUT_S = 86_400.0


class InventoryError(DeviceError):
    """The inventory file or a device URL is wrong (exit code 2)."""


@dataclass(frozen=True)
class _Key:
    kinds: tuple[DeviceKind, ...]
    type_name: str
    check: Callable[[object], bool]


def _is_str(value: object) -> bool:
    return isinstance(value, str)


def _is_str_list(value: object) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def _is_port(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_env(value: object) -> bool:
    return isinstance(value, dict) and all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    )


_ALL: tuple[DeviceKind, ...] = DEVICE_KINDS
_KEYS: dict[str, _Key] = {
    "kind": _Key(_ALL, f"one of {', '.join(DEVICE_KINDS)}", _is_str),
    "host": _Key(("ssh",), "a host name", _is_str),
    "user": _Key(("ssh",), "a login name", _is_str),
    "port": _Key(("ssh",), "an integer 1-65535", _is_port),
    "identity_file": _Key(("ssh",), "a path", _is_str),
    "accept_new_host_key": _Key(("ssh",), "true or false", lambda v: isinstance(v, bool)),
    "known_hosts_file": _Key(("ssh",), "a path", _is_str),
    "ssh_options": _Key(("ssh",), 'a list of strings like ["ProxyJump=bastion"]', _is_str_list),
    "serial": _Key(("adb",), "a device serial", _is_str),
    "adb": _Key(("adb",), "a path to adb", _is_str),
    "adb_server": _Key(("adb",), '"host:port"', _is_str),
    "perf_test": _Key(("adb",), "a local path", _is_str),
    "perf_test_libs": _Key(("adb",), "a list of local paths", _is_str_list),
    "python": _Key(_ALL, "a path or command line", _is_str),
    "workdir": _Key(_ALL, "a directory on the device", _is_str),
    "cpus": _Key(_ALL, '"0,1", "4-7", "big", "little", "all" or "0xf0"', _is_str),
    "cores": _Key(_ALL, "an alias of cpus", _is_str),
    "env": _Key(_ALL, "a table of string values", _is_env),
    "connect_timeout_s": _Key(_ALL, "a number of seconds > 0", _is_number),
}


def _fail(device: str, message: str) -> InventoryError:
    return InventoryError(f"device {device!r}: {message}")


def _is_device_file(path: str) -> bool:
    try:
        return not stat.S_ISREG(os.stat(path).st_mode)
    except OSError:
        return False  # not there yet: ssh creates it


def _check_host(device: str, host: str) -> str:
    if not host or not valid_host(host):
        raise _fail(device, f"invalid host {host!r}; give a host name or address")
    return host


def _check_port(device: str, port: int) -> int:
    if not 1 <= port <= 65535:
        raise _fail(device, f"port {port} is out of range; use 1-65535")
    return port


def _parse_hostport(device: str, key: str, text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit():
        raise _fail(device, f"{key} {text!r} must be host:port, e.g. 127.0.0.1:5037")
    return _check_host(device, host.strip("[]")), _check_port(device, int(port))


def _local_path(base: Path | None, value: str) -> str:
    path = Path(value).expanduser()
    if base is not None and not path.is_absolute():
        path = base / path
    return str(path)


def config_from_table(
    name: str, table: Mapping[str, Any], base: Path | None = None, check_name: bool = True
) -> DeviceConfig:
    """A ``DeviceConfig`` from one ``[devices.NAME]`` table (or a URL's parts), validated."""
    if check_name and not _NAME.match(name):
        raise InventoryError(f"invalid device name {name!r}; use letters, digits, '.', '_' and '-'")
    for key, value in table.items():
        spec = _KEYS.get(key)
        if spec is None:
            raise _fail(name, f"unknown key {key!r}; allowed keys: {', '.join(_KEYS)}")
        if not spec.check(value):
            raise _fail(name, f"{key} must be {spec.type_name}, not {value!r}")
    kind_value = table.get("kind")
    if kind_value is None:
        kind_value = "ssh" if "host" in table else "adb" if "serial" in table else None
        if kind_value is None:
            raise _fail(name, f"say its kind: kind = one of {', '.join(DEVICE_KINDS)}")
    if kind_value not in DEVICE_KINDS:
        raise _fail(name, f"kind must be one of {', '.join(DEVICE_KINDS)}, not {kind_value!r}")
    kind = cast(DeviceKind, kind_value)
    for key in table:
        if kind not in _KEYS[key].kinds:
            raise _fail(name, f"key {key!r} does not apply to a {kind} device")
    if "cpus" in table and "cores" in table:
        raise _fail(name, "give cpus or its alias cores, not both")
    env = dict(table.get("env", {}))
    for key in env:
        if not _ENV_KEY.match(key):
            raise _fail(name, f"env key {key!r} is not a valid variable name")
    timeout = float(table.get("connect_timeout_s", 10.0))
    if not (math.isfinite(timeout) and 0 < timeout <= MAX_CONNECT_TIMEOUT_S):
        raise _fail(
            name, f"connect_timeout_s must be a number of seconds from 0 to 86400, not {timeout}"
        )
    fields: dict[str, Any] = {
        "name": name,
        "kind": kind,
        "python": table.get("python"),
        "workdir": table.get("workdir"),
        "cpus": table.get("cpus", table.get("cores")),
        "env": env,
        "connect_timeout_s": timeout,
    }
    if kind == "ssh":
        if "host" not in table:
            raise _fail(name, 'an ssh device needs host = "..."')
        user = table.get("user")
        if user is not None and not valid_user(user):
            raise _fail(name, f"invalid user {user!r}; give a plain login name")
        try:
            ssh_options = check_ssh_options(table.get("ssh_options", []))
        except UnsafeSshOption as exc:
            raise _fail(name, exc.message) from None
        known_hosts = (
            _local_path(base, table["known_hosts_file"]) if "known_hosts_file" in table else None
        )
        if known_hosts is not None and _is_device_file(known_hosts):
            raise _fail(
                name,
                f"known_hosts_file {known_hosts} is not a regular file; host keys would never "
                "be recorded or checked; give a file path",
            )
        fields.update(
            host=_check_host(name, table["host"]),
            user=user,
            port=_check_port(name, table["port"]) if "port" in table else None,
            identity_file=(
                _local_path(base, table["identity_file"]) if "identity_file" in table else None
            ),
            accept_new_host_key=table.get("accept_new_host_key", False),
            known_hosts_file=known_hosts,
            ssh_options=ssh_options,
        )
    elif kind == "adb":
        serial = table.get("serial")
        if not serial or _BAD_CHARS.search(serial) or serial.startswith("-"):
            raise _fail(name, 'an adb device needs serial = "..." (see `adb devices`)')
        fields.update(serial=serial, adb_path=table.get("adb", "adb"))
        if "adb_server" in table:
            host, port = _parse_hostport(name, "adb_server", table["adb_server"])
            fields.update(adb_server_host=host, adb_server_port=port)
        if "perf_test" in table:
            fields["perf_test"] = _local_path(base, table["perf_test"])
        fields["perf_test_libs"] = tuple(
            _local_path(base, p) for p in table.get("perf_test_libs", ())
        )
    return DeviceConfig(**fields)


INVENTORY_LIMIT_BYTES: Final = 1 << 20
"""The largest inventory read (a real one is a few kilobytes)."""


def _read_inventory(path: Path) -> dict[str, Any]:
    try:
        raw = read_bounded(Path(path), flag="--inventory", limit=INVENTORY_LIMIT_BYTES)
    except UnreadableFile as exc:
        raise InventoryError(exc.message) from None
    except FileNotFoundError:
        raise InventoryError(
            f"device inventory {path} does not exist; create it or give a device URL ({URL_FORMS})"
        ) from None
    except OSError as exc:
        raise InventoryError(
            f"cannot read device inventory {path} ({exc.strerror}); check its permissions"
        ) from None
    if b"\0" in raw:
        raise InventoryError(f"{path} holds a NUL byte; an inventory is TOML text")
    try:
        data: dict[str, Any] = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise InventoryError(f"{path} is not UTF-8 text; save the inventory as UTF-8") from None
    except tomllib.TOMLDecodeError as exc:
        raise InventoryError(f"{path} is not valid TOML: {exc}; fix the file") from None
    except RecursionError:
        raise InventoryError(
            f"{path} nests arrays or tables too deeply; an inventory is a few flat tables"
        ) from None
    unknown = sorted(set(data) - {"devices", "groups"})
    if unknown:
        raise InventoryError(
            f"{path}: unknown top-level key(s) {', '.join(unknown)}; devices go in "
            "[devices.NAME], groups in [groups]"
        )
    return data


def load_inventory(path: Path) -> dict[str, DeviceConfig]:
    """Every device in a TOML inventory file, by name."""
    data = _read_inventory(path)
    devices = data.get("devices", {})
    if not isinstance(devices, dict):
        raise InventoryError(f"{path}: devices must be tables, [devices.NAME]")
    result: dict[str, DeviceConfig] = {}
    for name, table in devices.items():
        if not isinstance(table, dict):
            raise InventoryError(f"{path}: device {name!r} must be a table, [devices.{name}]")
        result[name] = config_from_table(name, table, base=Path(path).resolve().parent)
    return result


def load_groups(path: Path) -> dict[str, tuple[str, ...]]:
    """The inventory's device groups (``[groups] phones = ["pixel7", "s23"]``), by name;
    every member is a device of the inventory or ``local``, and no group shares a name with
    a device."""
    data = _read_inventory(path)
    groups = data.get("groups", {})
    if not isinstance(groups, dict):
        raise InventoryError(f'{path}: groups must be a table, [groups] NAME = ["dev", ...]')
    devices = set(data.get("devices", {})) | {"local"}
    result: dict[str, tuple[str, ...]] = {}
    for name, members in groups.items():
        if (
            not isinstance(members, list)
            or not members
            or not all(isinstance(m, str) for m in members)
        ):
            raise InventoryError(
                f'{path}: group {name!r} must be a list of device names, {name} = ["a", "b"]'
            )
        if name in devices:
            raise InventoryError(f"{path}: group {name!r} has the name of a device; rename one")
        unknown = [m for m in members if m not in devices]
        if unknown:
            raise InventoryError(
                f"{path}: group {name!r} names unknown device(s) {', '.join(unknown)}; "
                "members are [devices.NAME] entries or local"
            )
        result[name] = tuple(members)
    return result


def resolve_devices(names: Sequence[str], inventory_path: Path | None = None) -> list[DeviceConfig]:
    """The devices a user named, groups of the inventory expanded, each device once."""
    path = inventory_path if inventory_path is not None else DEFAULT_INVENTORY
    groups = load_groups(path) if inventory_path is not None or path.exists() else {}
    expanded: list[str] = []
    for name in names:
        expanded.extend(groups.get(name.strip(), (name,)))
    result: list[DeviceConfig] = []
    for name in dict.fromkeys(expanded):
        device = resolve_device(name, inventory_path)
        if all(device.name != other.name for other in result):
            result.append(device)
    return result


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _url_params(url: str, query: str, allowed: dict[str, str]) -> dict[str, Any]:
    table: dict[str, Any] = {}
    for key, value in parse_qsl(query, keep_blank_values=True, strict_parsing=False):
        target = allowed.get(key)
        if target is None:
            raise InventoryError(
                f"device URL {url!r}: unknown parameter {key!r}; allowed: {', '.join(allowed)}"
            )
        if target in table and target not in ("ssh_options",):
            raise InventoryError(f"device URL {url!r}: parameter {key!r} given twice")
        if target == "accept_new_host_key":
            if value.lower() not in _TRUE | _FALSE:
                raise InventoryError(f"device URL {url!r}: {key} must be 1 or 0, not {value!r}")
            table[target] = value.lower() in _TRUE
        elif target == "connect_timeout_s":
            try:
                table[target] = float(value)
                if not math.isfinite(table[target]):
                    raise ValueError(value)
            except ValueError:
                raise InventoryError(
                    f"device URL {url!r}: {key} must be a number of seconds, not {value!r}"
                ) from None
        elif target == "ssh_options":
            table.setdefault(target, []).append(value)
        elif target == "perf_test_libs":
            table[target] = [p for p in value.split(",") if p]
        else:
            table[target] = value
    return table


_COMMON_PARAMS = {
    "python": "python",
    "cpus": "cpus",
    "cores": "cpus",
    "workdir": "workdir",
    "connect_timeout_s": "connect_timeout_s",
}
_SSH_PARAMS = {
    **_COMMON_PARAMS,
    "identity_file": "identity_file",
    "accept_new_host_key": "accept_new_host_key",
    "known_hosts_file": "known_hosts_file",
    "ssh_option": "ssh_options",
}
_ADB_PARAMS = {
    **_COMMON_PARAMS,
    "adb": "adb",
    "server": "adb_server",
    "perf_test": "perf_test",
    "libs": "perf_test_libs",
}


def parse_device_url(url: str) -> DeviceConfig:
    """A ``DeviceConfig`` from ``ssh://...`` or ``adb://...``."""
    if _BAD_CHARS.search(url):
        raise InventoryError(f"device URL {url!r} contains whitespace or control characters")
    try:
        parts = urlsplit(url)
        _ = parts.hostname  # parses (and checks) a bracketed address
    except ValueError as exc:
        raise InventoryError(
            f"device URL {url!r} is malformed ({exc}); write e.g. ssh://user@host:port "
            "or ssh://user@[::1]:22"
        ) from None
    name = f"{parts.scheme}://{parts.netloc}"
    if parts.scheme == "ssh":
        if parts.path not in ("", "/") or parts.fragment:
            raise InventoryError(f"device URL {url!r}: write ssh://user@host:port with no path")
        try:
            port = parts.port
        except ValueError:
            raise InventoryError(f"device URL {url!r}: the port must be a number 1-65535") from None
        host = parts.hostname
        if not host:
            raise InventoryError(f"device URL {url!r} has no host; write ssh://user@host:port")
        table = _url_params(url, parts.query, _SSH_PARAMS)
        table.update(kind="ssh", host=unquote(host))
        if parts.username:
            table["user"] = unquote(parts.username)
        if parts.password is not None:
            raise InventoryError(
                f"device URL {url!r} carries a password; use a key (ssh-copy-id) instead"
            )
        if port is not None:
            table["port"] = port
        return config_from_table(name, table, check_name=False)
    if parts.scheme == "adb":
        serial = unquote(parts.netloc)
        if not serial or parts.path not in ("", "/") or parts.fragment:
            raise InventoryError(f"device URL {url!r}: write adb://SERIAL (see `adb devices`)")
        table = _url_params(url, parts.query, _ADB_PARAMS)
        table.update(kind="adb", serial=serial)
        return config_from_table(name, table, check_name=False)
    raise InventoryError(f"unknown device URL {url!r}; use one of {URL_FORMS}")


def resolve_device(name_or_url: str, inventory_path: Path | None = None) -> DeviceConfig:
    """The device a user named: ``local``, a URL, or a name in the inventory."""
    text = name_or_url.strip()
    if "://" in text:
        return parse_device_url(text)
    path = inventory_path if inventory_path is not None else DEFAULT_INVENTORY
    devices: dict[str, DeviceConfig] = {}
    if inventory_path is not None or path.exists():
        devices = load_inventory(path)
    if text in devices:
        return devices[text]
    if text == "local":
        return DeviceConfig(name="local")
    known = ", ".join(sorted({"local", *devices}))
    where = f" in {path}" if devices or inventory_path is not None else f" (no {path})"
    raise InventoryError(
        f"unknown device {text!r}{where}; known devices: {known}; or give a URL: {URL_FORMS}"
    )
