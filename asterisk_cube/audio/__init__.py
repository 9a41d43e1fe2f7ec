"""Supervisor audio and call recording over ARI (issue #17, F-M3, F-M4).

- :mod:`.listen`: listen, whisper and barge on a connected call through ARI snoop
  channels to the supervisor's phone (its endpoint);
- :mod:`.recorder`: call recording by Asterisk (ARI bridge recording) per line and
  campaign policy or on demand, with a consent beep or announcement;
- :mod:`.store`: Asterisk's stored recordings over HTTP (file, delete) and the retention job;
- :mod:`.app`: the Stasis handler that routes the ARI events of all three.

Nothing here sits on a call's path: recording starts in its own task after the call is
bridged, and a failure is logged and counted (``/metrics``), never raised into the call.
"""
