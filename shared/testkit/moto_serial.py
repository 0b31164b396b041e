"""Runs moto_server with requests handled one at a time.

moto applies writes with unlocked read-modify-write steps, so concurrent requests can lose
updates (two concurrent ADDs both reading the same value). DynamoDB applies each write
atomically; serialising requests gives moto the same guarantee.
Usage: python moto_serial.py [-H HOST] [-p PORT]
"""
import argparse
import threading

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import run_simple

parser = argparse.ArgumentParser()
parser.add_argument("-H", "--host", default="127.0.0.1")
parser.add_argument("-p", "--port", type=int, default=5000)
args = parser.parse_args()

app = DomainDispatcherApplication(create_backend_app)
lock = threading.Lock()


def serial(environ, start_response):
    with lock:
        # Materialise the body inside the lock: moto builds responses eagerly anyway.
        return list(app(environ, start_response))


run_simple(args.host, args.port, serial, threaded=True)
