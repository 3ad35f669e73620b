"""Compliance screening bot for DingTalk group chats used by Hong Kong financial firms."""

__version__ = "0.1.0"
