// Package policy decides whether a run's Job asks for more privilege than
// the Mage container it inherits from: a pure function of the server pod,
// the agent's settings and the Job, used by the agent and `agent render`.
package policy
