#!/usr/bin/python3
"""An independent ALS client (Python grpcio, not gatescope's own gRPC stack).

Usage: als_client.py HOST:PORT DIR [--ca CA.pem [--cert CERT.pem --key KEY.pem] [--server-name NAME]]
With --ca the channel uses TLS trusting CA.pem; with --cert/--key it also presents a client certificate.
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


def read(path):
    with open(path, "rb") as fh:
        return fh.read()


def main() -> None:
    target, folder = sys.argv[1], sys.argv[2]
    flags = dict(zip(sys.argv[3::2], sys.argv[4::2]))
    options = [("grpc.max_send_message_length", -1)]
    if "--ca" in flags:
        credentials = grpc.ssl_channel_credentials(
            root_certificates=read(flags["--ca"]),
            private_key=read(flags["--key"]) if "--key" in flags else None,
            certificate_chain=read(flags["--cert"]) if "--cert" in flags else None,
        )
        if "--server-name" in flags:
            options.append(("grpc.ssl_target_name_override", flags["--server-name"]))
        channel = grpc.secure_channel(target, credentials, options=options)
    else:
        channel = grpc.insecure_channel(target, options=options)
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

        future = call.future(messages())
        future.add_done_callback(lambda _f, done=done: done.set())  # refused before it was all sent
        futures.append(future)
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
