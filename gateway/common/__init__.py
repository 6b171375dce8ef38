"""Helpers every package uses, each in one place: nothing here knows graphs, brokers or devices.

    atomic.py     replace a file all at once, durably (every file the gateway writes)
    yaml12.py     YAML 1.2 with bounded documents (participant descriptions, the library,
                  gateway.yaml, the provisioning file)
    problems.py   how a problem in a file is worded: key paths, did-you-mean hints
    logs.py       logging for a command-line tool
    signals.py    run a coroutine until SIGINT or SIGTERM
    cstring.py    text as a C string literal (a sketch's secrets.h, the firmware's test vectors)

Modules here import only the standard library, PyYAML and ``gateway.errors``.
"""
