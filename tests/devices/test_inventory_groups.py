"""Device groups of the inventory (``[groups] phones = ["pixel7", "s23"]``): expanded where
several devices are named, checked like every other inventory key."""

from __future__ import annotations

from pathlib import Path

import pytest

from devices.errors import DeviceError
from devices.inventory import load_groups, resolve_devices

DEVICES = '[devices.a]\nkind = "local"\n\n[devices.b]\nkind = "local"\n'


def test_groups_expand_and_each_device_is_named_once(tmp_path: Path) -> None:
    inventory = tmp_path / "devices.toml"
    inventory.write_text(DEVICES + '\n[groups]\npair = ["a", "b"]\nall = ["b", "local", "a"]\n')
    assert load_groups(inventory) == {"pair": ("a", "b"), "all": ("b", "local", "a")}
    names = [d.name for d in resolve_devices(["pair", "all", "a"], inventory)]
    assert names == ["a", "b", "local"]


@pytest.mark.parametrize(
    ("groups", "message"),
    [
        ('pair = ["a", "zz"]', "group 'pair' names unknown device(s) zz"),
        ('a = ["b"]', "group 'a' has the name of a device"),
        ('pair = "a"', "group 'pair' must be a list of device names"),
        ("pair = []", "group 'pair' must be a list of device names"),
    ],
)
def test_bad_groups_are_one_line(tmp_path: Path, groups: str, message: str) -> None:
    inventory = tmp_path / "devices.toml"
    inventory.write_text(DEVICES + f"\n[groups]\n{groups}\n")
    with pytest.raises(DeviceError) as caught:
        resolve_devices(["a"], inventory)
    assert message in caught.value.message and "\n" not in caught.value.message
