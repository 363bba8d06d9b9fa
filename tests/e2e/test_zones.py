"""Zone-aware routing (brief section 4): Metadata lists only the client's zone's agents."""

import time

from confluent_kafka.admin import AdminClient


def _brokers(bootstrap, client_id=None, rack=None):
    conf = {"bootstrap.servers": bootstrap}
    if client_id:
        conf["client.id"] = client_id
    if rack:
        conf["client.rack"] = rack
    a = AdminClient(conf)
    md = a.list_topics(timeout=20)
    return {b.port for b in md.brokers.values()}


def _settled(bootstrap, want, timeout=10, **kw):
    """The brokers listed to a client, once they equal `want` or `timeout` passed: an agent
    learns of the others at its next heartbeat (every second)."""
    deadline = time.monotonic() + timeout
    got = _brokers(bootstrap, **kw)
    while got != want and time.monotonic() < deadline:
        time.sleep(0.2)
        got = _brokers(bootstrap, **kw)
    return got


def test_metadata_lists_the_clients_zone(cluster_factory):
    c = cluster_factory(0)
    a1 = c.add_agent(zone="zone-a")
    a2 = c.add_agent(zone="zone-a")
    b1 = c.add_agent(zone="zone-b")
    zone_a = {a1.port, a2.port}
    # Wait until every agent knows the whole fleet.
    for agent in (a1, a2, b1):
        assert _settled(agent.bootstrap, zone_a | {b1.port}, client_id="floe_az=zone-z") == \
            zone_a | {b1.port}
    # named zone, through client.id (floe_az= and WarpStream's ws_az=) or client.rack
    assert _brokers(b1.bootstrap, client_id="app,floe_az=zone-a") == zone_a
    assert _brokers(b1.bootstrap, client_id="ws_az=zone-a") == zone_a
    assert _brokers(a1.bootstrap, client_id="app,floe_az=zone-b") == {b1.port}
    # no zone: the zone of the agent the client connected to
    assert _brokers(b1.bootstrap) == {b1.port}
    assert _brokers(a1.bootstrap) == zone_a
    # a zone with no live agent: all agents
    assert _brokers(a1.bootstrap, client_id="floe_az=zone-z") == zone_a | {b1.port}


def test_a_dead_agent_leaves_metadata_and_a_restarted_one_returns(cluster_factory, monkeypatch):
    monkeypatch.setenv("FLOE_AGENT_TIMEOUT_MS", "3000")
    c = cluster_factory(0)
    a1 = c.add_agent(zone="zone-a")
    a2 = c.add_agent(zone="zone-a")
    both = {a1.port, a2.port}
    assert _settled(a1.bootstrap, both) == both
    # Killed without a goodbye: gone once its heartbeats stop for the agent timeout.
    a2.process.kill()
    killed = time.monotonic()
    while _brokers(a1.bootstrap) != {a1.port} and time.monotonic() - killed < 15:
        time.sleep(0.2)
    assert _brokers(a1.bootstrap) == {a1.port}, "the dead agent is still listed"
    assert time.monotonic() - killed < 10, "took longer than the 3 s timeout allows"
    # Restarted with the same node id: listed again.
    a2.start()
    deadline = time.monotonic() + 10
    while _brokers(a1.bootstrap) != both and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _brokers(a2.bootstrap) == both
    # A clean stop leaves at once: the others drop it at their next heartbeat, before the
    # 3 s timeout could have.
    a2.stop()
    assert _settled(a1.bootstrap, {a1.port}, timeout=2.5) == {a1.port}


def test_client_zone_from_a_cidr_map(cluster_factory):
    c = cluster_factory(0)
    # Clients on loopback are in zone-b, says this zone-a agent's map.
    a1 = c.add_agent(zone="zone-a", extra_args=["--client-zone-cidrs", "10.0.0.0/8=zone-x,127.0.0.0/8=zone-b"])
    b1 = c.add_agent(zone="zone-b")
    assert _settled(a1.bootstrap, {b1.port}) == {b1.port}
    # A zone named in client.id still wins over the address.
    assert _settled(a1.bootstrap, {a1.port}, client_id="floe_az=zone-a") == {a1.port}
    # Without a map, the agent's own zone.
    assert _settled(b1.bootstrap, {b1.port}) == {b1.port}
