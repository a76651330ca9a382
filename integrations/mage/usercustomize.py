# Python imports usercustomize after sitecustomize. When another tool's
# sitecustomize (OpenTelemetry's opentelemetry-instrument, ddtrace-run)
# comes before this directory's on PYTHONPATH, Python never imports ours;
# this installs the trigger then (installing twice is a no-op).
import sys

try:
    import magekube_mage

    magekube_mage.install()
except Exception as e:  # never stop the interpreter from starting
    print("magekube: Mage trigger not installed: %s" % e, file=sys.stderr)
    try:
        import magekube_refuse

        magekube_refuse.install(e)
    except Exception:
        pass
