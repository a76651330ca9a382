# Every target is one line calling a script in hack/ (strict mode there).
.PHONY: demo demo-down build images test test-unit test-python test-monitoring lint fuzz integration e2e cluster-up cluster-down bins bench clean

demo:         ; hack/demo.sh
demo-down:    ; hack/demo-down.sh
build:        ; hack/build.sh
images:       ; hack/images.sh
test:         ; hack/test.sh
test-unit:    ; hack/test-unit.sh
test-python:  ; hack/test-python.sh
test-monitoring: ; hack/test-monitoring.sh
lint:         ; hack/lint.sh
fuzz:         ; hack/fuzz.sh
integration:  ; hack/test-integration.sh
e2e:          ; hack/test-e2e.sh
bins:         ; hack/build-bins.sh
cluster-up:   ; hack/cluster.sh up $(or $(FAKE_NODES),0)
cluster-down: ; hack/cluster.sh down
bench:        ; hack/bench.sh
clean:        ; rm -rf bin _output
