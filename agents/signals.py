from django.dispatch import Signal

# Sent after the transaction that stored a voice-session text message commits, with
# `session` (VoiceSession) and `message` (VoiceSessionMessage). This is where chat (issue 4)
# hooks in to copy the message into the session's conversation.
voice_session_message = Signal()
