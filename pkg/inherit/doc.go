// Package inherit builds the Kubernetes Job for one run: a pure function of
// the Mage server's Pod, the merged executor config, the request and the
// agent's settings. It does no I/O, so every rule is tested on literals.
package inherit
