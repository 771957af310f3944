"""Publishing: message shapes and sinks."""

from edgevision.publish.messages import RESULT_SCHEMA, result_message
from edgevision.publish.sink import JsonLinesSink, Sink, encode, open_sink

__all__ = ["RESULT_SCHEMA", "JsonLinesSink", "Sink", "encode", "open_sink", "result_message"]
