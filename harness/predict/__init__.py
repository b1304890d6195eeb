"""Latency prediction: a kernel-level latency model fitted from layer probes, per device.

In an estimator's shape, lowest first: ``layouts`` (what onnxruntime makes of a graph: the
only part that runs it), ``kernels`` (the executed kernels of a variant or probe and their
features), ``estimator`` (``KernelLatencyModel(settings).fit(rows, scope)`` returns the
``FittedModel``), ``prediction`` (a variant's predicted time), ``sampling`` (which probes to
measure), ``stored`` (training rows and fits from stored runs), ``training`` (the fit
protocol: ``FitPlan``, the measuring ``Session``), ``validation`` (held-out truths and the
validate protocol), ``search`` (``--budget-ms``), ``frames`` (the cost-ratio table and the
report's frames) and ``request`` (``mnbench predict``'s request and its one call, ``serve``).
"""
