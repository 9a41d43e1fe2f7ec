"""``ari.channel_watch.ChannelWatch``, the one place that says which of our originated
channels Asterisk destroyed (inbound's agent legs, outbound's dialer legs)."""

import asyncio

from asterisk_cube.ari.channel_watch import ChannelWatch


async def test_a_watched_channel_is_up_until_its_channel_destroyed():
    watch = ChannelWatch()
    watch.watch("a")
    assert watch.up("a") and not watch.up("never-watched")
    watch.destroyed("a")
    assert not watch.up("a")


async def test_wait_ends_on_the_event_and_gives_up_after_the_bound():
    watch = ChannelWatch()
    for ch in ("a", "b"):
        watch.watch(ch)
    asyncio.get_running_loop().call_later(0.01, watch.destroyed, "a")
    assert await watch.wait(["a", "b", "unknown"], timeout=0.2) == ["b"]  # b lingers
    assert not watch.up("b")  # given up on: not waited for again
    assert await watch.wait(["b"], timeout=5) == []


async def test_missing_after_a_reconnect_counts_as_destroyed():
    watch = ChannelWatch()
    for ch in ("a", "b"):
        watch.watch(ch)
    watch.missing(["b"])
    assert not watch.up("a") and watch.up("b")


async def test_wait_gone_asks_only_while_the_event_has_not_come():
    watch = ChannelWatch()
    watch.watch("a")
    asked: list[str] = []

    async def exists(channel_id):
        asked.append(channel_id)
        return True

    asyncio.get_running_loop().call_later(0.08, watch.destroyed, "a")
    assert await watch.wait_gone("a", 5, exists) is True
    n = len(asked)
    assert n >= 1
    assert await watch.wait_gone("a", 5, exists) is True  # known destroyed: no request
    assert len(asked) == n
    assert await watch.wait_gone("b", 0.1, exists) is False  # still there at the bound

    async def unreachable(channel_id):
        raise ConnectionError

    assert await watch.wait_gone("b", 5, unreachable) is True
