#!/bin/sh
# sio_server with two workers: the interop suites run once more through this wrapper (SIO_SERVER), so every
# Socket.IO operation they check also crosses worker threads. SIO_SERVER_BIN names the real binary.
exec "$SIO_SERVER_BIN" --workers "${SIO_WORKERS:-2}" "$@"
