// Package images writes images without Docker (go-containerregistry):
// the e2e suite's test image, whose block program Jobs run with a
// scripted outcome; the static nonroot base the Dockerfiles build on
// offline; and the single-binary images of the kind node image (control
// plane, CoreDNS, kube-proxy, pause, Jaeger).
package images
