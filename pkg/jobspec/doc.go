// Package jobspec builds the Kubernetes Job for one run. Builder resolves
// the run's executor config from the project's files (read through an
// fs.FS); Job is a pure function of the Mage server's Pod, that config,
// the request and the agent's settings, so every rule is tested on
// literals.
package jobspec
