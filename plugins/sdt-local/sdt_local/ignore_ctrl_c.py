"""Imported first by the server that local worker processes are forked from: it ignores SIGINT,
and so do the workers it forks (they take the handlers it had before it started serving)."""

import signal

signal.signal(signal.SIGINT, signal.SIG_IGN)
