"""A local DingTalk simulator (Stream gateway, OpenAPI, session webhooks) for tests and demos."""

from bot.simulator.faults import FLOW_CONTROL_CODE, THROTTLING_CODE, Faults
from bot.simulator.frames import BOT_TOPIC, CARD_TOPIC, frame_data
from bot.simulator.sdk_compat import point_sdk_at
from bot.simulator.server import Simulator
from bot.simulator.state import Recorded
from bot.simulator.thread import SimulatorThread
from bot.simulator.webhooks import SESSION_GONE

__all__ = [
    "BOT_TOPIC",
    "CARD_TOPIC",
    "FLOW_CONTROL_CODE",
    "SESSION_GONE",
    "THROTTLING_CODE",
    "Faults",
    "Recorded",
    "Simulator",
    "SimulatorThread",
    "frame_data",
    "point_sdk_at",
]
