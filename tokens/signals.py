from django.dispatch import Signal

# Sent after the transaction that revoked tokens commits, with `jtis` (list of str) and
# `project_id`. Apps holding live connections (the chat relay, the voice-session socket)
# listen to close the sockets that use those tokens.
tokens_revoked = Signal()

# Sent by `seed_demo` inside its transaction, with `project` (the demo project). A receiver
# returns a dict of extra fields for the command's output (e.g. the agents app's
# `tool_secret`), so `tokens` need not know the apps that add demo data.
demo_seeded = Signal()
