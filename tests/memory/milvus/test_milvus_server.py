"""The local Milvus server is reachable on loopback only."""

import socket


def _listeners():
    """(address hex, port) of every TCP socket listening in this network namespace."""
    out = []
    for path in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = open(path).read().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            local, state = fields[1], fields[3]
            if state == "0A":  # LISTEN
                addr, port = local.split(":")
                out.append((addr, int(port, 16)))
    return out


def test_only_the_loopback_relay_listens_here(milvus_server):
    listening = _listeners()
    assert ("0100007F", milvus_server.port) in listening  # 127.0.0.1, the relay
    # Milvus itself (gRPC proxy, etcd, metrics) listens inside its own namespace, not here
    assert not [p for _, p in listening if p == milvus_server.inner_port]
    with socket.create_connection(("127.0.0.1", milvus_server.port), timeout=5):
        pass


def test_the_server_answers_through_the_relay(milvus_server):
    from memory.milvus import milvus_client

    client = milvus_client(milvus_server.uri)
    assert isinstance(client.list_collections(), list)
    client.close()
