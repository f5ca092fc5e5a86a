"""The lab's Windows host twin: a WinRM/WinRS endpoint in Python that models a Windows Server host.

See ``tests/twin/README.md`` for what is modelled, from which source, and what is not.
The twin never imports the collection's plugins: it is the independent reference they are tested against.
"""
