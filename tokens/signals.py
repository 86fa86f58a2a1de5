from django.dispatch import Signal

# Sent after the transaction that revoked tokens commits, with `jtis` (list of str) and
# `project_id`. Apps holding live connections (the chat relay, the voice-session socket)
# listen to close the sockets that use those tokens.
tokens_revoked = Signal()

# Sent by `seed_demo` inside its transaction with `project` (the demo project). Receivers
# (other apps' demo data) return a dict of values to add to the command's output.
demo_seeded = Signal()
