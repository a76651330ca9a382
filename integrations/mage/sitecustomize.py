# Python imports sitecustomize at start-up when it is on sys.path: with
# this directory on PYTHONPATH, Mage's `executor_type: k8s` runs go
# through the magekube agent (see magekube_mage.py). MAGEKUBE_DISABLE=1
# turns it off.
try:
    import magekube_mage

    magekube_mage.install()
except Exception as e:  # never stop the interpreter from starting
    import sys

    print("magekube: Mage trigger not installed: %s" % e, file=sys.stderr)
