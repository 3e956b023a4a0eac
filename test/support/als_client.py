#!/usr/bin/python3
"""An independent ALS client (Python grpcio, not gatescope's own gRPC stack).

Usage: als_client.py HOST:PORT DIR
DIR holds one sub-folder per stream (s0, s1, ...), each with numbered files 000.bin, 001.bin, ...:
pre-encoded envoy.service.accesslog.v3.StreamAccessLogsMessage bytes, sent in order on that stream.
Like Envoy, streams are never half-closed: after sending, the client prints "sent" and keeps every stream
open until its standard input closes. Then it prints each stream's final status.
"""
import os
import sys
import threading

import grpc

METHOD = "/envoy.service.accesslog.v3.AccessLogService/StreamAccessLogs"


def main() -> None:
    target, folder = sys.argv[1], sys.argv[2]
    channel = grpc.insecure_channel(target, options=[("grpc.max_send_message_length", -1)])
    call = channel.stream_unary(METHOD)  # no serializers: raw bytes in and out
    release = threading.Event()
    sent = []
    futures = []
    streams = sorted(os.listdir(folder))
    for name in streams:
        files = sorted(os.listdir(os.path.join(folder, name)))
        done = threading.Event()

        def messages(name=name, files=files, done=done):
            for f in files:
                with open(os.path.join(folder, name, f), "rb") as fh:
                    yield fh.read()
            done.set()
            release.wait()  # keep the stream open, as Envoy does

        futures.append(call.future(messages()))
        sent.append(done)
    for d in sent:
        d.wait()
    print("sent", flush=True)
    sys.stdin.read()
    release.set()
    for name, fut in zip(streams, futures):
        try:
            fut.result(timeout=10)
            print(name, "OK", flush=True)
        except grpc.RpcError as err:
            print(name, err.code().name, flush=True)
    channel.close()


if __name__ == "__main__":
    main()
