"""Runs moto_server with requests handled one at a time.

moto applies writes with unlocked read-modify-write steps, so concurrent requests can lose
updates (two concurrent ADDs both reading the same value). DynamoDB applies each write
atomically; serialising requests gives moto the same guarantee.

It also mends how moto rolls back a cancelled TransactWriteItems: it swaps in a deep copy of
each table, and so of the table's stream shard. A stream reader's shard iterator still points
at the old shard, which kept the stream records of the cancelled writes and never sees a later
one: a change feed would count writes DynamoDB never made and miss the ones it did.
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

from moto.dynamodb.models import DynamoDBBackend

_transact_write_items = DynamoDBBackend.transact_write_items


def transact_write_items(self, transact_items):
    shards = {
        name: (table.stream_shard, len(table.stream_shard.items))
        for name, table in self.tables.items()
        if table.stream_shard is not None
    }
    try:
        return _transact_write_items(self, transact_items)
    except Exception:
        # DynamoDB records nothing for a cancelled transaction: the shard readers hold stays,
        # without the records of the writes moto undid.
        for name, (shard, length) in shards.items():
            table = self.tables.get(name)
            if table is not None:
                del shard.items[length:]
                shard.table = table
                table.stream_shard = shard
        raise


DynamoDBBackend.transact_write_items = transact_write_items

app = DomainDispatcherApplication(create_backend_app)
lock = threading.Lock()


def serial(environ, start_response):
    with lock:
        # Materialise the body inside the lock: moto builds responses eagerly anyway.
        return list(app(environ, start_response))


run_simple(args.host, args.port, serial, threaded=True)
