"""Points the dingtalk-stream SDK (0.24.3) at a chosen DingTalk, working around its quirks."""

from __future__ import annotations

from typing import Any


def point_sdk_at(base_url: str) -> None:
    """Redirect every SDK URL to ``base_url`` (the simulator, or a proxy) after import.

    - Each SDK module copies DINGTALK_OPENAPI_ENDPOINT by value at import, so all of them
      (utils, stream, chatbot, card_replier) are patched.
    - ``DingTalkStreamClient.OPEN_CONNECTION_API`` is read from the class, so it is set there;
      an instance attribute would be ignored.
    - ``get_host_ip`` opens a UDP socket towards 8.8.8.8 to learn the local address: stubbed so
      nothing leaves the machine.
    - ``websockets.exceptions`` is imported lazily by websockets; an error before the first
      connect then kills ``start()`` with AttributeError, so it is imported here.
    """
    import websockets.exceptions  # noqa: F401, PLC0415  (see docstring)
    from dingtalk_stream import card_replier, chatbot, stream, utils  # noqa: PLC0415

    base = base_url.rstrip("/")
    for module in (utils, stream, chatbot, card_replier):
        module.DINGTALK_OPENAPI_ENDPOINT = base
    stream.DingTalkStreamClient.OPEN_CONNECTION_API = base + "/v1.0/gateway/connections/open"

    def local_ip(self: Any) -> str:
        del self
        return "127.0.0.1"

    stream.DingTalkStreamClient.get_host_ip = local_ip
