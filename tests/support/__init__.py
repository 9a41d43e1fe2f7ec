"""What tests share: waiting for a condition (``polling``), fake clocks (``clocks``) and the
fake telephony the distributor's tests drive (``fakes``; the web and browser fakes are in
tests/fakes/). tests/ is on sys.path, so ``from support.polling import until``."""
