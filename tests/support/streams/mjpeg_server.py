"""A live MJPEG-over-HTTP camera on 127.0.0.1, for tests: python mjpeg_server.py PORT VIDEO [FPS].

Serves the frames of a video file, looping, as multipart/x-mixed-replace JPEGs (what IP cameras
send), and prints "ready" once it listens. Killing the process is the camera going away.
"""

from __future__ import annotations

import http.server
import sys
import time

import cv2


def load_jpegs(video: str, limit: int = 120) -> list[bytes]:
    capture = cv2.VideoCapture(video)
    frames = []
    while len(frames) < limit:
        ok, image = capture.read()
        if not ok:
            break
        frames.append(cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 80])[1].tobytes())
    capture.release()
    if not frames:
        raise SystemExit(f"no frames in {video}")
    return frames


def main() -> None:
    port, video = int(sys.argv[1]), sys.argv[2]
    fps = float(sys.argv[3]) if len(sys.argv) > 3 else 25.0
    jpegs = load_jpegs(video)

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
            self.end_headers()
            index = 0
            try:
                while True:
                    jpeg = jpegs[index % len(jpegs)]
                    self.wfile.write(b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n" % len(jpeg))
                    self.wfile.write(jpeg + b"\r\n")
                    index += 1
                    time.sleep(1.0 / fps)
            except (BrokenPipeError, ConnectionResetError):
                pass

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    print("ready", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
