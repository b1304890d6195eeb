"""Which OpenSSH client options a device URL, an inventory entry or a stored run may set.

A device description is data: it may come from a URL someone pasted, a shared inventory or a
results database read back on ``--resume``. It must never name a command to run on this
machine, load code into ``ssh``, forward anything to the board, or turn host-key checking
off. So options are allow-listed (ssh_config(5), OpenSSH 9.x): everything not in
``ALLOWED_OPTIONS`` is refused with its name, among them ``ProxyCommand``,
``KnownHostsCommand``, ``LocalCommand``/``PermitLocalCommand``, ``RemoteCommand``,
``Match``/``Host``/``Include``, ``PKCS11Provider``, ``SecurityKeyProvider``,
``SmartcardDevice``, ``EnableSSHKeysign``, every ``*Forward*`` option, and
``StrictHostKeyChecking``, ``UserKnownHostsFile``, ``GlobalKnownHostsFile``,
``NoHostAuthenticationForLocalhost``, ``VerifyHostKeyDNS`` (the harness's own
``accept_new_host_key`` and ``known_hosts_file`` settings cover the legitimate uses).

Values are one token of plain characters (no whitespace, quotes, ``=``, ``$``, ``\\``,
``#`` or control characters), so a value can never reach ssh's own line splitter as a second
keyword. ``ProxyJump`` is allowed because OpenSSH runs the jump itself, but its hosts and
users are checked like the device's own (OpenSSH builds a shell command from them).
The option is handed to ssh as one ``-o Keyword=value`` argument, keyword spelled as here.

A device URL read back from a results database (``run --resume``, a lab worker) is held to
a narrower list, ``STORED_OPTIONS``: only options that cannot name a file, a program, another
host or a policy (no identity, certificate or agent socket, no revoked-keys file, no jump
host, no host-key alias or algorithms, no authentication methods); the user names a device
that needs more again on the command line.
"""

from __future__ import annotations

import re

from devices.errors import DeviceError

ALLOWED_OPTIONS: tuple[str, ...] = (
    "AddressFamily",
    "BindAddress",
    "BindInterface",
    "CanonicalDomains",
    "CanonicalizeFallbackLocal",
    "CanonicalizeHostname",
    "CanonicalizeMaxDots",
    "CanonicalizePermittedCNAMEs",
    "CASignatureAlgorithms",
    "CertificateFile",
    "ChannelTimeout",
    "CheckHostIP",
    "Ciphers",
    "Compression",
    "ConnectionAttempts",
    "ConnectTimeout",
    "FingerprintHash",
    "GSSAPIAuthentication",
    "HashKnownHosts",
    "HostKeyAlgorithms",
    "HostKeyAlias",
    "IdentitiesOnly",
    "IdentityAgent",
    "IdentityFile",
    "IPQoS",
    "KbdInteractiveAuthentication",
    "KexAlgorithms",
    "LogLevel",
    "MACs",
    "NumberOfPasswordPrompts",
    "PasswordAuthentication",
    "Port",
    "PreferredAuthentications",
    "ProxyJump",
    "PubkeyAcceptedAlgorithms",
    "PubkeyAcceptedKeyTypes",
    "PubkeyAuthentication",
    "RekeyLimit",
    "RequiredRSASize",
    "RevokedHostKeys",
    "ServerAliveCountMax",
    "ServerAliveInterval",
    "TCPKeepAlive",
    "UpdateHostKeys",
)
STORED_OPTIONS: tuple[str, ...] = (
    "AddressFamily",
    "ChannelTimeout",
    "Compression",
    "ConnectionAttempts",
    "ConnectTimeout",
    "FingerprintHash",
    "IPQoS",
    "LogLevel",
    "NumberOfPasswordPrompts",
    "Port",
    "RekeyLimit",
    "ServerAliveCountMax",
    "ServerAliveInterval",
    "TCPKeepAlive",
)
"""The options a device URL read back from a database may carry (a subset of
``ALLOWED_OPTIONS``: none names a file, a program, a host or a policy)."""
_BY_LOWER = {name.lower(): name for name in ALLOWED_OPTIONS}
_HINTS = {
    "stricthostkeychecking": "host keys are always checked; use accept_new_host_key to trust "
    "a new board on first use",
    "userknownhostsfile": "use known_hosts_file",
    "globalknownhostsfile": "use known_hosts_file",
    "user": "put the user in the URL or the inventory's user",
    "hostname": "put the host in the URL or the inventory's host",
}
_KEYWORD = re.compile(r"[A-Za-z][A-Za-z0-9]*")
_VALUE = re.compile(r"[A-Za-z0-9._,:@%/~+\-\[\]]+\Z")
# user@host:port, the forms OpenSSH accepts for ProxyJump, each part plain.
_USER = re.compile(r"[A-Za-z0-9._][A-Za-z0-9._-]*\$?\Z")
_HOST = re.compile(r"(?:[A-Za-z0-9_][A-Za-z0-9._-]*|\[[0-9A-Fa-f:.%A-Za-z]+\])\Z")
_IPV6 = re.compile(r"[0-9A-Fa-f:.]*:[0-9A-Fa-f:.%A-Za-z]*\Z")


class UnsafeSshOption(DeviceError):
    """An ssh option, host or user that a device description may not carry (exit code 2)."""


def valid_user(user: str) -> bool:
    """A plain login name: letters, digits, ``._-`` (not first ``-``), an optional final ``$``."""
    return bool(_USER.match(user))


def valid_host(host: str) -> bool:
    """A host name, an IPv4 address or an IPv6 address (bare or in brackets); never ``-...``."""
    return bool(_HOST.match(host) or (":" in host and _IPV6.match(host)))


def _check_jump(value: str) -> None:
    if value.lower() == "none":
        return
    for hop in value.split(","):
        user, _, rest = hop.rpartition("@")
        host = rest
        if rest.startswith("["):
            host, _, port = rest.partition("]")
            host += "]"
            port = port.removeprefix(":")
        elif rest.count(":") == 1:
            host, _, port = rest.partition(":")
        else:
            port = ""
        if (user and not valid_user(user)) or not valid_host(host) or (port and not port.isdigit()):
            raise UnsafeSshOption(
                f"ssh option ProxyJump={value}: each hop must be [user@]host[:port] with a "
                "plain user and host name"
            )


def check_ssh_option(option: str) -> str:
    """The option as ``Keyword=value`` when it is allowed, else ``UnsafeSshOption``.

    Accepts ssh_config spellings ``Keyword=value``, ``Keyword value`` and ``Keyword = value``
    with the keyword in any case.
    """
    if not isinstance(option, str):
        raise UnsafeSshOption(f"ssh option {option!r} must be a string 'Keyword=value'")
    match = _KEYWORD.match(option.strip())
    if match is None or re.search(r"[\x00-\x1f\x7f]", option):
        raise UnsafeSshOption(
            f"ssh option {option!r} must look like 'Keyword=value' (ssh_config(5) keyword)"
        )
    keyword = match.group(0)
    rest = option.strip()[match.end() :].lstrip(" \t")
    if rest.startswith("="):
        rest = rest[1:].lstrip(" \t")
    canonical = _BY_LOWER.get(keyword.lower())
    if canonical is None:
        hint = _HINTS.get(keyword.lower())
        raise UnsafeSshOption(
            f"ssh option {keyword} is not allowed in a device description"
            + (f" ({hint})" if hint else " (it can run commands, load code, forward "
               "connections or weaken host-key checking)")
            + f"; allowed: {', '.join(ALLOWED_OPTIONS)}"
        )  # fmt: skip
    if not rest or not _VALUE.match(rest):
        raise UnsafeSshOption(
            f"ssh option {canonical} value {rest!r} must be one plain word (letters, digits, "
            "._,:@%/~+-[]; no spaces, quotes, '=' or '$')"
        )
    if canonical == "ProxyJump":
        _check_jump(rest)
    return f"{canonical}={rest}"


def check_ssh_options(options: object) -> tuple[str, ...]:
    """Every option checked (``check_ssh_option``), in order."""
    if not isinstance(options, (list, tuple)):
        raise UnsafeSshOption(f"ssh options must be a list of 'Keyword=value', not {options!r}")
    return tuple(check_ssh_option(o) for o in options)


def is_stored_option(option: str) -> bool:
    """Whether ``option`` (``Keyword=value`` in any ssh_config spelling) is allowed and its
    keyword is one of ``STORED_OPTIONS``."""
    try:
        checked = check_ssh_option(option)
    except UnsafeSshOption:
        return False
    return checked.partition("=")[0] in STORED_OPTIONS
