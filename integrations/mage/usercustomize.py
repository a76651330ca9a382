# Python imports usercustomize after sitecustomize. When another tool's
# sitecustomize (OpenTelemetry's opentelemetry-instrument, ddtrace-run)
# comes before this directory's on PYTHONPATH, Python never imports ours;
# this installs the trigger then (installing twice is a no-op).
try:
    import magekube_start

    magekube_start.start()
except Exception:  # never stop the interpreter from starting
    pass
