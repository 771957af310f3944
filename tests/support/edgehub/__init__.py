"""A local stand-in for edgeHub: real mosquitto with TLS on 127.0.0.1:8883, plus an IoT Hub simulator.

The module under test connects with the real azure-iot-device SDK through its local-development
fallback (EdgeHubConnectionString + EdgeModuleCACertificateFile). `python -m tests.support.edgehub` runs
it as a tool for trying the module by hand.
"""

from tests.support.edgehub.broker import Mosquitto
from tests.support.edgehub.certs import LocalPKI
from tests.support.edgehub.hub import IoTHubSimulator, OutputMessage
from tests.support.edgehub.workload import WorkloadAPI

__all__ = ["IoTHubSimulator", "LocalPKI", "Mosquitto", "OutputMessage", "WorkloadAPI"]
