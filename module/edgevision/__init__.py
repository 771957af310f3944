"""edgevision: GPU vision inference module for Azure IoT Edge (EFLOW)."""

__version__ = "0.1.0"
