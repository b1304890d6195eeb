"""The adb device wire format: 24-byte messages, shell-v2 packets and sync structs.

Sources (AOSP ``platform/system/core`` at tag platform-tools-29.0.6): ``adb/protocol.txt``
and ``adb/adb.h`` (message header, command words, versions, payload limits),
``adb/adb.cpp`` (``calculate_apacket_checksum``: the byte sum), ``adb/shell_protocol.h``
(packet ids), ``adb/file_sync_protocol.h`` and ``adb/SYNC.TXT`` (sync ids and structs).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

A_SYNC = 0x434E5953
A_CNXN = 0x4E584E43
A_AUTH = 0x48545541
A_OPEN = 0x4E45504F
A_OKAY = 0x59414B4F
A_CLSE = 0x45534C43
A_WRTE = 0x45545257

A_VERSION = 0x01000001
MAX_PAYLOAD = 1024 * 1024
DEVICE_MAX_PAYLOAD = 256 * 1024

AUTH_TOKEN = 1
AUTH_SIGNATURE = 2
AUTH_RSAPUBLICKEY = 3

HEADER = struct.Struct("<6I")

# shell protocol v2 packet ids (shell_protocol.h)
SHELL_STDIN = 0
SHELL_STDOUT = 1
SHELL_STDERR = 2
SHELL_EXIT = 3
SHELL_CLOSE_STDIN = 4
SHELL_WINDOW_SIZE = 5
SHELL_PACKET = struct.Struct("<BI")

# sync ids and structs (file_sync_protocol.h)
SYNC_DATA_MAX = 64 * 1024
SYNC_REQUEST = struct.Struct("<4sI")
STAT_V1 = struct.Struct("<4sIII")
STAT_V2 = struct.Struct("<4sIQQIIIIQqqq")
DENT_V1 = struct.Struct("<4sIIII")
DENT_V2 = struct.Struct("<4sIQQIIIIQqqqI")


def command_name(command: int) -> str:
    return command.to_bytes(4, "little").decode("ascii", "replace")


@dataclass(frozen=True)
class Message:
    """One adb message: header fields and payload."""

    command: int
    arg0: int
    arg1: int
    payload: bytes = b""

    def encode(self) -> bytes:
        checksum = sum(self.payload) & 0xFFFFFFFF
        header = HEADER.pack(
            self.command,
            self.arg0,
            self.arg1,
            len(self.payload),
            checksum,
            self.command ^ 0xFFFFFFFF,
        )
        return header + self.payload


def shell_packet(packet_id: int, data: bytes) -> bytes:
    return SHELL_PACKET.pack(packet_id, len(data)) + data
