"""A local stand-in for edgeHub: real mosquitto with TLS on 127.0.0.1:8883, plus an IoT Hub simulator.

The module under test connects with the real azure-iot-device SDK through its local-development
fallback (EdgeHubConnectionString + EdgeModuleCACertificateFile). `python -m tests.edgehub` runs
it as a tool for trying the module by hand.
"""

from tests.edgehub.broker import Mosquitto
from tests.edgehub.certs import LocalPKI
from tests.edgehub.hub import IoTHubSimulator, OutputMessage

__all__ = ["IoTHubSimulator", "LocalPKI", "Mosquitto", "OutputMessage"]
