"""A local DingTalk simulator (Stream gateway, OpenAPI, session webhooks) for tests and demos."""

from bot.simulator.sdk_compat import point_sdk_at
from bot.simulator.server import FLOW_CONTROL_CODE, Faults, Simulator
from bot.simulator.thread import SimulatorThread, frame_data

__all__ = [
    "FLOW_CONTROL_CODE",
    "Faults",
    "Simulator",
    "SimulatorThread",
    "frame_data",
    "point_sdk_at",
]
