"""DingTalk at the edge: Stream intake (the only dingtalk_stream import) and the OpenAPI client."""
