"""`demo call` stopped (Ctrl-C, a closed terminal, `kill`) hangs its caller up in Asterisk.

Seen trying the demo: SIPp stopped with SIGUSR1 ends without a BYE, so after Ctrl-C (or a
SIGTERM, which did not even reach the stop) the caller stayed in the line's queue, waiting
for minutes on the panel with nobody on the other end."""

from asterisk_cube.core.testcall import caller_channels

CONCISE = "\n".join(
    [
        "PJSIP/carrier-00000020!cube-inbound!4721000004!3!Up!Stasis!asterisk-cube,inbound,4!"
        "+4791234567!!!3!80!cube-hold-4!cube-demo-1.36",
        "PJSIP/carrier-00000021!cube-inbound!4721000001!3!Up!Stasis!asterisk-cube,inbound,1!"
        "+4791234567!!!3!80!cube-hold-1!cube-demo-1.37",  # another line: a traffic caller
        "PJSIP/carrier-00000022!cube-inbound!4721000004!3!Up!Stasis!asterisk-cube,inbound,4!"
        "+4795550000!!!3!80!cube-hold-4!cube-demo-1.38",  # another caller on that line
        "PJSIP/agent01-00000023!cube-dial!s!1!Up!Stasis!asterisk-cube!+4791234567!!!3!8!!x.39",
        "",
    ]
)


def test_only_the_test_calls_own_channel_is_picked():
    assert caller_channels(CONCISE, "4721000004", "+4791234567") == ["PJSIP/carrier-00000020"]


def test_nothing_when_it_already_ended():
    assert caller_channels(CONCISE, "4721000004", "+4790000000") == []
    assert caller_channels("", "4721000004", "+4791234567") == []
