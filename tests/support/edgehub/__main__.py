"""Run the local edgeHub by hand: python -m tests.support.edgehub [--desired FILE.json] [--iotedge]

Starts mosquitto with TLS on 127.0.0.1:8883 and the IoT Hub simulator, prints the variables to
start the module with, then prints every message the module sends until Ctrl-C. With --iotedge,
also a workload API on a unix socket, and edgeAgent's IOTEDGE_* variables instead of the
local-development pair.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
import uuid
from pathlib import Path

from tests.support.edgehub import IoTHubSimulator, LocalPKI, Mosquitto, WorkloadAPI


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--desired", type=Path, help="JSON file: the module twin's desired properties")
    parser.add_argument("--iotedge", action="store_true", help="as edgeAgent starts modules: a workload API")
    args = parser.parse_args()
    desired = json.loads(args.desired.read_text()) if args.desired else {}
    directory = Path(tempfile.mkdtemp(prefix="edgehub-", dir="/tmp"))
    pki = LocalPKI.create(directory)
    broker = Mosquitto(directory, pki)
    broker.start()
    hub = IoTHubSimulator(pki.ca_cert, desired=desired)
    hub.start()
    workload = None
    environment = hub.module_environment()
    if args.iotedge:
        workload = WorkloadAPI(
            directory / "workload.sock", pki.ca_cert, hub.module_id, uuid.uuid4().hex[:16], b"k" * 32
        )
        workload.start()
        environment = hub.edge_environment(workload.uri, workload.generation_id)
    print("start the module with:")
    for key, value in environment.items():
        print(f"  export {key}='{value}'")
    print("  edgevision run")
    shown = 0
    try:
        while True:
            time.sleep(0.5)
            messages = hub.outputs()
            for message in messages[shown:]:
                print(f"{message.output}: {json.dumps(message.body)[:200]}")
            shown = len(messages)
    except KeyboardInterrupt:
        pass
    finally:
        hub.stop()
        broker.stop()
        if workload is not None:
            workload.stop()


if __name__ == "__main__":
    main()
