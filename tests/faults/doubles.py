"""Scripted models for the fault tests: `scripted/tests.faults.doubles.<function>`.

`logged_reply` answers like the service double, slowly, and appends one line per finished call
(time and prompt hash) to the file named by LONGREAD_TEST_CALL_LOG. A prompt logged twice was paid
twice; the fault tests read the log to prove that no call that finished before a crash was repeated.
"""

from __future__ import annotations

import hashlib
import json
import os
import time

from longread.testing.service_doubles import reply

CALL_SECONDS = 0.3


def _prompt_hash(messages: list[dict[str, str]]) -> str:
    return hashlib.sha256(json.dumps(messages, sort_keys=True).encode()).hexdigest()[:16]


def logged_reply(messages: list[dict[str, str]]) -> str:
    time.sleep(CALL_SECONDS)
    text = reply(messages)
    path = os.environ.get("LONGREAD_TEST_CALL_LOG")
    if path:
        with open(path, "a", encoding="utf-8") as log:
            log.write(f"{time.time():.3f} {os.getpid()} {_prompt_hash(messages)}\n")
    return text
