"""Points the dingtalk-stream SDK (0.24.3) at a chosen DingTalk base URL, around its quirks."""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import urlsplit

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def point_sdk_at(base_url: str, *, local_ip: str | None = "127.0.0.1") -> None:
    """Redirect every SDK URL to ``base_url`` (the simulator, or a proxy), after import.

    Setting DINGTALK_OPENAPI_ENDPOINT in the environment only works *before* the SDK is
    first imported, so this patches what the import already copied:

    - ``DINGTALK_OPENAPI_ENDPOINT`` is copied by value into ``utils``, ``stream``, ``chatbot``
      and ``card_replier``; each copy is replaced (connections/open, the access token, cards,
      message files all follow). ``upload_to_dingtalk`` keeps its hard-coded oapi host.
    - ``DingTalkStreamClient.OPEN_CONNECTION_API`` is computed at class creation and read
      from the class, so it is set there; an instance or subclass attribute is ignored.
    - ``websockets.exceptions`` is imported lazily by websockets; an error or a cancel before
      the first connect then kills ``start()`` with AttributeError, so it is imported here.
    - ``get_host_ip`` UDP-connects towards 8.8.8.8 to learn the ``localIp`` it reports (no
      packet is sent, but it needs a route); with ``local_ip`` set it returns that instead.
      Pass ``local_ip=None`` to keep the SDK's own lookup.
    - For a loopback ``base_url`` the host is added to NO_PROXY/no_proxy: ``requests`` and
      websockets >= 15 honour proxy variables, and a CI proxy must not see loopback calls.

    The websocket endpoint and session webhooks need nothing: the SDK uses the URLs the
    gateway and the frames hand it, ``ws://`` included.
    """
    import websockets.exceptions  # noqa: F401, PLC0415  (see the docstring)
    from dingtalk_stream import card_replier, chatbot, stream, utils  # noqa: PLC0415

    base = base_url.rstrip("/")
    for module in (utils, stream, chatbot, card_replier):
        module.DINGTALK_OPENAPI_ENDPOINT = base
    stream.DingTalkStreamClient.OPEN_CONNECTION_API = base + "/v1.0/gateway/connections/open"
    if local_ip is not None:

        def fixed_ip(self: Any) -> str:
            del self
            return local_ip

        stream.DingTalkStreamClient.get_host_ip = fixed_ip
    host = urlsplit(base).hostname or ""
    if host in LOOPBACK:
        bypass_proxy(host)


def bypass_proxy(host: str) -> None:
    """Add ``host`` to NO_PROXY and no_proxy (both spellings are read, by different libraries)."""
    for name in ("NO_PROXY", "no_proxy"):
        hosts = [h.strip() for h in os.environ.get(name, "").split(",") if h.strip()]
        if host not in hosts:
            os.environ[name] = ",".join([*hosts, host])
