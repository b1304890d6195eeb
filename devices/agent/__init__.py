"""The device-side agent: the only mnbench code that runs on a device.

It loads one ONNX model, times it and prints one JSON document (``record.py`` holds its
schema). It needs the standard library, numpy and onnxruntime only, runs on Python 3.8 and
imports no other mnbench package, so the host can push it as one stdlib ``zipapp``
(``bundle.py``) and run it as ``python3 agent.pyz MODEL [flags]``. The host imports the same
modules for the facts it shares with the device: the CPU-list parser and hex mask
(``cpus``), the ARM part table (``parts``), the big/little cluster rule (``cores``) and the
confidence interval of the median (``stats``).

Modules: ``cli`` (flags, ``main``, exit codes), ``loop`` (warm-up, the measuring loop,
``burst``), ``session`` (onnxruntime session, inputs, IO binding, profiling), ``serve``
(agent mode), ``facts`` (host facts), ``limits`` (the compute and bandwidth microbenchmark),
``errors`` (the agent's two failure kinds).
"""
