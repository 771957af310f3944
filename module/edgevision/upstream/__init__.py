"""The link to IoT Hub through edgeHub: outputs, module twin, direct methods."""
