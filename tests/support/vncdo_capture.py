"""Captures a VNC server's screen with vncdotool using a chosen encoding.

The vncdo command line only offers Raw; the Python API lets a test pick what vncdotool's
released version can decode (e.g. ZRLE).

usage: python vncdo_capture.py HOST::PORT ENCODING_NAME OUT.png
"""
import sys

from vncdotool import api, rfb
from vncdotool.client import VNCDoToolClient


def main() -> None:
    server, encoding, out = sys.argv[1:4]
    VNCDoToolClient.encoding = getattr(rfb.Encoding, encoding)
    client = api.connect(server)
    try:
        client.captureScreen(out)
    finally:
        client.disconnect()
        api.shutdown()


if __name__ == "__main__":
    main()
