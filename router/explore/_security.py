"""Who the explorer answers: the addresses it binds, the Host names it serves, and same-origin writes.

Three rules, each a defence on its own:

* it binds to loopback unless told otherwise (:func:`check_host`);
* it answers only the Host names of an allow-list, in every mode
  (:func:`allowed_hosts_for`), which stops DNS rebinding;
* a state-changing request must come from the page this server served
  (:func:`cross_site_refusal`), besides carrying the session token.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping

from memory import InputError

__all__ = ["LOOPBACK_HOSTS", "allowed_hosts_for", "check_host", "cross_site_refusal"]

#: Host header values answered when the app is bound to loopback.
LOOPBACK_HOSTS = ["127.0.0.1", "localhost", "[::1]", "::1"]


def allowed_hosts_for(host: str, loopback: bool, extra: list[str] | None = None) -> list[str]:
    """The Host header values to answer: the loopback names, or the bound address and ``extra``.

    A wildcard bind (``0.0.0.0``, ``::``) names no host, so ``extra`` must
    then give the names clients use.  Answering only these names stops DNS
    rebinding: a page served from another name cannot read the app.

    Raises
    ------
    InputError
        A wildcard bind without ``extra``.
    """
    names = list(LOOPBACK_HOSTS) if loopback else []
    wildcard = host in ("0.0.0.0", "::", "")
    if not loopback and not wildcard:
        names.append(f"[{host}]" if ":" in host else host)
    names += [h.strip() for h in extra or [] if h.strip()]
    if not names:
        raise InputError(f"--host {host} listens on every address but names none; add --allowed-host NAME for "
                         "each name or address that clients use to reach it")
    return names


def check_host(host: str, allow_remote: bool) -> bool:
    """Whether ``host`` is a loopback address; refuses any other without ``allow_remote``.

    Raises
    ------
    InputError
        ``host`` is not loopback and ``allow_remote`` is false.
    """
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback and not allow_remote:
        raise InputError(f"--host {host} is not a loopback address: anyone who can reach it could read and edit "
                         "the model; add --allow-remote to serve it anyway")
    return loopback


def cross_site_refusal(headers: Mapping[str, str], scheme: str) -> str | None:
    """Why a state-changing request is refused as cross-site, or None if it is same-origin.

    ``Sec-Fetch-Site`` (sent by browsers) must be ``same-origin`` or ``none``,
    and ``Origin``, when sent, must be this server's own
    (``scheme://Host``).  Clients that send neither (scripts, curl) pass
    here; they still need the session token.
    """
    site = headers.get("sec-fetch-site")
    if site is not None and site not in ("same-origin", "none"):
        return f"cross-site request refused (Sec-Fetch-Site: {site}); use the page this server serves"
    origin = headers.get("origin")
    if origin is not None:
        expected = f"{scheme}://{headers.get('host', '')}"
        if origin.lower() != expected.lower():
            return (f"cross-origin request refused (Origin {origin!r} is not {expected!r}); use the page this "
                    "server serves")
    return None
