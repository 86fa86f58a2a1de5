"""PostgreSQL connections that give up on a server that does not answer.

Neither TCP nor PostgreSQL bounds how long a query waits for its answer: a blackholed route, a
hung server process or a host whose kernel still acknowledges packets leave it waiting for
minutes, and PostgreSQL's statement_timeout cannot fire on a statement the server never got.
`config.settings` gives the connection pool this connection class, so every round trip to the
server — a statement, a commit or rollback, the pool's health check — fails after
`answer_timeout` seconds with an OperationalError (answered 503, tokens.errors), and the
connection, whose protocol state is then out of step, is closed so the pool replaces it.
"""

import time

import psycopg


class _NoAnswer(Exception):
    pass


def _within(gen, deadline: float):
    """psycopg's generator protocol (psycopg.abc.PQGen): `gen` yields what it waits for and is
    sent what became ready. The waiting functions also send "nothing ready" every wait
    interval (0.1 s), which is when the deadline is looked at."""
    try:
        waiting_for = next(gen)
        while True:
            ready = yield waiting_for
            if not ready and time.monotonic() >= deadline:
                raise _NoAnswer
            waiting_for = gen.send(ready)
    except StopIteration as done:
        return done.value


class AnswerDeadlineConnection(psycopg.Connection):
    """A psycopg connection whose every round trip has `answer_timeout` seconds (0: none)."""

    answer_timeout: float = 0.0

    def wait(self, gen, *args, **kwargs):
        if not self.answer_timeout:
            return super().wait(gen, *args, **kwargs)
        deadline = time.monotonic() + self.answer_timeout
        try:
            return super().wait(_within(gen, deadline), *args, **kwargs)
        except _NoAnswer:
            # The answer is still owed: nothing more can be sent on this connection.
            self.close()
            raise psycopg.OperationalError(
                f"the database did not answer within {self.answer_timeout:g} s"
            ) from None


def connection_class(answer_timeout: float) -> type[AnswerDeadlineConnection]:
    """The pool's `connection_class`, with this answer timeout."""
    return type(
        "AnswerDeadlineConnection", (AnswerDeadlineConnection,), {"answer_timeout": answer_timeout}
    )
